"""`sidecar audit verify [--anchor FILE] [--keyring FILE]` and `sidecar audit anchor`."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from sidecar.audit import IntegrityKey, KeyRing, VerifyFinding, VerifyReport, head_of, verify
from sidecar.audit.ledger import newest
from sidecar.config import ShipperSettings
from sidecar.daemon._stores import open_store
from sidecar.errors import ConfigError
from sidecar.redact import RedactionError, derive, load_or_create_key, read_key_ring
from sidecar.ship import Store
from sidecar.terminal import terminal_safe


class AuditUsageError(ConfigError):
    """A key, key ring or anchor that cannot be used: one line, exit 2."""


def key_ring(settings: ShipperSettings, extra: pathlib.Path | None) -> KeyRing:
    """The configured key first (never generated here), then every older one from the key ring file."""
    if not settings.hmac_key and not settings.key_file.exists():
        raise AuditUsageError("no HMAC key (SIDECAR_HMAC_KEY or the key file) to check hashes and signatures with")
    try:
        secrets = [load_or_create_key(settings.hmac_key_text(), settings.key_file)]
        for path in (p for p in (settings.audit_keyring, extra) if p is not None):
            secrets += read_key_ring(path)
    except (RedactionError, OSError) as exc:
        raise AuditUsageError(str(exc)) from None
    return KeyRing(IntegrityKey(derive(s, "integrity")) for s in secrets)


_ANCHOR_TYPES: dict[str, type | tuple[type, ...]] = {
    "sidecar.chain.id": str, "sidecar.digest.seq": int, "sidecar.digest.hash": str,
    "sidecar.event.seq": int, "sidecar.event.hash": str,
}


def read_anchors(path: pathlib.Path) -> list[dict[str, Any]]:
    """Heads exported earlier: JSON lines (the ``audit-head.json`` file, ``sidecar audit anchor`` output, or
    the sidecar's ``audit head: {...}`` log lines; other lines are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditUsageError(f"cannot read anchor file {path}: {exc}") from None
    anchors = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            doc = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(doc, dict) and (("sidecar.digest.hash" in doc and "sidecar.chain.id" in doc)
                                      or ("sidecar.event.hash" in doc and "sidecar.event.seq" in doc)):
            bad = [k for k, kind in _ANCHOR_TYPES.items() if k in doc and not isinstance(doc[k], kind)]
            if bad:
                raise AuditUsageError(f"anchor file {path}: a head with a malformed {bad[0]} "
                                      f"({doc[bad[0]]!r}); export heads with `sidecar audit anchor`")
            anchors.append(doc)
    if not anchors:
        raise AuditUsageError(f"anchor file {path} holds no exported head (lines with sidecar.chain.id, "
                              "sidecar.digest.seq and sidecar.digest.hash)")
    return anchors


def _sources(store: Store) -> tuple[Iterator[tuple[str, str | dict[str, Any]]], list[dict[str, Any]],
                                   list[VerifyFinding], list[dict[str, Any]]]:
    """(records, digests, store findings, ledger events)."""
    columns = [VerifyFinding("altered", rid, detail) for rid, detail in store.store_problems()]
    return store.stored_records(), store.digests(), columns, store.events()


def cmd_audit_verify(settings: ShipperSettings, args: argparse.Namespace) -> int:
    try:
        ring = key_ring(settings, getattr(args, "keyring", None))
        anchors = read_anchors(args.anchor) if getattr(args, "anchor", None) else []
    except AuditUsageError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        store = open_store(settings)
    except FileNotFoundError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 1
    records, digests, columns, events = _sources(store)
    where = store.where
    report = verify(records, digests, ring, retention_days=settings.retention_days, anchors=anchors,
                    grace_seconds=settings.digest_grace_seconds, store_findings=columns, events=events)
    seconds = time.perf_counter() - started
    findings = [f for f in report.findings
                if (not args.since or not f.timestamp or f.timestamp >= args.since)
                and (not args.until or not f.timestamp or f.timestamp < args.until)]
    for f in findings:
        if args.json:
            print(terminal_safe(json.dumps({"kind": f.kind, "where": f.where, "detail": f.detail,
                                            "@timestamp": f.timestamp}, ensure_ascii=False)))
        else:
            print(terminal_safe(f"{f.kind:<15} {f.where}  {f.detail}"))
    _print_erasures(report, args.json)
    for note in report.notices:
        print(f"notice: {note}", file=sys.stderr)
    rate = report.records / seconds if seconds > 0 else 0.0
    anchored = f"; {report.anchors} anchors checked" if anchors else "; no anchor given: a cut tail goes unseen"
    print(f"verified {report.records} records of {report.producers} producers and {report.digests} digests in "
          f"{report.chains} sidecar chains in {where} ({report.covered} records covered by digests{anchored}; "
          f"{rate:,.0f} records/s; {report.erased} records erased by {len(report.erasure_events)} signed events; "
          f"{report.holds} legal holds in force): "
          + ("intact" if not findings else f"{len(findings)} problems, first: {findings[0].kind} at "
             f"{findings[0].where}"), file=sys.stderr)
    return 0 if not findings else 1


def _print_erasures(report: VerifyReport, as_json: bool) -> None:
    """One `erased` line per signed erasure event (not a problem: verify still exits 0)."""
    for e in report.erasure_events:
        records, fields = e.get("sidecar.event.records") or [], e.get("sidecar.event.fields") or []
        if as_json:
            print(json.dumps({"kind": "erased", "where": e["sidecar.event.id"], "records": len(records),
                              "fields": fields, "operator": e.get("sidecar.event.operator"),
                              "reason": e.get("sidecar.event.reason"), "@timestamp": e.get("@timestamp")}))
        else:
            print(f"{'erased':<15} {e['sidecar.event.id']}  {len(records)} records ({', '.join(fields)}) by "
                  f"{e.get('sidecar.event.operator')} at {e.get('@timestamp')}: {e.get('sidecar.event.reason')}")


def cmd_audit_anchor(settings: ShipperSettings, args: argparse.Namespace) -> int:
    """Print the newest digest of every sidecar chain as anchor lines, to keep somewhere the store's
    writers cannot reach (later: `sidecar audit verify --anchor FILE`)."""
    try:
        store = open_store(settings)
    except FileNotFoundError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 1
    heads, events = store.heads(), store.events()
    if not heads:
        print("sidecar: no digest in the store yet: nothing to anchor", file=sys.stderr)
        return 1
    for doc in heads:
        print(json.dumps(head_of(doc), sort_keys=True))
    ledger_head = newest(events)
    if ledger_head is not None:  # the erasure and hold ledger's newest event: a cut ledger tail is seen too
        print(json.dumps({k: ledger_head.get(k) for k in ("sidecar.event.id", "sidecar.event.seq",
                                                           "sidecar.event.hash", "@timestamp")}, sort_keys=True))
    return 0
