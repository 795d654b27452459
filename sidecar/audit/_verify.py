"""Walk records and digests and name the first thing that was deleted, altered, reordered, inserted or left
uncovered.

Checks, per producer, in sequence order:
  - each record's keyed hash matches its fields and stated predecessor       -> altered
  - the row it is stored under is its own id                                -> reordered
  - sequence numbers run without gaps or repeats, each record links to the
    previous one's hash                                                     -> deleted / inserted
  - each segment digest's range holds exactly its count, start and head     -> deleted / altered
  - every record older than the grace period lies inside a digest           -> undigested
Per sidecar chain (all producers' digests, in ``seq`` order):
  - every digest is signed by a key of the ring                             -> forged_digest
  - it begins with a signed start marker and every link is there            -> missing_digest
  - a reset marker (lost checkpoint) is reported once, as a notice
  - every anchor given (exported head) is still there with the same hash    -> missing_digest / anchor_mismatch
A store with records and no digest at all fails (``no_digests``). A chain may begin mid-way only where
retention deleted the days before it; on those days (the retention limit plus a day) a legal hold may
have kept single records whose neighbours and digests retention deleted, so gaps there are not findings.
The erasure and hold ledger (see ledger.py):
  - every event is signed and linked to the one before                      -> forged_event / missing_event
  - a record with erased fields is covered by a signed erasure event        -> unsigned_erasure (else: erased)
  - a record a signed erasure event names no longer holds those fields      -> unerased
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sidecar.audit._chain import ERASED, HASH, PREV, check
from sidecar.audit._digest import CHAIN_ID, KIND, SEQ, signature_problem
from sidecar.audit._digest import HASH as DHASH
from sidecar.audit._digest import PREV as DPREV
from sidecar.audit._keys import KeyRing
from sidecar.audit.ledger import Ledger, read_ledger
from sidecar.clock import format_utc
from sidecar.errors import SidecarError


@dataclass(frozen=True, slots=True)
class VerifyFinding:
    kind: str  # deleted | altered | reordered | inserted | undigested | unchained | unknown_key | forged_digest
    #            | missing_digest | no_digests | anchor_mismatch | unsigned_erasure | unerased | forged_event
    #            | missing_event
    where: str  # record or digest id
    detail: str
    timestamp: str = ""
    producer: str = ""
    sequence: int = 0  # position in the producer's stream: findings are listed in stream order


@dataclass
class VerifyReport:
    records: int = 0
    producers: int = 0
    digests: int = 0
    chains: int = 0
    covered: int = 0  # records inside a digest's range
    erased: int = 0  # records with erased fields (their digests kept)
    erasure_events: list[dict[str, Any]] = field(default_factory=list)  # the signed erasure events
    holds: int = 0  # legal holds in force
    anchors: int = 0  # anchors checked
    findings: list[VerifyFinding] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # honest, signed discontinuities (checkpoint resets)

    @property
    def ok(self) -> bool:
        return not self.findings


def _day(ts: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(ts[:10])
    except ValueError:
        return None


def _seq(doc: dict[str, Any]) -> int:
    try:
        return int(doc.get("sidecar.sequence") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class _Walk:
    keys: KeyRing
    boundary: dt.date  # days up to boundary + 1 may have been cut by retention
    grace_before: str  # records stamped before this must be covered by a digest
    report: VerifyReport = field(default_factory=VerifyReport)
    by_producer: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    retention_cut: set[str] = field(default_factory=set)
    ledger: Ledger = field(default_factory=Ledger)
    authorised: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, where: str, detail: str, ts: str = "", producer: str = "", seq: int = 0) -> None:
        self.report.findings.append(VerifyFinding(kind, where, detail, ts, producer, seq))

    def cut_by_retention(self, ts: str) -> bool:
        day = _day(ts)
        return day is not None and day <= self.boundary + dt.timedelta(days=1)


def verify(records: Iterable[tuple[str, str | bytes | dict[str, Any]]], digests: Iterable[dict[str, Any]],
           keys: KeyRing, *, retention_days: int, today: dt.date | None = None, grace_seconds: float = 900.0,
           anchors: Iterable[dict[str, Any]] = (), store_findings: Iterable[VerifyFinding] = (),
           now: dt.datetime | None = None, events: Iterable[dict[str, Any]] = ()) -> VerifyReport:
    """``records``: (stored id, document) pairs in any order. ``anchors``: exported heads (see
    ``head_of``). ``store_findings``: problems the store found itself (query columns). ``events``: the
    erasure and hold ledger."""
    now = now or dt.datetime.now(tz=dt.timezone.utc)
    today = today or now.date()
    # Retention deletes whole days older than the limit (plus a day of clock-skew margin).
    w = _Walk(keys, today - dt.timedelta(days=retention_days + 1),
              format_utc(now - dt.timedelta(seconds=grace_seconds)))
    _ledger(w, events)
    _records(w, records)
    _unerased(w)
    _producer_chains(w)
    digest_list = list(digests)
    chains = _digests(w, digest_list)
    covered = _coverage(w, chains)
    _undigested(w, covered)
    _anchors(w, chains, anchors)
    if w.report.records and not w.report.digests:
        w.add("no_digests", "store", f"{w.report.records} records and no digest at all: digests were removed, "
                                     "or nothing was shipped by `sidecar run` with its key")
    w.report.findings.extend(store_findings)
    w.report.findings = _unique(w.report.findings)
    return w.report


class RepeatedKeyError(SidecarError, ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"repeated key {key!r}")
        self.key = key


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise RepeatedKeyError(key)
        doc[key] = value
    return doc


def _records(w: _Walk, records: Iterable[tuple[str, str | bytes | dict[str, Any]]]) -> None:
    for stored_id, raw in records:
        w.report.records += 1
        try:
            doc = raw if isinstance(raw, dict) else json.loads(raw, object_pairs_hook=_no_repeated_keys)
        except RepeatedKeyError as exc:
            # The sidecar never writes a key twice; a repeated one makes readers disagree (Python keeps the
            # last copy, SQLite's json_extract, which feeds the query columns, the first): tampering.
            w.add("altered", stored_id, f"stored document repeats the key {exc.key!r}")
            continue
        except ValueError:
            w.add("altered", stored_id, "stored document is not JSON")
            continue
        if not isinstance(doc, dict):
            w.add("altered", stored_id, "stored document is not an object")
            continue
        rid, ts = str(doc.get("event.id")), str(doc.get("@timestamp", ""))
        producer, seq = str(doc.get("sidecar.producer.id")), _seq(doc)
        if not isinstance(doc.get(PREV), str) or not isinstance(doc.get(HASH), str):
            w.add("unchained", stored_id, "record has no hash chain fields", ts, producer, seq)
            continue
        # An altered or misplaced record is still present: it stays in the walk (by its stated
        # links) so that its own problem is reported, not a phantom gap around it.
        problem = check(doc, w.keys)
        if problem is not None:
            kind = "unknown_key" if problem.startswith("unknown key") else "altered"
            w.add(kind, stored_id, "content does not match its keyed hash" if kind == "altered" else
                  f"hash made with {problem[8:]}: add that key to the ring", ts, producer, seq)
        elif stored_id != rid:
            w.add("reordered", stored_id, f"row holds record {rid}", ts, producer, seq)
        if isinstance(doc.get(ERASED), dict):
            w.report.erased += 1
            unsigned = sorted(set(map(str, doc[ERASED])) - w.authorised.get(rid, set()))
            if unsigned and problem is None:
                w.add("unsigned_erasure", stored_id, f"fields {', '.join(unsigned)} were erased without a signed "
                      "erasure event (or the event was deleted)", ts, producer, seq)
        w.by_producer[producer].append(doc)
    w.report.producers = len(w.by_producer)


def _producer_chains(w: _Walk) -> None:
    for producer, docs in w.by_producer.items():
        docs.sort(key=lambda d: (_seq(d), d[HASH]))
        hashes = {d[HASH] for d in docs}
        prev_doc: dict[str, Any] | None = None
        for d in docs:
            seq, rid, ts = _seq(d), str(d.get("event.id")), str(d.get("@timestamp", ""))
            if prev_doc is None:
                if seq != 1 or d[PREV] != "":
                    if w.cut_by_retention(ts):
                        w.retention_cut.add(producer)
                    else:
                        w.add("deleted", rid, f"records 1..{seq - 1} of producer {producer} are missing (not "
                                              "explained by retention)", ts, producer, seq)
            else:
                last = _seq(prev_doc)
                if seq == last:
                    bad = d if d[PREV] != prev_doc[PREV] else prev_doc
                    w.add("inserted", str(bad.get("event.id")), f"second record with sequence {seq}", ts, producer,
                          seq)
                elif seq > last + 1 and not w.cut_by_retention(str(prev_doc.get("@timestamp", ""))):
                    w.add("deleted", rid, f"records {last + 1}..{seq - 1} of producer {producer} are missing", ts,
                          producer, seq)
                elif seq == last + 1 and d[PREV] != prev_doc[HASH]:
                    kind = "reordered" if d[PREV] in hashes else "inserted"
                    w.add(kind, rid, f"does not follow record {prev_doc.get('event.id')}", ts, producer, seq)
            prev_doc = d


def _digests(w: _Walk, digests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Signed digests by chain, each chain walked in seq order; returns the chains."""
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in digests:
        w.report.digests += 1
        gid, ts = str(g.get("sidecar.digest.id")), str(g.get("@timestamp", ""))
        problem = signature_problem(g, w.keys)
        if problem is not None:
            w.add("forged_digest", gid, problem, ts, str(g.get("sidecar.producer.id", "")))
            continue
        chains[str(g[CHAIN_ID])].append(g)
    w.report.chains = len(chains)
    for chain_id, gs in chains.items():
        gs.sort(key=lambda g: (int(g[SEQ]), str(g[DHASH])))
        first = gs[0]
        ts = str(first.get("@timestamp", ""))
        if first[DPREV] != "" or int(first[SEQ]) != 1:
            if first[KIND] == "reset" or not w.cut_by_retention(ts):
                w.add("missing_digest", str(first["sidecar.digest.id"]),
                      f"digests 1..{int(first[SEQ]) - 1} of sidecar chain {chain_id} are missing", ts)
        elif first[KIND] not in ("start", "reset"):
            w.add("missing_digest", str(first["sidecar.digest.id"]),
                  f"the start marker of sidecar chain {chain_id} is missing", ts)
        for before, g in itertools.pairwise(gs):
            if int(g[SEQ]) != int(before[SEQ]) + 1 or g[DPREV] != before[DHASH]:
                what = "a second digest with" if int(g[SEQ]) == int(before[SEQ]) else "the digest before"
                w.add("missing_digest", str(g["sidecar.digest.id"]),
                      f"{what} seq {int(g[SEQ]) - (0 if what.startswith('a second') else 1)} of sidecar chain "
                      f"{chain_id} is missing or replaced", str(g.get("@timestamp", "")))
        for g in gs:
            if g[KIND] == "reset":
                how = ("the chain continues from the newest digest then in the store" if g[DPREV] else
                       "no earlier digest of this chain was found: what came before cannot be linked")
                w.report.notices.append(f"checkpoint reset at {g.get('@timestamp')} "
                                        f"({g.get('sidecar.digest.reason', '?')}), signed by the sidecar: {how}")
    return chains


