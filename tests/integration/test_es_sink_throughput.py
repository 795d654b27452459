"""Records/s of the sink versus a plain ``_bulk`` loop, same documents, same server, same run.

Prints the figures (run with ``-s`` to see them); asserts only a loose floor so a busy machine
does not make it flaky. ``SIDECAR_BENCH_DOCS`` sets the number of documents (default 20000).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest
import urllib3
from es_testing import bulk_bodies

from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.spool.document import SpoolDoc

BATCH_BYTES = 5_000_000


def _raw_bulk(url: str, prefix: str, docs: list[SpoolDoc]) -> float:
    """The baseline: build create lines, POST them in 5 MB bodies, check the status only."""
    http = urllib3.PoolManager(retries=False)
    started = time.perf_counter()
    for body in bulk_bodies(prefix, ((d.doc_id, d.day, d.raw) for d in docs), BATCH_BYTES):
        resp = http.request("POST", url + "/_bulk?filter_path=errors", body=body,
                            headers={"Content-Type": "application/x-ndjson"})
        assert resp.status == 200 and json.loads(resp.data)["errors"] is False
    return time.perf_counter() - started


def _sink(url: str, prefix: str, docs: list[SpoolDoc]) -> float:
    sink = ElasticsearchSink(url, index_prefix=prefix, batch_max_bytes=BATCH_BYTES)
    sink.open()
    started = time.perf_counter()
    result = sink.write(docs, threading.Event())
    elapsed = time.perf_counter() - started
    assert result.stored == len(docs) and result.duplicates == 0
    return elapsed


def test_sink_throughput_against_raw_bulk(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    n = int(os.environ.get("SIDECAR_BENCH_DOCS", "20000"))
    docs = docs_factory(n)
    raw_times: list[float] = []
    sink_times: list[float] = []
    _raw_bulk(elasticsearch_url, f"{es_prefix}-warmup", docs[:2000])  # JIT and connection warm-up
    for rnd in range(3):  # interleaved, fresh indices each time
        raw_times.append(_raw_bulk(elasticsearch_url, f"{es_prefix}-raw{rnd}", docs))
        sink_times.append(_sink(elasticsearch_url, f"{es_prefix}-sink{rnd}", docs))
    for rnd in range(3):
        assert es.count(f"{es_prefix}-raw{rnd}-2*") == n
        assert es.count(f"{es_prefix}-sink{rnd}-2*") == n

    raw_rate = n / min(raw_times)
    sink_rate = n / min(sink_times)
    size = sum(len(d.raw) for d in docs) / n
    raw_s = " ".join(f"{t:.2f}" for t in raw_times)
    sink_s = " ".join(f"{t:.2f}" for t in sink_times)
    with capsys.disabled():
        print(
            f"\n[es-sink throughput] {n} docs of ~{size:.0f} B: raw _bulk {raw_rate:,.0f} docs/s, "
            f"sink {sink_rate:,.0f} docs/s, ratio {sink_rate / raw_rate:.2f} "
            f"(best of 3; raw {raw_s} s, sink {sink_s} s)"
        )
    assert sink_rate >= 0.5 * raw_rate
