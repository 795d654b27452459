"""Generated erasures of a shipped embedded store: every erasure verify accepts is one a signed event
authorises, field for field; everything else is reported."""

from __future__ import annotations

import json
import pathlib
import random
import sqlite3
from typing import Any

from audit_testing import KEY, RING, SqliteTarget, produce, ship

from sidecar.audit import IntegrityKey, field_digest, verify
from sidecar.audit.erasure import FIELD_CLASSES, erase_doc
from sidecar.audit.ledger import make_event

ERASABLE = [*FIELD_CLASSES["content"], *FIELD_CLASSES["personal"]]


def _store(tmp_path: pathlib.Path) -> SqliteTarget:
    t = SqliteTarget(tmp_path / "audit.db")
    produce(tmp_path / "spool", "gen", 60)
    ship(tmp_path / "spool", t.sink)
    return t


def _events(*specs: tuple[list[str], list[str]], key: IntegrityKey = KEY) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for records, fields in specs:
        out.append(make_event("erasure", {"sidecar.event.records": records, "sidecar.event.fields": fields},
                              out[-1] if out else None, key, operator="gen", reason="gen"))
    return out


def test_generated_erasures(tmp_path: pathlib.Path) -> None:
    t = _store(tmp_path)
    rng = random.Random(20)
    original = dict(t.records())
    for case in range(120):
        rid = rng.choice(sorted(original))
        doc = original[rid]
        present = [n for n in ERASABLE if n in doc]
        chosen = rng.sample(present, rng.randint(1, len(present)))
        erased, gone = erase_doc(doc, chosen, RING)
        assert sorted(gone) == sorted(chosen) and not set(chosen) & erased.keys()
        t.put_record(rid, erased)
        records = list(t.records())
        digests = t.digests()
        mode = case % 5
        if mode == 0:  # authorised exactly
            events = _events(([rid], chosen))
            expected: list[tuple[str, str]] = []
        elif mode == 1:  # no event
            events, expected = [], [("unsigned_erasure", rid)]
        elif mode == 2 and len(chosen) > 1:  # the event names fewer fields than were removed
            events, expected = _events(([rid], chosen[:-1])), [("unsigned_erasure", rid)]
        elif mode == 3:  # the event names another record (which still holds those fields)
            other = next(r for r in sorted(original) if r != rid)
            events, expected = _events(([other], chosen)), [("unsigned_erasure", rid), ("unerased", other)]
        else:  # an event signed with another key
            events = _events(([rid], chosen), key=IntegrityKey(b"not the key"))
            expected = [("unsigned_erasure", rid), ("forged_event", "event-00000001")]
        report = verify(records, digests, RING, retention_days=90, events=events)
        assert sorted((f.kind, f.where) for f in report.findings) == sorted(expected), (case, chosen)
        assert report.erased == 1
        t.put_record(rid, doc)


def test_erased_record_with_any_kept_digest_changed_is_altered(tmp_path: pathlib.Path) -> None:
    t = _store(tmp_path)
    rng = random.Random(7)
    for rid, doc in rng.sample(t.records(), 20):
        erased, gone = erase_doc(doc, ERASABLE, RING)
        events = _events(([rid], gone))
        name = rng.choice(gone)
        for bad in (field_digest(KEY, name, "guess"), "0" * 64, field_digest(KEY, name + "x", doc[name])):
            t.put_record(rid, dict(erased, **{"sidecar.erased": dict(erased["sidecar.erased"], **{name: bad})}))
            found = [(f.kind, f.where) for f in verify(t.records(), t.digests(), RING, retention_days=90,
                                                       events=events).findings]
            assert found == [("altered", rid)]
        t.put_record(rid, doc)


def test_ledger_links(tmp_path: pathlib.Path) -> None:
    """Events removed, swapped or duplicated in the middle of the ledger are reported."""
    t = _store(tmp_path)
    rids = sorted(dict(t.records()))[:4]
    events = _events(*[([r], ["sidecar.request.content"]) for r in rids])
    for r in rids:
        t.put_record(r, erase_doc(t.record(r), ["sidecar.request.content"], RING)[0])
    assert verify(t.records(), t.digests(), RING, retention_days=90, events=events).ok
    for broken in (events[:1] + events[2:], [events[0], events[2], events[1], events[3], events[2]]):
        report = verify(t.records(), t.digests(), RING, retention_days=90, events=broken)
        assert "missing_event" in {f.kind for f in report.findings}
    conn = sqlite3.connect(t.path)
    assert conn.execute("SELECT count(*) FROM records WHERE doc LIKE '%sidecar.erased%'").fetchone()[0] == 4
    assert all("sidecar.request.content" not in json.loads(d) for (d,) in
               conn.execute("SELECT doc FROM records WHERE doc LIKE '%sidecar.erased%'"))
