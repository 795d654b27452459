"""Walk records and digests and name the first thing that was deleted, altered, reordered or inserted.

Checks, per producer, in sequence order:
  - each record's own hash matches its content and stated predecessor      -> altered
  - the row it is stored under is its own id                                -> reordered
  - sequence numbers run without gaps or repeats, each record links to the
    previous one's hash                                                     -> deleted / inserted
  - every digest is signed with our key and links to the previous digest    -> forged / missing digest
  - each digest's range holds exactly its count, start and head hashes      -> deleted / inserted
A producer's chain may begin mid-way only where retention deleted the days before it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sidecar.audit._chain import HASH, PREV, check
from sidecar.audit._digest import signature_ok


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # deleted | altered | reordered | inserted | forged_digest | missing_digest | unchained
    where: str  # record or digest id
    detail: str
    timestamp: str = ""
    producer: str = ""
    sequence: int = 0  # position in the producer's stream: findings are listed in stream order


@dataclass
class Report:
    records: int = 0
    producers: int = 0
    digests: int = 0
    covered: int = 0  # records inside a digest's range
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _day(ts: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(ts[:10])
    except ValueError:
        return None


def verify(records: Iterable[tuple[str, str | bytes | dict[str, Any]]], digests: Iterable[dict[str, Any]],
           key: bytes, *, retention_days: int, today: dt.date | None = None) -> Report:
    """``records``: (stored id, document) pairs in any order."""
    today = today or dt.datetime.now(tz=dt.timezone.utc).date()
    # Retention deletes whole days older than the limit (plus a day of clock-skew margin): a chain
    # may start mid-way only on the oldest days that retention can already have cut before.
    boundary = today - dt.timedelta(days=retention_days + 1)
    report = Report()
    by_producer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    out = report.findings
    for stored_id, raw in records:
        report.records += 1
        doc = raw if isinstance(raw, dict) else json.loads(raw)
        rid = str(doc.get("event.id"))
        ts = str(doc.get("@timestamp", ""))
        producer, seq = str(doc.get("sidecar.producer.id")), int(doc.get("sidecar.sequence") or 0)
        if PREV not in doc or HASH not in doc:
            out.append(Finding("unchained", stored_id, "record has no hash chain fields", ts, producer, seq))
            continue
        # An altered or misplaced record is still present: it stays in the walk (by its stated
        # links) so that its own problem is reported, not a phantom gap around it.
        if not check(doc):
            out.append(Finding("altered", stored_id, "content does not match its hash", ts, producer, seq))
        elif stored_id != rid:
            out.append(Finding("reordered", stored_id, f"row holds record {rid}", ts, producer, seq))
        by_producer[producer].append(doc)
    report.producers = len(by_producer)

    retention_cut: set[str] = set()  # producers whose oldest records retention has removed
    for producer, docs in by_producer.items():
        docs.sort(key=lambda d: (int(d.get("sidecar.sequence") or 0), d[HASH]))
        hashes = {d[HASH] for d in docs}
        prev_doc: dict[str, Any] | None = None
        for d in docs:
            seq = int(d.get("sidecar.sequence") or 0)
            rid, ts = str(d["event.id"]), str(d.get("@timestamp", ""))
            if prev_doc is None:
                if seq != 1 or d[PREV] != "":
                    day = _day(ts)
                    if day is not None and day <= boundary + dt.timedelta(days=1):
                        retention_cut.add(producer)
                    else:
                        out.append(Finding("deleted", rid, f"records 1..{seq - 1} of producer {producer} "
                                                           "are missing (not explained by retention)", ts,
                                           producer, seq))
            else:
                last = int(prev_doc.get("sidecar.sequence") or 0)
                if seq == last:
                    bad = d if d[PREV] != prev_doc[PREV] else prev_doc
                    out.append(Finding("inserted", str(bad["event.id"]), f"second record with sequence {seq}", ts,
                                       producer, seq))
                elif seq > last + 1:
                    out.append(Finding("deleted", rid, f"records {last + 1}..{seq - 1} of producer {producer} "
                                                       "are missing", ts, producer, seq))
                elif d[PREV] != prev_doc[HASH]:
                    kind = "reordered" if d[PREV] in hashes else "inserted"
                    out.append(Finding(kind, rid, f"does not follow record {prev_doc['event.id']}", ts, producer,
                                       seq))
            prev_doc = d

    # Digests: signed, chained per producer, and matching the records they cover.
    digests_by_producer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in digests:
        report.digests += 1
        gid = str(g.get("sidecar.digest.id"))
        if not signature_ok(g, key):
            out.append(Finding("forged_digest", gid, "signature does not verify with this key",
                               str(g.get("@timestamp", ""))))
            continue
        digests_by_producer[str(g.get("sidecar.producer.id"))].append(g)
    for producer, gs in digests_by_producer.items():
        gs.sort(key=lambda g: int(g["sidecar.digest.first_sequence"]))
        docs = by_producer.get(producer, [])
        by_seq = {int(d.get("sidecar.sequence") or 0): d for d in docs}
        first_kept = min(by_seq) if by_seq else None
        prev_hash: str | None = None
        for g in gs:
            gid, ts = str(g["sidecar.digest.id"]), str(g.get("@timestamp", ""))
            first, last = int(g["sidecar.digest.first_sequence"]), int(g["sidecar.digest.last_sequence"])
            # Digests of segments that retention removed entirely, before the first record kept.
            cut = producer in retention_cut and first_kept is not None and last < first_kept
            if prev_hash is not None and g["sidecar.digest.prev"] != prev_hash:
                out.append(Finding("missing_digest", gid, "the digest before this one is missing", ts, producer,
                                   first))
            elif prev_hash is None and g["sidecar.digest.prev"] != "" and producer not in retention_cut:
                out.append(Finding("missing_digest", gid, "earlier digests of this producer are missing", ts,
                                   producer, first))
            prev_hash = g["sidecar.digest.hash"]
            inside = [by_seq[s] for s in range(first, last + 1) if s in by_seq]
            report.covered += len(inside)
            if not inside:
                if not cut:
                    out.append(Finding("deleted", str(g["sidecar.digest.first_id"]),
                                       f"all {g['sidecar.digest.count']} records of segment {gid} are missing", ts,
                                       producer, first))
                continue
            starts_right = int(inside[0]["sidecar.sequence"]) != first or \
                inside[0][PREV] == g["sidecar.digest.chain_start"]
            if len(inside) != int(g["sidecar.digest.count"]) or inside[-1][HASH] != g["sidecar.digest.chain_head"] \
                    or not starts_right:
                missing = [s for s in range(first, last + 1) if s not in by_seq]
                where = str(by_seq[missing[0] + 1]["event.id"]) if missing and missing[0] + 1 in by_seq else gid
                kind = "deleted" if len(inside) < int(g["sidecar.digest.count"]) else "altered"
                out.append(Finding(kind, where, f"segment {gid} holds {len(inside)} of "
                                                f"{g['sidecar.digest.count']} records or a different chain", ts,
                                   producer, missing[0] + 1 if missing else last))
    # Keep each problem once, the earliest first: the first finding names the first break.
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in sorted(out, key=lambda f: (f.producer, f.sequence, f.kind.endswith("digest"), f.where)):
        if (f.kind, f.where) not in seen:
            seen.add((f.kind, f.where))
            unique.append(f)
    report.findings = unique
    return report
