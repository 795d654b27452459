"""`sidecar advise` on records made by real clients against the loopback model server."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading

import httpx
import openai
import pytest
import requests
import requests_cache
import tenacity
from sidecar_testing import Instrumented

from sidecar.daemon.advise import advise, render
from sidecar.ship import Shipper, SqliteStore
from sidecar.spool import SpoolReader

BIN = pathlib.Path(sys.executable).parent


def chat(content: str, model: str = "gpt-4o-mini") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def rules(instrumented: Instrumented) -> dict[str, int]:
    return {f.rule: f.count for f in advise(instrumented.records()).findings}


def test_well_behaved_client_has_no_findings(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key="sk-" + "g" * 40, timeout=30.0, max_retries=1)
    for i in range(6):
        client.chat.completions.create(**chat(f"question {i}"))  # type: ignore[call-overload]
    with pytest.raises(openai.RateLimitError):  # the SDK waits Retry-After (1 s) before its retry
        client.chat.completions.create(**chat("busy?", "error-429"))  # type: ignore[call-overload]

    @tenacity.retry(wait=tenacity.wait_exponential(min=1, max=30), stop=tenacity.stop_after_attempt(2),
                    retry=tenacity.retry_if_exception_type(httpx.HTTPStatusError), reraise=True)
    def polite() -> None:
        with_timeout.post(model_url + "/v1/chat/completions", json=chat("x", "error-503")).raise_for_status()

    with httpx.Client(timeout=30.0) as with_timeout, pytest.raises(httpx.HTTPStatusError):
        polite()
    report = advise(instrumented.records())
    assert report.findings == [], render(report)  # no false positive on the well-behaved client


def test_each_bad_habit_is_found(instrumented: Instrumented, model_url: str) -> None:
    # a retry loop without backoff
    @tenacity.retry(wait=tenacity.wait_fixed(0.05), stop=tenacity.stop_after_attempt(4),
                    retry=tenacity.retry_if_exception_type(httpx.HTTPStatusError), reraise=True)
    def hammer() -> None:
        httpx.post(model_url + "/v1/chat/completions", json=chat("x", "error-429"), timeout=30).raise_for_status()

    with pytest.raises(httpx.HTTPStatusError):
        hammer()
    # the key in the query string
    requests.post(model_url + "/v1beta/models/gemini-pro:generateContent?key=AIzaSy" + "Q" * 33,
                  json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=30)
    # no timeout at all
    with httpx.Client(timeout=None) as unbounded:
        unbounded.post(model_url + "/v1/chat/completions", json=chat("no timeout"))
    # a new client, so a new connection, per call
    for i in range(5):
        with httpx.Client(timeout=30) as fresh:
            fresh.post(model_url + "/v1/chat/completions", json=chat(f"fresh {i}"))
    # the same prompt again and again without a cache
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            client.post(model_url + "/v1/chat/completions", json=chat("what are your opening hours?"))
    # a body over 10 MB
    httpx.post(model_url + "/v1/chat/completions", json=chat("x" * (10 * 1024 * 1024 + 100)), timeout=60)
    found = rules(instrumented)
    assert found["retry_storm"] == 3
    assert found["key_in_query"] == 1
    assert found["no_timeout"] >= 1
    assert found["no_connection_reuse"] >= 5
    assert found["repeated_prompt"] == 2
    assert found["large_request"] == 1


def test_a_cache_answers_repeats_so_no_repeat_finding(instrumented: Instrumented, model_url: str) -> None:
    session = requests_cache.CachedSession(backend="memory", allowable_methods=("GET", "POST"))
    for _ in range(3):
        session.post(model_url + "/v1/chat/completions", json=chat("cached question"), timeout=30)
    found = rules(instrumented)
    assert "repeated_prompt" not in found
    assert sum(1 for r in instrumented.records() if r.get("sidecar.cache.hit")) == 2


def test_cli_report_and_exit_code(instrumented: Instrumented, model_url: str, tmp_path: pathlib.Path) -> None:
    requests.post(model_url + "/v1beta/models/gemini-pro:generateContent?key=AIzaSy" + "Z" * 33,
                  json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=30)
    instrumented.records()
    store = SqliteStore(instrumented.spool / ".sidecar" / "audit.db")
    store.open()
    Shipper(SpoolReader(instrumented.spool, instrumented.spool / ".sidecar"), store).ship_available(
        threading.Event())
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(instrumented.spool))
    out = subprocess.run([str(BIN / "sidecar"), "advise", "--json"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1, out.stderr  # an error-severity finding gates CI
    import json

    report = json.loads(out.stdout)
    assert [f["rule"] for f in report["findings"]] == ["key_in_query"]
    assert report["findings"][0]["examples"] and "AIza" not in out.stdout  # ids, never the key


def test_advise_reads_a_time_range_from_elasticsearch(tmp_path: pathlib.Path, es: object, es_prefix: str,
                                                      elasticsearch_url: str, docs_factory: object) -> None:
    """With Elasticsearch the time range is filtered by the cluster, not by reading every index."""
    import datetime as dt

    from sidecar.config import ShipperSettings, load_settings
    from sidecar.daemon import read_documents
    from sidecar.ship.elasticsearch import ElasticsearchSink

    today = dt.datetime.now(tz=dt.timezone.utc)
    old = docs_factory(5, day=(today - dt.timedelta(days=3)).strftime("%Y.%m.%d"))  # type: ignore[operator]
    new = docs_factory(7, start=100, day=today.strftime("%Y.%m.%d"))  # type: ignore[operator]
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix)
    sink.open()
    sink.write(old + new, threading.Event())
    es.refresh(f"{es_prefix}-*")  # type: ignore[attr-defined]
    settings = load_settings(ShipperSettings, spool_dir=tmp_path, elasticsearch_url=elasticsearch_url,
                             index_prefix=es_prefix)
    since = (today - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    got = list(read_documents(settings, since, None))
    assert {d["event.id"] for d in got} == {d.doc_id for d in new}
    assert not [d for d in got if "sidecar.request.content" in d or "sidecar.response.content" in d]
    assert len(list(read_documents(settings, None, None))) == 12