def _coverage(w: _Walk, chains: dict[str, list[dict[str, Any]]]) -> dict[str, set[int]]:
    """Check each segment digest against the records it covers; returns the covered sequences."""
    covered: dict[str, set[int]] = defaultdict(set)
    for gs in chains.values():
        for g in gs:
            if g[KIND] == "segment":
                _segment(w, g, covered[str(g.get("sidecar.producer.id"))])
    return covered


def _segment(w: _Walk, g: dict[str, Any], covered: set[int]) -> None:
    producer = str(g.get("sidecar.producer.id"))
    by_seq = {_seq(d): d for d in w.by_producer.get(producer, [])}
    gid, ts = str(g["sidecar.digest.id"]), str(g.get("@timestamp", ""))
    first, last, count = (int(g["sidecar.digest.first_sequence"]), int(g["sidecar.digest.last_sequence"]),
                          int(g["sidecar.digest.count"]))
    inside = [by_seq[s] for s in range(first, last + 1) if s in by_seq]
    covered.update(range(first, last + 1))
    w.report.covered += len(inside)
    if len(inside) < count and w.cut_by_retention(ts):
        return  # retention deleted the rest of this old segment; a hold kept what is left
    if not inside:
        first_kept = min(by_seq) if by_seq else None
        cut = producer in w.retention_cut and first_kept is not None and last < first_kept
        if not cut and not (not by_seq and w.cut_by_retention(ts)):
            w.add("deleted", str(g["sidecar.digest.first_id"]), f"all {count} records of segment {gid} are missing",
                  ts, producer, first)
        return
    starts_right = _seq(inside[0]) != first or inside[0][PREV] == g["sidecar.digest.chain_start"]
    if len(inside) != count or inside[-1][HASH] != g["sidecar.digest.chain_head"] or not starts_right:
        missing = [s for s in range(first, last + 1) if s not in by_seq]
        where = str(by_seq[missing[0] + 1].get("event.id")) if missing and missing[0] + 1 in by_seq else gid
        kind = "deleted" if len(inside) < count else "altered"
        w.add(kind, where, f"segment {gid} holds {len(inside)} of {count} records or a different chain", ts,
              producer, missing[0] + 1 if missing else last)


