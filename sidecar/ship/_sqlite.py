"""The embedded store: one SQLite file (WAL), searched by ``sidecar query``.

Used when no Elasticsearch URL is configured. The same documents as Elasticsearch
would index, keyed by record id (a re-sent record is ignored, so delivery is
effectively exactly-once), with a few indexed columns for the common filters.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sidecar.ship._sink import SpoolDoc, WriteResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    day TEXT NOT NULL,
    service TEXT,
    provider TEXT,
    model TEXT,
    operation TEXT,
    status INTEGER,
    error_type TEXT,
    user_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE INDEX IF NOT EXISTS records_day ON records (day);
CREATE INDEX IF NOT EXISTS records_provider_model ON records (provider, model);
CREATE INDEX IF NOT EXISTS records_status ON records (status);
CREATE TABLE IF NOT EXISTS deadletters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS anomalies (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    day TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS digests (
    id TEXT PRIMARY KEY,
    producer TEXT NOT NULL,
    ts TEXT NOT NULL,
    day TEXT NOT NULL,
    doc TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class QueryFilter:
    provider: str | None = None
    model: str | None = None
    status: int | None = None
    errors_only: bool = False
    since: str | None = None  # RFC 3339 lower bound on @timestamp
    until: str | None = None
    user: str | None = None
    service: str | None = None
    limit: int | None = 100


class SqliteStore:
    name = "embedded"

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def open(self) -> None:
        conn = self._conn()
        conn.executescript(_SCHEMA)
        conn.commit()

    def healthy(self) -> bool:
        try:
            self._conn().execute("SELECT 1 FROM records LIMIT 1")
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- Sink ------------------------------------------------------------------

    def write(self, docs: list[SpoolDoc], stop: threading.Event) -> WriteResult:
        result = WriteResult()
        rows = []
        bad: list[tuple[bytes, str]] = []
        for d in docs:
            try:
                doc = json.loads(d.raw)
            except ValueError:
                bad.append((d.raw, "invalid_json"))
                continue
            if not isinstance(doc, dict):
                bad.append((d.raw, "not_an_object"))
                continue
            status = doc.get("http.response.status_code")
            rows.append((d.doc_id, doc.get("@timestamp"), d.day, doc.get("service.name"),
                         doc.get("gen_ai.provider.name"), doc.get("gen_ai.request.model"),
                         doc.get("gen_ai.operation.name"), status if isinstance(status, int) else None,
                         doc.get("error.type"), doc.get("user.id"), d.raw.decode("utf-8", "replace")))
        conn = self._conn()
        with conn:  # one transaction: all of the batch or nothing
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            inserted = conn.total_changes - before
            for raw, reason in bad:
                self._insert_deadletter(conn, raw, reason)
        result.stored = len(rows)  # delivered: new or already present (see WriteResult)
        result.duplicates = len(rows) - inserted
        result.dead_lettered = len(bad)
        result.errors = [reason for _, reason in bad]
        return result

    def write_digest(self, doc: dict[str, Any]) -> None:
        conn = self._conn()
        with conn:
            conn.execute("INSERT OR IGNORE INTO digests VALUES (?,?,?,?,?)",
                         (doc["sidecar.digest.id"], doc["sidecar.producer.id"], doc["@timestamp"],
                          doc["@timestamp"][:10].replace("-", "."), json.dumps(doc)))

    def write_anomaly(self, doc: dict[str, Any]) -> None:
        conn = self._conn()
        with conn:
            conn.execute("INSERT OR IGNORE INTO anomalies VALUES (?,?,?,?)",
                         (doc["event.id"], doc["@timestamp"], doc["@timestamp"][:10].replace("-", "."),
                          json.dumps(doc, ensure_ascii=False)))

    def anomalies(self) -> list[dict[str, Any]]:
        return [json.loads(d) for (d,) in self._conn().execute("SELECT doc FROM anomalies ORDER BY ts, id")]

    def digests(self) -> list[dict[str, Any]]:
        return [json.loads(d) for (d,) in self._conn().execute("SELECT doc FROM digests ORDER BY producer, ts")]

    def all_records(self) -> Iterator[tuple[str, str]]:
        """(row id, raw document) of every record, for verification."""
        yield from self._conn().execute("SELECT id, doc FROM records")

    def dead_letter(self, raw: bytes, reason: str) -> None:
        conn = self._conn()
        with conn:
            self._insert_deadletter(conn, raw, reason)

    @staticmethod
    def _insert_deadletter(conn: sqlite3.Connection, raw: bytes, reason: str) -> None:
        now = dt.datetime.now(tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn.execute("INSERT INTO deadletters (ts, reason, raw) VALUES (?,?,?)", (now, reason, raw))

    # -- reading -------------------------------------------------------------

    def query(self, f: QueryFilter) -> Iterator[dict[str, Any]]:
        where, args = [], []
        for column, value in (("provider", f.provider), ("model", f.model), ("status", f.status),
                              ("user_id", f.user), ("service", f.service)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if f.errors_only:
            where.append("error_type IS NOT NULL")
        if f.since:
            where.append("ts >= ?")
            args.append(f.since)
        if f.until:
            where.append("ts < ?")
            args.append(f.until)
        sql = "SELECT doc FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, id"
        if f.limit is not None:
            sql += " LIMIT ?"
            args.append(f.limit)
        for (doc,) in self._conn().execute(sql, args):
            yield json.loads(doc)

    def count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM records").fetchone()[0])

    def deadletters(self) -> list[tuple[str, str, bytes]]:
        return list(self._conn().execute("SELECT ts, reason, raw FROM deadletters ORDER BY seq"))
