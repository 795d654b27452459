"""Generated attacks: one random mutation of a shipped store at a time, each must be detected.

Mutations an attacker with write access (and no key) can make: delete a record, change any field of a
record to another value, delete or change any digest, copy a record under a new id, swap two records.
(The one documented blind spot, cutting the newest records together with their digests, is tested
with and without an anchor in test_audit_verify.py.)"""

from __future__ import annotations

import json
import pathlib
import random
import sqlite3
from typing import Any

import pytest
from audit_testing import RING, SqliteTarget, produce, ship

from sidecar.audit import verify

CASES = 400
_VALUES: list[Any] = ["", "x", 0, 1, -1, 2.5, True, False, None, [], {}, ["a"], {"k": "v"}, "prodA-1", "0" * 64]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    base = tmp_path_factory.mktemp("store")
    t = SqliteTarget(base / "audit.db")
    produce(base / "spool", "prodA", 40)
    produce(base / "spool", "prodB", 30)
    ship(base / "spool", t.sink)
    assert t.verify().ok
    return base / "audit.db"


def mutate(t: SqliteTarget, rng: random.Random) -> str:
    records = sorted(t.records())
    digests = sorted(t.digests(), key=lambda g: g["sidecar.digest.id"])
    kind = rng.choice(["delete_record", "edit_record", "delete_digest", "edit_digest", "copy_record", "swap"])
    rid, doc = rng.choice(records)
    if kind == "delete_record":
        t.delete_record(rid)
    elif kind == "edit_record":
        name = rng.choice(sorted(doc))
        value = rng.choice([v for v in _VALUES if json.dumps(v) != json.dumps(doc[name])])
        t.put_record(rid, dict(doc, **{name: value}))
        return f"{kind} {rid} {name}={value!r}"
    elif kind == "delete_digest":
        g = rng.choice(digests)
        t.delete_digest(g["sidecar.digest.id"])
        return f"{kind} {g['sidecar.digest.id']}"
    elif kind == "edit_digest":
        g = rng.choice(digests)
        name = rng.choice(sorted(g))
        value = rng.choice([v for v in _VALUES if json.dumps(v) != json.dumps(g[name])])
        if name == "sidecar.digest.id":
            t.delete_digest(g["sidecar.digest.id"])
        t.put_digest(dict(g, **{name: value}) if name != "@timestamp" or (isinstance(value, str) and value)
                     else dict(g, **{name: "2020-01-01T00:00:00.000000Z"}))
        return f"{kind} {g['sidecar.digest.id']} {name}={value!r}"
    elif kind == "copy_record":
        t.put_record(rid + "x", doc)
    else:
        other, odoc = rng.choice([r for r in records if r[0] != rid])
        t.put_record(rid, odoc)
        t.put_record(other, doc)
        return f"{kind} {rid} {other}"
    return f"{kind} {rid}"


@pytest.mark.parametrize("seed", range(CASES))
def test_every_mutation_is_detected(shipped: pathlib.Path, tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "audit.db"
    with sqlite3.connect(shipped) as src, sqlite3.connect(path) as dst:  # a consistent copy, WAL included
        src.backup(dst)
    t = SqliteTarget(path)
    assert t.verify().ok
    what = mutate(t, random.Random(seed))
    report = t.verify()
    assert not report.ok, f"undetected: {what}"


@pytest.mark.parametrize("seed", range(40))
def test_a_repeated_key_is_detected(shipped: pathlib.Path, tmp_path: pathlib.Path, seed: int) -> None:
    """A document that states a field twice: Python keeps the last copy (the hash still matches), SQLite's
    json_extract (the query columns, --since, retention) the first. Verify must call it altered."""
    path = tmp_path / "audit.db"
    with sqlite3.connect(shipped) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    rng = random.Random(seed)
    with sqlite3.connect(path) as conn:
        rid, raw = rng.choice(sorted(conn.execute("SELECT id, doc FROM records").fetchall()))
        doc = json.loads(raw)
        name = rng.choice(sorted(doc))
        value = rng.choice([v for v in _VALUES if json.dumps(v) != json.dumps(doc[name])])
        forged = "{" + json.dumps(name) + ":" + json.dumps(value) + "," + raw.lstrip()[1:]
        assert json.loads(forged) == doc  # the last copy wins for Python: the keyed hash still holds
        conn.execute("UPDATE records SET doc = ? WHERE id = ?", (forged, rid))
    t = SqliteTarget(path)
    with sqlite3.connect(path) as conn:  # the raw stored text, as `sidecar audit verify` reads it
        raw_records = conn.execute("SELECT id, doc FROM records").fetchall()
    report = verify(raw_records, t.digests(), RING, retention_days=90)
    assert not report.ok and any(f.kind == "altered" and "repeats the key" in f.detail for f in report.findings), \
        [(f.kind, f.detail) for f in report.findings]
