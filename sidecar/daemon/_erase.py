"""`sidecar erase` and `sidecar hold add|remove|list`: erasure and legal holds as signed events.

Order of an erasure: match, refuse if any match is held, write the signed erasure event, replace the
records, then purge (so a crash leaves an event whose records still hold the fields: verify says
``unerased`` and running the same erase again finishes it; never an erasure without its event).
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sidecar.audit import KeyRing
from sidecar.audit.erasure import ErasureError, Selector, erase_doc, field_names, mask_denied, pseudonyms_in
from sidecar.audit.holds import CRITERIA, PREFIX, describe, holding
from sidecar.audit.ledger import FIELDS, HOLD_ID, RECORDS, SEQ, TAGS, make_event, newest, read_ledger
from sidecar.config import ShipperSettings
from sidecar.daemon._audit import AuditUsageError, key_ring
from sidecar.daemon._stores import RecordStore, open_records
from sidecar.ship import RecordReader


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _run(settings: ShipperSettings, args: argparse.Namespace, what: str,
         action: Callable[[KeyRing, RecordStore], int]) -> int:
    """``action`` on the configured store with the key ring; every failure is one line and an exit code."""
    try:
        ring = key_ring(settings, getattr(args, "keyring", None))
    except AuditUsageError as exc:
        _say(f"sidecar: {exc}")
        return 2
    try:
        store = open_records(settings)
    except FileNotFoundError as exc:
        _say(f"sidecar: {exc}")
        return 1
    try:
        return action(ring, store)
    except Exception as exc:  # unreachable cluster, locked store: one line
        _say(f"sidecar: {what} failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        store.close()


def _selector(args: argparse.Namespace) -> Selector:
    for by in ("user", "key_fingerprint", "conversation", "record"):
        value = getattr(args, by, None)
        if value is not None:
            return Selector(by, value)
    raise ValueError("give one of --user, --key-fingerprint, --conversation, --record")


def cmd_erase(settings: ShipperSettings, args: argparse.Namespace) -> int:
    return _run(settings, args, "erase",
                lambda ring, store: _erase(ring, store, args, _tags_of(settings, args.deny_value or [])))


def _tags_of(settings: ShipperSettings, values: list[str]) -> set[str]:
    """The pseudonym tags redaction gave these ``TYPE=value`` pairs (the subject's e-mail, phone...)."""
    if not values:
        return set()
    from sidecar.redact import Redactor, derive, load_or_create_key

    redactor = Redactor(derive(load_or_create_key(settings.hmac_key_text(), settings.key_file), "pseudonym"))
    return {redactor.placeholder(*v.split("=", 1)) for v in values}


def _erase(ring: KeyRing, store: RecordStore, args: argparse.Namespace, given: set[str]) -> int:
    started = time.perf_counter()
    sel, names = _selector(args), field_names(args.fields)
    raw_events = store.events()
    ledger, seen = read_ledger(raw_events, ring), _seq_of(newest(raw_events))
    matches = store.matching(sel.field, sel.value)
    held = {str(doc.get("event.id")): holding(ledger.holds(), doc) for _, doc in matches}
    held = {rid: ids for rid, ids in held.items() if ids}
    if held:
        ids = sorted({i for v in held.values() for i in v})
        _say(f"sidecar: refused: {len(held)} of the {len(matches)} records matching {sel.by} are under legal hold "
             f"{', '.join(ids)} (release it with `sidecar hold remove` first)")
        return 1
    try:
        todo = [(loc, *erase_doc(doc, names, ring)) for loc, doc in matches]
    except ErasureError as exc:
        _say(f"sidecar: refused: {exc}")
        return 1
    todo = [(loc, new, gone) for loc, new, gone in todo if gone]
    fields = sorted({n for _, _, gone in todo for n in gone})
    found = set().union(*(pseudonyms_in(doc, names) for _, doc in matches)) if args.deny_pseudonyms else set()
    tags = given | found
    if args.dry_run:
        _say(f"dry run: would erase {', '.join(fields) or 'nothing'} from {len(todo)} of {len(matches)} records "
             f"matching {sel.by} in {store.where}" + (f"; would deny {len(tags)} pseudonym tags" if tags else ""))
        return 0
    if not todo:
        _say(f"nothing to erase: {len(matches)} records match {sel.by}, none holds the {'/'.join(args.fields)} "
             "fields")
        return 0
    def build(head: dict[str, Any] | None) -> dict[str, Any]:
        if _seq_of(head) != seen:  # a hold may have been placed since the check: decide again
            raise RuntimeError("the ledger changed while erasing (a hold placed or another erasure): run it again")
        what = {RECORDS: sorted(str(new.get("event.id")) for _, new, _ in todo), FIELDS: fields,
                "sidecar.event.selector": sel.by, "sidecar.event.field_classes": sorted(args.fields)}
        return make_event("erasure", what, head, ring.current, operator=args.operator, reason=args.reason)

    event = store.append_event(build)
    errors = store.replace([(loc, new) for loc, new, _ in todo])
    if tags:
        store.append_event(lambda head: make_event("deny", {TAGS: sorted(tags)}, head, ring.current,
                                                   operator=args.operator, reason=args.reason))
    purged, clean = store.purge()
    for e in errors[:5]:
        _say(f"  not erased: {e}")
    took = time.perf_counter() - started
    _say(f"erased {', '.join(fields)} from {len(todo) - len(errors)} records matching {sel.by} in {store.where} "
         f"({took:.2f}s, {(len(todo) / took) if took else 0:,.0f} records/s); signed event {event['sidecar.event.id']}"
         + (f"; {len(tags)} pseudonym tags denied" if tags else "") + f"; {purged}")
    return 0 if clean and not errors else 1


def _seq_of(event: dict[str, Any] | None) -> int:
    return int(event.get(SEQ) or 0) if event else 0


def cmd_hold(settings: ShipperSettings, args: argparse.Namespace) -> int:
    def hold(ring: KeyRing, store: RecordStore) -> int:
        if args.hold_command == "add":
            return _hold_add(ring, store, args)
        if args.hold_command == "remove":
            return _hold_remove(ring, store, args)
        return _hold_list(ring, store)

    return _run(settings, args, f"hold {args.hold_command}", hold)


def _hold_add(ring: KeyRing, store: RecordStore, args: argparse.Namespace) -> int:
    crit = {PREFIX + k: getattr(args, k) for k in (*CRITERIA, "since", "until") if getattr(args, k, None)}
    if not crit:
        _say("sidecar: a hold needs at least one of --user, --conversation, --since/--until, --record")
        return 2
    hold_id = args.id or f"hold-{secrets.token_hex(4)}"
    ledger = read_ledger(store.events(), ring)
    if any(str(h.get(HOLD_ID)) == hold_id for h in ledger.holds()):
        _say(f"sidecar: hold {hold_id} is already in force")
        return 2
    event = store.append_event(lambda head: make_event("hold", {HOLD_ID: hold_id, **crit}, head, ring.current,
                                                       operator=args.operator, reason=args.reason))
    kept = store.holds_changed(read_ledger(store.events(), ring).holds())
    print(hold_id)
    _say(f"hold {hold_id} placed ({describe(event)}), signed event {event['sidecar.event.id']}; {kept}")
    return 0


def _hold_remove(ring: KeyRing, store: RecordStore, args: argparse.Namespace) -> int:
    if not any(str(h.get(HOLD_ID)) == args.hold_id for h in read_ledger(store.events(), ring).holds()):
        _say(f"sidecar: no hold {args.hold_id} in force (see `sidecar hold list`)")
        return 1
    event = store.append_event(lambda head: make_event("hold_release", {HOLD_ID: args.hold_id}, head, ring.current,
                                                       operator=args.operator, reason=args.reason))
    kept = store.holds_changed(read_ledger(store.events(), ring).holds())
    _say(f"hold {args.hold_id} released, signed event {event['sidecar.event.id']}; {kept}")
    return 0


def _hold_list(ring: KeyRing, store: RecordStore) -> int:
    ledger = read_ledger(store.events(), ring)
    for h in ledger.holds():
        print(f"{h[HOLD_ID]}  {describe(h)}  placed {h['@timestamp']} by {h['sidecar.event.operator']}: "
              f"{h['sidecar.event.reason']}")
    _say(f"{len(ledger.holds())} holds in force in {store.where}"
         + (f"; {len(ledger.problems)} ledger problems (run `sidecar audit verify`)" if ledger.problems else ""))
    return 1 if ledger.problems else 0


def denied_view(settings: ShipperSettings, store: RecordReader,
                docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``docs`` with the pseudonym tags of erased subjects shown as ``<erased>`` (signed ``deny`` events
    of the embedded store's ledger; without a usable key nothing is denied)."""
    try:
        ring = key_ring(settings, None)
        tags = read_ledger(store.events(), ring).denied_tags()
    except (AuditUsageError, sqlite3.Error):
        tags = set()
    for d in docs:
        yield mask_denied(d, tags) if tags else d


def add_parsers(sub: Any, since: Callable[[str], str]) -> None:
    """The `erase` and `hold` subcommands (called from the CLI's parser)."""
    er = sub.add_parser("erase", help="erase the content or personal fields of records, keeping the audit proof")
    who = er.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="ID")
    who.add_argument("--key-fingerprint", metavar="F", dest="key_fingerprint")
    who.add_argument("--conversation", metavar="ID")
    who.add_argument("--record", metavar="ID")
    er.add_argument("--fields", type=_classes, default=["content", "personal"],
                    help="content, personal, or content,personal (default: both)")
    er.add_argument("--dry-run", action="store_true", help="say what would be erased, change nothing")
    er.add_argument("--reason", required=True, help="why (kept in the signed erasure event)")
    er.add_argument("--operator", default=_whoami(), help="who asked (default: the login name)")
    er.add_argument("--deny-pseudonyms", action="store_true",
                    help="also deny the pseudonym tags found in the erased fields: views show <erased>")
    er.add_argument("--deny-value", action="append", type=_type_value, metavar="TYPE=VALUE",
                    help="deny the pseudonym tag of this value of the subject (e.g. EMAIL=a@b.example); repeatable")
    er.add_argument("--keyring", metavar="FILE", type=_path, help="older HMAC secrets (records made before a rotation)")
    hold = sub.add_parser("hold", help="legal holds: keep records past retention, refuse their erasure")
    hs = hold.add_subparsers(dest="hold_command", required=True)
    add = hs.add_parser("add", help="place a hold (any of user, conversation, time range, record)")
    add.add_argument("--user", metavar="ID")
    add.add_argument("--conversation", metavar="ID")
    add.add_argument("--since", type=since, help="from this time (ISO, or 7d)")
    add.add_argument("--until", type=since, help="before this time")
    add.add_argument("--record", metavar="ID")
    add.add_argument("--id", help="the hold's name (default: generated)")
    rm = hs.add_parser("remove", help="release a hold")
    rm.add_argument("hold_id")
    for p in (add, rm):
        p.add_argument("--reason", required=True)
        p.add_argument("--operator", default=_whoami())
    hs.add_parser("list", help="the holds in force")


def _classes(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    try:
        field_names(parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not parts:
        raise argparse.ArgumentTypeError("name content, personal or both")
    return parts


def _type_value(value: str) -> str:
    kind, sep, rest = value.partition("=")
    if not sep or not kind.isupper() or not rest:
        raise argparse.ArgumentTypeError(f"{value!r}: use TYPE=VALUE with an upper-case placeholder type, e.g. "
                                         "EMAIL=a@b.example")
    return value


def _path(value: str) -> Any:
    import pathlib

    return pathlib.Path(value)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
