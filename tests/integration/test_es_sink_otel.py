"""The sink's own HTTP traffic never produces spans, whatever HTTP instrumentation is active.

The sink talks to Elasticsearch with urllib3; the urllib3, requests and httpx instrumentations
are all switched on here with an in-memory exporter. A plain urllib3 request made by the test
itself must produce a span (the instrumentation works), the sink's requests none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar.ship.elasticsearch import ElasticsearchSink


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentors: list[Any] = [URLLib3Instrumentor(), RequestsInstrumentor(), HTTPXClientInstrumentor()]
    for inst in instrumentors:
        inst.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        for inst in instrumentors:
            inst.uninstrument()
        provider.shutdown()


def test_sink_traffic_produces_no_spans(
    elasticsearch_url: str,
    es_prefix: str,
    docs_factory: Any,
    fault_proxy: Any,
    spans: InMemorySpanExporter,
    tmp_path: Path,
) -> None:
    # Control: the instrumentation is live for ordinary urllib3 traffic.
    urllib3.PoolManager().request("GET", f"{elasticsearch_url}/_cluster/health")
    assert len(spans.get_finished_spans()) == 1
    spans.clear()

    sink = ElasticsearchSink(
        fault_proxy.url, index_prefix=es_prefix, backoff_initial=0.05, backoff_max=0.1, deadletter_dir=tmp_path
    )
    assert sink.healthy() is False
    sink.open()
    assert sink.healthy() is True
    fault_proxy.fail_bulk(1, 429)
    fault_proxy.reset_bulk(1)
    result = sink.write(docs_factory(30, bad=frozenset({4})), threading.Event())
    sink.dead_letter(b"{torn", "torn line")
    sink.close()

    assert (result.stored, result.dead_lettered, result.retries) == (29, 1, 2)
    assert sink.bulk_requests >= 3
    assert spans.get_finished_spans() == ()
