"""`sidecar audit verify` must catch every kind of tampering, on the embedded store and on Elasticsearch."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sidecar.audit import sign, verify
from sidecar.audit._chain import chain_line
from sidecar.record import AuditRecord
from sidecar.ship import Shipper, SqliteStore
from sidecar.ship._elasticsearch import ElasticsearchSink
from sidecar.spool import SpoolConfig, SpoolReader, SpoolWriter
from sidecar.telemetry import Metrics

KEY = b"audit-test-key-0123456789abcdef"
BIN = pathlib.Path(sys.executable).parent
N = 120


def produce(spool: pathlib.Path, n: int = N, *, day: dt.date | None = None) -> None:
    """Records through the real spool writer: chained, sequenced, in several segments."""
    day = day or dt.datetime.now(tz=dt.timezone.utc).date()

    def process(item: int, seq: int) -> bytes:
        return AuditRecord(event_id=f"{writer.producer_id}-{seq}", timestamp=f"{day}T10:00:{item % 60:02d}.000000Z",
                           producer_id=writer.producer_id, sequence=seq, provider="openai",
                           request_model=f"m-{item}", status_code=200).to_json().encode()

    writer = SpoolWriter(SpoolConfig(spool, segment_bytes=8192, fsync="never"), "prodA", process,
                         Metrics(CollectorRegistry()))
    for i in range(n):
        writer.submit(i)
    assert writer.flush(10)
    writer.close()


def ship(spool: pathlib.Path, sink: Any) -> None:
    sink.open()
    Shipper(SpoolReader(spool, spool / ".state"), sink, batch_size=25, digest_key=KEY).ship_available(
        threading.Event())


@pytest.fixture
def store(tmp_path: pathlib.Path) -> SqliteStore:
    spool = tmp_path / "spool"
    produce(spool)
    s = SqliteStore(tmp_path / "audit.db")
    ship(spool, s)
    assert s.count() == N and len(s.digests()) >= 3
    return s


def run_verify(s: SqliteStore, key: bytes = KEY) -> Any:
    return verify(s.all_records(), s.digests(), key, retention_days=90)


def db(s: SqliteStore) -> sqlite3.Connection:
    conn = sqlite3.connect(s.path)
    conn.isolation_level = None
    return conn


def doc_of(conn: sqlite3.Connection, rid: str) -> dict[str, Any]:
    return json.loads(conn.execute("SELECT doc FROM records WHERE id = ?", (rid,)).fetchone()[0])


def test_intact_store_verifies(store: SqliteStore) -> None:
    report = run_verify(store)
    assert report.ok, report.findings
    assert report.records == N and report.covered == N


def test_deleted_record(store: SqliteStore) -> None:
    conn = db(store)
    conn.execute("DELETE FROM records WHERE id = 'prodA-50'")
    report = run_verify(store)
    assert not report.ok
    assert report.findings[0].kind == "deleted" and report.findings[0].where == "prodA-51"


def test_altered_record(store: SqliteStore) -> None:
    conn = db(store)
    doc = doc_of(conn, "prodA-30")
    doc["gen_ai.request.model"] = "something-else"
    conn.execute("UPDATE records SET doc = ? WHERE id = 'prodA-30'", (json.dumps(doc),))
    report = run_verify(store)
    assert [(f.kind, f.where) for f in report.findings][:1] == [("altered", "prodA-30")]


def test_reordered_records(store: SqliteStore) -> None:
    conn = db(store)
    a, b = doc_of(conn, "prodA-10"), doc_of(conn, "prodA-11")
    conn.execute("UPDATE records SET doc = ? WHERE id = 'prodA-10'", (json.dumps(b),))
    conn.execute("UPDATE records SET doc = ? WHERE id = 'prodA-11'", (json.dumps(a),))
    report = run_verify(store)
    assert {f.kind for f in report.findings} == {"reordered"}
    assert {f.where for f in report.findings} == {"prodA-10", "prodA-11"}


def test_reordered_by_rechaining_is_still_caught(store: SqliteStore) -> None:
    """Swap two records' positions and re-hash both as a forger without the chain's history would."""
    conn = db(store)
    a, b = doc_of(conn, "prodA-20"), doc_of(conn, "prodA-21")
    a["sidecar.sequence"], b["sidecar.sequence"] = 21, 20
    for d in (a, b):
        body = {k: v for k, v in d.items() if not k.startswith("sidecar.chain.")}
        line, _ = chain_line(json.dumps(body, separators=(",", ":")).encode(), d["sidecar.chain.prev"])
        conn.execute("UPDATE records SET doc = ? WHERE id = ?", (line.decode(), d["event.id"]))
    report = run_verify(store)
    assert not report.ok
    assert report.findings[0].kind in ("reordered", "inserted", "altered")


def test_inserted_record(store: SqliteStore) -> None:
    conn = db(store)
    victim = doc_of(conn, "prodA-40")
    forged = {k: v for k, v in victim.items() if not k.startswith("sidecar.chain.")}
    forged["event.id"] = "prodA-40b"
    forged["gen_ai.request.model"] = "planted"
    line, _ = chain_line(json.dumps(forged, separators=(",", ":")).encode(), victim["sidecar.chain.prev"])
    conn.execute("INSERT INTO records (id, ts, day, doc) VALUES ('prodA-40b', ?, ?, ?)",
                 (forged["@timestamp"], "x", line.decode()))
    report = run_verify(store)
    assert report.findings and report.findings[0].kind == "inserted"
    assert {f.where for f in report.findings} & {"prodA-40b", "prodA-40"}


def test_forged_and_missing_digests(store: SqliteStore) -> None:
    conn = db(store)
    digests = store.digests()
    forged = dict(digests[1])
    forged["sidecar.digest.count"] = 1
    sign(forged, b"not-the-key")
    conn.execute("UPDATE digests SET doc = ? WHERE id = ?", (json.dumps(forged), forged["sidecar.digest.id"]))
    report = run_verify(store)
    assert report.findings[0].kind == "forged_digest" and report.findings[0].where == forged["sidecar.digest.id"]
    assert "missing_digest" in {f.kind for f in report.findings}  # the chain of digests is broken too


def test_deleted_digest(store: SqliteStore) -> None:
    conn = db(store)
    gone = store.digests()[1]["sidecar.digest.id"]
    conn.execute("DELETE FROM digests WHERE id = ?", (gone,))
    report = run_verify(store)
    assert [f.kind for f in report.findings] == ["missing_digest"]


def test_wrong_key_fails_every_digest(store: SqliteStore) -> None:
    report = run_verify(store, key=b"another-key")
    assert {f.kind for f in report.findings} == {"forged_digest"}


def test_deleting_a_whole_segment_with_its_digest(store: SqliteStore) -> None:
    conn = db(store)
    g = store.digests()[1]
    conn.execute("DELETE FROM digests WHERE id = ?", (g["sidecar.digest.id"],))
    for seq in range(g["sidecar.digest.first_sequence"], g["sidecar.digest.last_sequence"] + 1):
        conn.execute("DELETE FROM records WHERE id = ?", (f"prodA-{seq}",))
    kinds = {f.kind for f in run_verify(store).findings}
    assert {"deleted", "missing_digest"} <= kinds


def cut_first_segment(tmp: pathlib.Path, name: str, day: dt.date | None = None) -> SqliteStore:
    """A store whose first segment (records and digest) is gone, as the retention enforcer leaves it."""
    spool = tmp / name
    produce(spool, 60, day=day)
    s = SqliteStore(tmp / f"{name}.db")
    ship(spool, s)
    conn = db(s)
    first = s.digests()[0]
    conn.execute("DELETE FROM digests WHERE id = ?", (first["sidecar.digest.id"],))
    for seq in range(1, first["sidecar.digest.last_sequence"] + 1):
        conn.execute("DELETE FROM records WHERE id = ?", (f"prodA-{seq}",))
    return s


def test_retention_deletion_is_not_tampering(tmp_path: pathlib.Path) -> None:
    old_day = dt.datetime.now(tz=dt.timezone.utc).date() - dt.timedelta(days=95)
    assert run_verify(cut_first_segment(tmp_path, "old", old_day)).ok  # the chain may start past the limit
    # The same cut on young records is tampering.
    assert {f.kind for f in run_verify(cut_first_segment(tmp_path, "young")).findings} >= {"deleted"}


def test_cli_exit_codes(tmp_path: pathlib.Path, model_url: str) -> None:
    spool = tmp_path / "spool"
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(spool), SIDECAR_HMAC_KEY="cli-key")
    app = ("import httpx, sidecar; sidecar.instrument();"
           f"[httpx.post('{model_url}/v1/chat/completions', json={{'model': 'm', 'messages': []}}) for _ in range(5)]")
    subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=120)
    assert subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, timeout=120).returncode == 0
    ok = subprocess.run([str(BIN / "sidecar"), "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stderr, ok.stderr
    conn = sqlite3.connect(spool / ".sidecar" / "audit.db")
    rid = conn.execute("SELECT id FROM records ORDER BY ts LIMIT 1 OFFSET 2").fetchone()[0]
    conn.execute("DELETE FROM records WHERE id = ?", (rid,))
    conn.commit()
    bad = subprocess.run([str(BIN / "sidecar"), "audit", "verify", "--json"], env=env, capture_output=True,
                         text=True)
    assert bad.returncode == 1
    first = json.loads(bad.stdout.splitlines()[0])
    assert first["kind"] == "deleted"
    wrong_key = subprocess.run([str(BIN / "sidecar"), "audit", "verify"], capture_output=True, text=True,
                               env=dict(env, SIDECAR_HMAC_KEY="other"))
    assert wrong_key.returncode == 1 and "forged_digest" in wrong_key.stdout


def test_elasticsearch_mutations(tmp_path: pathlib.Path, es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    spool = tmp_path / "spool"
    produce(spool)
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix)
    ship(spool, sink)
    es.refresh(f"{es_prefix}-*")

    def check() -> Any:
        es.refresh(f"{es_prefix}-*")
        records = sink.scan(f"{es_prefix}-2*", ["sidecar.producer.id", "sidecar.sequence", "event.id"])
        digests = [d for _, d in sink.scan(f"{es_prefix}-digests-*", ["@timestamp"])]
        return verify(records, digests, KEY, retention_days=90)

    started = time.perf_counter()
    assert check().ok
    assert time.perf_counter() - started < 60
    index = es.indices(f"{es_prefix}-2*")[0]
    original = es.request("GET", f"/{index}/_doc/prodA-60")["_source"]
    altered = dict(original, **{"gen_ai.request.model": "altered"})
    es.request("PUT", f"/{index}/_doc/prodA-60", altered, ok=(200, 201))
    assert [(f.kind, f.where) for f in check().findings][:1] == [("altered", "prodA-60")]
    es.request("PUT", f"/{index}/_doc/prodA-60", original, ok=(200, 201))
    assert check().ok
    es.request("DELETE", f"/{index}/_doc/prodA-70")
    report = check()
    assert report.findings[0].kind == "deleted" and report.findings[0].where == "prodA-71"
    es.request("PUT", f"/{index}/_doc/prodA-70", dict(original, **{"event.id": "prodA-70"}), ok=(200, 201))
    kinds = {f.kind for f in check().findings}
    assert kinds & {"altered", "reordered", "inserted"}  # a planted stand-in does not pass
    digest_index = es.indices(f"{es_prefix}-digests-*")[0]
    hits = es.search(digest_index)
    forged = dict(hits[0]["_source"], **{"sidecar.digest.count": 3})
    sign(forged, b"wrong-key")
    es.request("PUT", f"/{digest_index}/_doc/{hits[0]['_id']}", forged, ok=(200, 201))
    assert "forged_digest" in {f.kind for f in check().findings}
