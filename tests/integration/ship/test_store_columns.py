"""The embedded store's query columns come from the document: they cannot be edited alone, a rebuilt table is
caught by verify, and a store from an older version is migrated with its documents intact."""

from __future__ import annotations

import json
import pathlib
import sqlite3
import stat

from audit_testing import RING, SqliteTarget, kinds, produce, ship

from sidecar.audit import VerifyFinding, verify
from sidecar.ship import QueryFilter, SqliteStore


def store(tmp_path: pathlib.Path) -> SqliteTarget:
    t = SqliteTarget(tmp_path / "audit.db")
    produce(tmp_path / "spool", "prodA", 30)
    ship(tmp_path / "spool", t.sink)
    return t


def verify_with_columns(t: SqliteTarget) -> object:
    columns = [VerifyFinding("altered", rid, detail) for rid, detail in SqliteStore(t.path).store_problems()]
    return verify(t.records(), t.digests(), RING, retention_days=90, store_findings=columns)


def test_columns_cannot_be_edited_alone(tmp_path: pathlib.Path) -> None:
    t = store(tmp_path)
    conn = sqlite3.connect(t.path)
    try:
        conn.execute("UPDATE records SET model = 'hidden' WHERE id = 'prodA-3'")
        raise AssertionError("a generated column was updated")
    except sqlite3.OperationalError as exc:
        assert "generated column" in str(exc)
    assert verify_with_columns(t).ok  # type: ignore[attr-defined]


def test_rebuilt_table_with_edited_columns_is_caught(tmp_path: pathlib.Path) -> None:
    """The attacker rebuilds `records` with plain columns and moves one record out of a filter's reach."""
    t = store(tmp_path)
    cols = "ts, service, provider, model, operation, status, error_type, user_id, day"
    conn = sqlite3.connect(t.path)
    with conn:
        conn.execute(f"CREATE TABLE r2 (id TEXT PRIMARY KEY, doc TEXT NOT NULL, {cols.replace(',', ' TEXT,')} TEXT)")
        conn.execute(f"INSERT INTO r2 SELECT id, doc, {cols} FROM records")
        conn.execute("DROP TABLE records")
        conn.execute("ALTER TABLE r2 RENAME TO records")
        conn.execute("UPDATE records SET model = 'other', user_id = 'nobody' WHERE id = 'prodA-3'")
    seen = [d["event.id"] for d in SqliteStore(t.path).query(QueryFilter(model="m-2", limit=None))]
    assert "prodA-3" not in seen  # the filter is fooled...
    report = verify_with_columns(t)
    assert "altered" in kinds(report)  # ...verify is not
    assert {f.where for f in report.findings} >= {"records", "prodA-3"}  # type: ignore[attr-defined]


def test_old_store_is_migrated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE records (id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, service TEXT, "
                 "provider TEXT, model TEXT, operation TEXT, status INTEGER, error_type TEXT, user_id TEXT, "
                 "doc TEXT NOT NULL)")
    conn.execute("CREATE INDEX records_ts ON records (ts)")
    doc = {"event.id": "p-1", "@timestamp": "2026-01-02T03:04:05.000000Z", "gen_ai.request.model": "m",
           "http.response.status_code": 429}
    conn.execute("INSERT INTO records VALUES ('p-1', ?, '2026.01.02', NULL, NULL, 'wrong', NULL, 200, NULL, NULL, ?)",
                 (doc["@timestamp"], json.dumps(doc)))
    conn.commit()
    conn.close()
    s = SqliteStore(path)
    s.open()
    assert [d["event.id"] for d in s.query(QueryFilter(model="m", status=429))] == ["p-1"]
    assert list(s.store_problems()) == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_loose_store_files_from_an_older_version_are_tightened(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()  # the connection stays open: -wal and -shm exist
    for p in (path, tmp_path / "audit.db-wal", tmp_path / "audit.db-shm"):
        p.chmod(0o644)
    tmp_path.chmod(0o755)
    s = SqliteStore(path)
    s.open()
    conn.close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