def _undigested(w: _Walk, covered: dict[str, set[int]]) -> None:
    """Every record older than the grace period must lie inside a digest: one finding per run."""
    for producer, docs in w.by_producer.items():
        seqs = covered.get(producer, set())
        run: list[dict[str, Any]] = []
        for d in [*docs, {}]:
            stamp = str(d.get("@timestamp", ""))
            lone = bool(d) and _seq(d) not in seqs and stamp < w.grace_before and not w.cut_by_retention(stamp)
            if lone:
                run.append(d)
                continue
            if run:
                head = run[0]
                w.add("undigested", str(head.get("event.id")), f"{len(run)} record(s) from here are covered by no "
                      "digest (digests removed, or the sidecar never finished these segments)",
                      str(head.get("@timestamp", "")), producer, _seq(head))
                run = []


def _anchors(w: _Walk, chains: dict[str, list[dict[str, Any]]], anchors: Iterable[dict[str, Any]]) -> None:
    for a in anchors:
        w.report.anchors += 1
        if "sidecar.event.hash" in a:
            _ledger_anchor(w, a)
            continue
        chain_id, seq, h = str(a.get(CHAIN_ID)), int(a.get(SEQ) or 0), str(a.get(DHASH))
        found = [g for g in chains.get(chain_id, []) if int(g[SEQ]) == seq]
        where = str(a.get("sidecar.digest.id", f"{chain_id}#{seq}"))
        if not found:
            w.add("missing_digest", where, f"the anchored digest {seq} of sidecar chain {chain_id} (exported "
                                           f"{a.get('@timestamp', '?')}) is not in the store: the tail was cut",
                  str(a.get("@timestamp", "")))
        elif all(g[DHASH] != h for g in found):
            w.add("anchor_mismatch", where, f"digest {seq} of sidecar chain {chain_id} differs from the anchor",
                  str(a.get("@timestamp", "")))


