"""The signed ledger of erasures, legal holds and pseudonym denials.

Each event is one document, signed like a digest but in its own domain (so an event can never pass
for a digest, nor the reverse) and chained like the digests: ``sidecar.event.seq`` runs 1, 2, 3...
and ``sidecar.event.prev`` is the previous event's hash. Removing an event from the middle breaks a
signed link (``missing_event``); removing the newest *erasure* event leaves records erased with no
event that authorises them (``unsigned_erasure``, see _verify.py); a forged event fails its signature
(``forged_event``). Stores give an event the id ``event-{seq:08d}`` and create it only if absent, so
two writers racing for the same seq cannot both win: the loser reads the new head and tries again.

Kinds and their own fields:

* ``erasure``: ``sidecar.event.records`` (ids), ``sidecar.event.fields`` (names), the selector used;
* ``hold``: ``sidecar.hold.id`` and its criteria (``user``, ``conversation``, ``since``, ``until``,
  ``record``); ``hold_release``: ``sidecar.hold.id``;
* ``deny``: ``sidecar.event.tags``, pseudonym tags that views show as ``<erased>``.

Every event has ``@timestamp``, ``sidecar.event.operator`` and ``sidecar.event.reason``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sidecar.audit._keys import IntegrityKey, KeyRing
from sidecar.audit._signing import SignedFields
from sidecar.clock import format_utc

KIND = "sidecar.event.kind"
SEQ = "sidecar.event.seq"
PREV = "sidecar.event.prev"
EID = "sidecar.event.id"
HASH = "sidecar.event.hash"
SIGNATURE = "sidecar.event.signature"
KEY_ID = "sidecar.event.key_id"
RECORDS = "sidecar.event.records"
FIELDS = "sidecar.event.fields"
TAGS = "sidecar.event.tags"
HOLD_ID = "sidecar.hold.id"
KINDS = ("erasure", "hold", "hold_release", "deny")
_DOMAIN = b"llm-audit-sidecar/ledger-event/v1\n"
_SIGNED = SignedFields(hash=HASH, signature=SIGNATURE, key_id=KEY_ID, domain=_DOMAIN, name="event")


def event_id(seq: int) -> str:
    return f"event-{seq:08d}"


def make_event(kind: str, fields: dict[str, Any], head: dict[str, Any] | None, key: IntegrityKey, *,
               operator: str, reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The signed event that follows ``head`` (the newest event in the store, or None)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    seq = int(head[SEQ]) + 1 if head else 1
    when = format_utc(now)
    doc: dict[str, Any] = {"@timestamp": when, EID: event_id(seq), KIND: kind, SEQ: seq,
                           PREV: str(head[HASH]) if head else "", "sidecar.event.operator": operator,
                           "sidecar.event.reason": reason, **fields, KEY_ID: key.key_id}
    return _SIGNED.sign(doc, key)


def event_problem(doc: dict[str, Any], keys: KeyRing) -> str | None:
    """None for a genuine event; else why not."""
    problem = _SIGNED.problem(doc, keys)
    if problem is not None:
        return problem
    if doc.get(KIND) not in KINDS or not isinstance(doc.get(SEQ), int):
        return "not a ledger event"
    return None


@dataclass
class Ledger:
    """The events that verify, in order, and what is wrong with the rest."""

    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)  # (kind, where, detail, @timestamp)

    def authorised(self) -> dict[str, set[str]]:
        """Record id -> the field names a signed erasure event removed from it."""
        out: dict[str, set[str]] = {}
        for e in self.events:
            if e[KIND] == "erasure":
                names = {str(n) for n in e.get(FIELDS) or []}
                for rid in e.get(RECORDS) or []:
                    out.setdefault(str(rid), set()).update(names)
        return out

    def holds(self) -> list[dict[str, Any]]:
        """The holds in force: placed by a signed event and not released by a later one."""
        active: dict[str, dict[str, Any]] = {}
        for e in self.events:
            if e[KIND] == "hold":
                active[str(e.get(HOLD_ID))] = e
            elif e[KIND] == "hold_release":
                active.pop(str(e.get(HOLD_ID)), None)
        return list(active.values())

    def denied_tags(self) -> set[str]:
        return {str(t) for e in self.events if e[KIND] == "deny" for t in e.get(TAGS) or []}


def read_ledger(events: Iterable[dict[str, Any]], keys: KeyRing) -> Ledger:
    """Check signatures and links; the returned ledger holds only the genuine events."""
    ledger = Ledger()
    good = []
    for e in events:
        problem = event_problem(e, keys)
        if problem is None:
            good.append(e)
        else:
            ledger.problems.append(("forged_event", str(e.get(EID, "?")), problem, str(e.get("@timestamp", ""))))
    good.sort(key=lambda e: (int(e[SEQ]), str(e[HASH])))
    before: dict[str, Any] | None = None
    for e in good:
        expected_seq, expected_prev = (int(before[SEQ]) + 1, before[HASH]) if before else (1, "")
        if int(e[SEQ]) != expected_seq or e[PREV] != expected_prev:
            what = "a second event with" if before and int(e[SEQ]) == int(before[SEQ]) else "the event before"
            seq = int(e[SEQ]) if what.startswith("a second") else expected_seq
            ledger.problems.append(("missing_event", str(e[EID]), f"{what} seq {seq} of the erasure and hold "
                                    "ledger is missing or replaced", str(e["@timestamp"])))
        ledger.events.append(e)
        before = e
    return ledger


def newest(events: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The event with the highest seq (the head the next event links to)."""
    return max(events, key=lambda e: int(e.get(SEQ) or 0), default=None)
