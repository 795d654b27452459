"""Two stores under attack through one interface: the embedded SQLite store and a real Elasticsearch.

Records come from the real spool writer (keyed chains), are shipped by the real Shipper (signed digests in
one sidecar chain); the attacks then edit the store directly, as someone with write access would."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pathlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from sidecar.audit import IntegrityKey, KeyRing, verify
from sidecar.record import AuditRecord
from sidecar.redact import derive
from sidecar.ship import Shipper, SqliteStore
from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.spool import SpoolConfig, SpoolReader, SpoolWriter
from sidecar.telemetry import Metrics

SECRET = b"audit-test-key-0123456789abcdef"
KEY = IntegrityKey(derive(SECRET, "integrity"))
RING = KeyRing([KEY])


def produce(spool: pathlib.Path, producer: str, n: int, *, key: IntegrityKey = KEY,
            start: dt.datetime | None = None) -> None:
    """``n`` records of one producer through the real spool writer, in several segments, stamped
    from ``start`` (default: two hours ago, so past the digest grace period) one second apart."""
    start = start or dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(hours=2)

    def process(item: int, seq: int) -> bytes:
        ts = (start + dt.timedelta(seconds=item)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return AuditRecord(event_id=f"{producer}-{seq}", timestamp=ts, producer_id=producer, sequence=seq,
                           provider="openai", request_model=f"m-{item % 3}", status_code=200,
                           user_id=f"user-{item % 4}", request_content=f"prompt {item}").to_json().encode()

    write_records(spool, producer, n, process, key=key, segment_bytes=6000, flush_timeout=10)


def write_records(spool: pathlib.Path, producer: str, n: int, process: Callable[[int, int], bytes], *,
                  key: IntegrityKey = KEY, segment_bytes: int, flush_timeout: float) -> None:
    """Items ``0..n-1`` through the real spool writer (``process(item, seq)`` makes each line), chained
    with ``key``, flushed and closed."""
    writer = SpoolWriter(SpoolConfig(spool, segment_bytes=segment_bytes, fsync="never", chain_key=key), producer,
                         process, Metrics(CollectorRegistry()))
    for i in range(n):
        writer.submit(i)
    assert writer.flush(flush_timeout)
    writer.close()


def ship(spool: pathlib.Path, sink: Any, *, key: IntegrityKey = KEY, state: pathlib.Path | None = None) -> Shipper:
    sink.open()
    shipper = Shipper(SpoolReader(spool, state or spool.parent / "state"), sink, batch_size=25, digest_key=key,
                      digest_store=sink)
    shipper.ship_available(threading.Event())
    return shipper


class Target:
    """What an attacker with write access does, for one kind of store."""

    name = ""
    sink: Any

    def records(self) -> list[tuple[str, dict[str, Any]]]: ...
    def digests(self) -> list[dict[str, Any]]: ...
    def delete_record(self, rid: str) -> None: ...
    def put_record(self, rid: str, doc: dict[str, Any]) -> None: ...
    def delete_digest(self, gid: str) -> None: ...
    def put_digest(self, doc: dict[str, Any]) -> None: ...

    def record(self, rid: str) -> dict[str, Any]:
        return next(d for i, d in self.records() if i == rid)

    def verify(self, **kw: Any) -> Any:
        kw.setdefault("keys", RING)
        keys = kw.pop("keys")
        return verify(self.records(), self.digests(), keys, retention_days=90, **kw)


class SqliteTarget(Target):
    name = "embedded"

    def __init__(self, path: pathlib.Path) -> None:
        self.sink = SqliteStore(path)
        self.path = path

    def _db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path)
        conn.isolation_level = None
        return conn

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        return [(i, json.loads(d)) for i, d in self._db().execute("SELECT id, doc FROM records")]

    def digests(self) -> list[dict[str, Any]]:
        return [json.loads(d) for (d,) in self._db().execute("SELECT doc FROM digests")]

    def delete_record(self, rid: str) -> None:
        self._db().execute("DELETE FROM records WHERE id = ?", (rid,))

    def put_record(self, rid: str, doc: dict[str, Any]) -> None:
        self._db().execute("INSERT OR REPLACE INTO records (id, doc) VALUES (?, ?)", (rid, json.dumps(doc)))

    def delete_digest(self, gid: str) -> None:
        self._db().execute("DELETE FROM digests WHERE id = ?", (gid,))

    def put_digest(self, doc: dict[str, Any]) -> None:
        self._db().execute("INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?)",
                           (str(doc["sidecar.digest.id"]), str(doc.get("sidecar.producer.id", "")),
                            str(doc["@timestamp"]), str(doc["@timestamp"])[:10].replace("-", "."), json.dumps(doc)))


class EsTarget(Target):
    name = "elasticsearch"

    def __init__(self, es: Any, url: str, prefix: str) -> None:
        self.es, self.prefix = es, prefix
        self.sink = ElasticsearchSink(url, index_prefix=prefix)

    def _hits(self, pattern: str) -> list[dict[str, Any]]:
        self.es.refresh(f"{self.prefix}-*")
        res = self.es.request("POST", f"/{pattern}/_search?allow_no_indices=true", {"size": 5000})
        return list(res["hits"]["hits"])

    def _where(self, pattern: str, doc_id: str) -> str:
        return next(h["_index"] for h in self._hits(pattern) if h["_id"] == doc_id)

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        self.es.refresh(f"{self.prefix}-*")
        return list(self.sink.scan(f"{self.prefix}-2*", ["sidecar.producer.id", "sidecar.sequence", "event.id"]))

    def digests(self) -> list[dict[str, Any]]:
        self.es.refresh(f"{self.prefix}-*")
        return [d for _, d in self.sink.scan(f"{self.prefix}-digests-*", ["@timestamp", "sidecar.digest.id"])]

    def delete_record(self, rid: str) -> None:
        self.es.request("DELETE", f"/{self._where(self.prefix + '-2*', rid)}/_doc/{rid}")

    def put_record(self, rid: str, doc: dict[str, Any]) -> None:
        index = f"{self.prefix}-{doc['@timestamp'][:10].replace('-', '.')}"
        self.es.request("PUT", f"/{index}/_doc/{rid}", doc, ok=(200, 201))

    def delete_digest(self, gid: str) -> None:
        self.es.request("DELETE", f"/{self._where(self.prefix + '-digests-*', gid)}/_doc/{gid}")

    def put_digest(self, doc: dict[str, Any]) -> None:
        index = f"{self.prefix}-digests-{doc['@timestamp'][:10].replace('-', '.')}"
        self.es.request("PUT", f"/{index}/_doc/{doc['sidecar.digest.id']}", doc, ok=(200, 201))


def rechain_unkeyed(doc: dict[str, Any], prev: str) -> dict[str, Any]:
    """What the old scheme allowed: recompute a record's hash with plain SHA-256, no key."""
    body = {k: v for k, v in doc.items() if k not in ("sidecar.chain.prev", "sidecar.chain.hash")}
    line = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return dict(body, **{"sidecar.chain.prev": prev,
                         "sidecar.chain.hash": hashlib.sha256(prev.encode() + b"\n" + line).hexdigest()})


def kinds(report: Any) -> set[str]:
    return {f.kind for f in report.findings}
