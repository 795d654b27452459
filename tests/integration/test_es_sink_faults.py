"""ElasticsearchSink under injected faults (a proxy in front of the real Elasticsearch).

After every recovery: the set of ``_id``s in Elasticsearch equals the set written, each once.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.ship._sink import SinkStopped
from sidecar.ship.elasticsearch import ElasticsearchError, ElasticsearchSink
from sidecar.spool import SpoolDoc


def _sink(url: str, prefix: str, **kw: Any) -> ElasticsearchSink:
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.4)
    return ElasticsearchSink(url, index_prefix=prefix, **kw)


def _opened(url: str, prefix: str, **kw: Any) -> ElasticsearchSink:
    sink = _sink(url, prefix, **kw)
    sink.open()
    return sink


def _exactly_once(es: Any, prefix: str, docs: list[SpoolDoc]) -> None:
    ids = es.ids(f"{prefix}-2*")
    assert ids == sorted(d.doc_id for d in docs)  # sorted list with duplicates kept: each once, none missing


@pytest.mark.parametrize("status", [429, 503, 502])
def test_whole_request_errors_are_retried_until_stored(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any, status: int
) -> None:
    sink = _opened(fault_proxy.url, es_prefix)
    docs = docs_factory(200)
    fault_proxy.fail_bulk(3, status)
    result = sink.write(docs, threading.Event())

    assert fault_proxy.faults_served == [str(status)] * 3
    assert (result.stored, result.duplicates, result.retries) == (200, 0, 3)
    assert sink.retries == 3 and sink.bulk_failures == 3
    _exactly_once(es, es_prefix, docs)


@pytest.mark.parametrize("after_forward", [False, True], ids=["before-es", "after-es"])
def test_connection_reset_is_retried(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any, after_forward: bool
) -> None:
    sink = _opened(fault_proxy.url, es_prefix)
    docs = docs_factory(150)
    fault_proxy.reset_bulk(2, after_forward=after_forward)
    result = sink.write(docs, threading.Event())

    assert fault_proxy.faults_served == ["reset", "reset"]
    assert result.retries == 2 and result.stored == 150
    # After ES had processed the request, the retry finds the documents there: 409 = delivered.
    assert result.duplicates == (150 if after_forward else 0)
    _exactly_once(es, es_prefix, docs)


def test_stalled_request_times_out_and_is_retried(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any
) -> None:
    sink = _opened(fault_proxy.url, es_prefix, timeout=1.0)
    docs = docs_factory(80)
    fault_proxy.stall_bulk(1, 5.0, after_forward=True)
    started = time.monotonic()
    result = sink.write(docs, threading.Event())

    assert time.monotonic() - started < 4.0  # the read timeout, not the stall, decided
    assert fault_proxy.faults_served == ["stall"]
    assert (result.stored, result.duplicates, result.retries) == (80, 80, 1)
    assert "Timeout" in (sink.last_error or "")
    _exactly_once(es, es_prefix, docs)


def test_413_splits_the_batch(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any, tmp_path: Path
) -> None:
    sink = _opened(fault_proxy.url, es_prefix, deadletter_dir=tmp_path)
    docs = docs_factory(300)
    size = sum(len(d.raw) for d in docs)
    fault_proxy.max_bulk_bytes = size // 5  # like http.max_content_length, far below batch_max_bytes
    result = sink.write(docs, threading.Event())

    assert (result.stored, result.dead_lettered, result.retries) == (300, 0, 0)
    assert fault_proxy.faults_served.count("413") >= 3
    through = [(n, size) for n, size, outcome in fault_proxy.bulk_log if outcome == "ok"]
    assert sum(n for n, _ in through) == 300  # after the splits every document went through once
    assert all(size <= fault_proxy.max_bulk_bytes for _, size in through)
    _exactly_once(es, es_prefix, docs)


def test_413_for_a_single_document_dead_letters_it(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any, tmp_path: Path
) -> None:
    sink = _opened(fault_proxy.url, es_prefix, deadletter_dir=tmp_path)
    docs = docs_factory(20)
    big = json.loads(docs[4].raw)
    big["sidecar.request.content"] = "x" * 20_000
    docs[4] = SpoolDoc(docs[4].doc_id, docs[4].day, json.dumps(big).encode())
    fault_proxy.max_bulk_bytes = 10_000
    result = sink.write(docs, threading.Event())

    assert (result.stored, result.dead_lettered) == (19, 1)
    _exactly_once(es, es_prefix, docs[:4] + docs[5:])
    # The dead letter carries the whole original, so the dead-letter index refuses it too: local file.
    rows = [json.loads(line) for p in tmp_path.glob("deadletter-*.jsonl") for line in p.read_text().splitlines()]
    assert [r["sidecar.original_id"] for r in rows] == [docs[4].doc_id]
    assert rows[0]["error.type"] == "request_entity_too_large"


def test_stop_during_backoff_raises_and_acknowledges_nothing_extra(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any
) -> None:
    docs = docs_factory(100)
    per_doc = len(docs[0].raw) + 100
    sink = _opened(fault_proxy.url, es_prefix, batch_max_bytes=per_doc * 50, backoff_initial=5.0, backoff_max=10.0)
    fault_proxy.pass_bulk(1)  # the first chunk goes through
    fault_proxy.fail_bulk(50, 503)  # then Elasticsearch is "overloaded"
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(SinkStopped):
        sink.write(docs, stop)

    assert time.monotonic() - started < 3.0  # did not sit out the 2.5 s-5 s backoff
    first_chunk = fault_proxy.bulk_items[0]
    assert 0 < first_chunk < 100
    assert sink.stored == first_chunk == es.count(f"{es_prefix}-2*")
    assert es.ids(f"{es_prefix}-2*") == sorted(d.doc_id for d in docs[:first_chunk])


def test_max_retries_gives_up_with_an_error(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any
) -> None:
    sink = _opened(fault_proxy.url, es_prefix, max_retries=2)
    fault_proxy.fail_bulk(10, 429)
    with pytest.raises(ElasticsearchError, match="gave up after 2 retries"):
        sink.write(docs_factory(10), threading.Event())
    assert fault_proxy.faults_served == ["429"] * 3
    assert es.count(f"{es_prefix}-2*") == 0


def test_unreachable_cluster_waits_until_stopped(es_prefix: str, docs_factory: Any) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _sink(f"http://127.0.0.1:{port}", es_prefix)
    assert sink.healthy() is False
    with pytest.raises(ElasticsearchError):
        sink.open()
    stop = threading.Event()
    threading.Timer(0.8, stop.set).start()
    with pytest.raises(SinkStopped):
        sink.write(docs_factory(5), stop)
    assert sink.retries >= 2 and sink.stored == 0
    assert "cannot install index templates" in (sink.last_error or "")
