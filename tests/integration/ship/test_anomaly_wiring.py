"""The anomaly detector as `sidecar run` wires it: shipper observer -> tick -> anomaly documents in the sink."""

from __future__ import annotations

import datetime as dt
import pathlib
import random
import threading
from typing import Any

from prometheus_client import CollectorRegistry

from sidecar.daemon.anomaly import AnomalyDetector
from sidecar.record import AuditRecord
from sidecar.ship import Shipper, SpoolDoc, SqliteStore
from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.ship.metrics import ShipperMetrics
from sidecar.spool import SpoolReader


def traffic(start: dt.datetime, hours: float, storm_from: dt.datetime) -> list[SpoolDoc]:
    """One call every 5 s; 0.5% 429s, then 25% 429s from ``storm_from``."""
    rnd = random.Random(7)
    docs = []
    for i in range(int(hours * 3600 / 5)):
        t = start + dt.timedelta(seconds=5 * i)
        share = 0.25 if t >= storm_from else 0.005
        status = 429 if rnd.random() < share else 200
        rec = AuditRecord(event_id=f"gen-{i + 1}", timestamp=t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                          producer_id="gen", sequence=i + 1, provider="openai", operation="chat",
                          request_model="gpt-4o-mini", status_code=status,
                          error_type=str(status) if status != 200 else None, event_duration=10_000_000)
        docs.append(SpoolDoc(rec.event_id, t.strftime("%Y.%m.%d"), rec.to_json().encode()))
    return docs


def run(tmp: pathlib.Path, sink: Any) -> tuple[AnomalyDetector, CollectorRegistry]:
    now = dt.datetime.now(tz=dt.timezone.utc).replace(microsecond=0)
    start = now - dt.timedelta(hours=6)
    docs = traffic(start, 6, storm_from=now - dt.timedelta(minutes=40))
    spool = tmp / "spool"
    spool.mkdir()
    (spool / "gen0-000001-1700000000000.jsonl").write_bytes(b"".join(d.raw + b"\n" for d in docs))
    registry = CollectorRegistry()
    detector = AnomalyDetector(tmp / "anomaly.json", registry)
    sink.open()
    shipper = Shipper(SpoolReader(spool, tmp / "state"), sink, metrics=ShipperMetrics(registry, sink=sink.name),
                      observers=[detector.observe_docs])
    shipper.ship_available(threading.Event())
    for doc in detector.tick(now=now.timestamp() + 3600):
        sink.write_anomaly(doc)
    return detector, registry


def test_anomalies_reach_the_embedded_store(tmp_path: pathlib.Path) -> None:
    store = SqliteStore(tmp_path / "audit.db")
    detector, registry = run(tmp_path, store)
    anomalies = store.anomalies()
    assert anomalies, "a 429 storm from 0.5% to 25% was not flagged"
    assert {a["http.response.status_code"] for a in anomalies} == {429}
    assert all(a["@timestamp"] >= (dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(minutes=50)).isoformat()[:16]
               for a in anomalies)  # only in the storm, none in the quiet hours before it
    score = registry.get_sample_value("sidecar_anomaly_score", {"provider": "openai", "model": "gpt-4o-mini",
                                                                "status_code": "429"})
    assert score is not None and score > 0
    detector.save()
    again = AnomalyDetector(tmp_path / "anomaly.json", CollectorRegistry())  # state survives a restart
    assert again.tick(now=dt.datetime.now(tz=dt.timezone.utc).timestamp() + 3600) == []


def test_anomalies_reach_elasticsearch(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                       elasticsearch_url: str) -> None:
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix)
    run(tmp_path, sink)
    es.refresh(f"{es_prefix}-*")
    hits = es.search(f"{es_prefix}-anomalies-*")
    assert hits and all(h["_source"]["sidecar.anomaly.kind"] for h in hits)
    assert hits[0]["_id"] == hits[0]["_source"]["event.id"]