def _ledger_anchor(w: _Walk, a: dict[str, Any]) -> None:
    """An exported head of the erasure and hold ledger: that event must still be there, unchanged."""
    seq, h, ts = int(a.get("sidecar.event.seq") or 0), str(a.get("sidecar.event.hash")), str(a.get("@timestamp", ""))
    found = [e for e in w.ledger.events if int(e["sidecar.event.seq"]) == seq]
    where = str(a.get("sidecar.event.id", f"event-{seq:08d}"))
    if not found:
        w.add("missing_event", where, f"the anchored ledger event {seq} (exported {ts or '?'}) is not in the store: "
                                      "the ledger's tail was cut", ts)
    elif all(e["sidecar.event.hash"] != h for e in found):
        w.add("anchor_mismatch", where, f"ledger event {seq} differs from the anchor", ts)


def _ledger(w: _Walk, events: Iterable[dict[str, Any]]) -> None:
    w.ledger = read_ledger(events, w.keys)
    for kind, where, detail, ts in w.ledger.problems:
        w.add(kind, where, detail, ts)
    w.authorised = w.ledger.authorised()
    w.report.erasure_events = [e for e in w.ledger.events if e["sidecar.event.kind"] == "erasure"]
    w.report.holds = len(w.ledger.holds())


def _unerased(w: _Walk) -> None:
    """A signed erasure names fields that are back in the record (restored from a copy, or never removed)."""
    if not w.authorised:
        return
    for docs in w.by_producer.values():
        for d in docs:
            rid = str(d.get("event.id"))
            back = sorted(n for n in w.authorised.get(rid, ()) if n in d)
            if back:
                w.add("unerased", rid, f"fields {', '.join(back)} are present although a signed erasure removed "
                      "them (restored from a copy, or the erasure did not finish: run it again)",
                      str(d.get("@timestamp", "")), str(d.get("sidecar.producer.id")), _seq(d))


def _unique(found: list[VerifyFinding]) -> list[VerifyFinding]:
    """Keep each problem once, the earliest first: the first finding names the first break."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in sorted(found, key=lambda f: (f.producer, f.sequence, f.kind.endswith("digest"), f.where)):
        if (f.kind, f.where) not in seen:
            seen.add((f.kind, f.where))
            unique.append(f)
    return unique
