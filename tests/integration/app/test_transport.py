"""Transport facts in the record: failure phase, configured timeout, keep-alive reuse, retries linked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
import requests
from sidecar_testing import Instrumented

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def stalled_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for s in held:
        s.close()
    server.close()


def test_failure_phases(instrumented: Instrumented, stalled_url: str) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.post("http://127.0.0.1:9/v1/chat/completions", json=CHAT)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(stalled_url + "/v1/chat/completions", json=CHAT, timeout=httpx.Timeout(5.0, read=0.3))
    with pytest.raises(requests.ReadTimeout):
        requests.post(stalled_url + "/v1/chat/completions", json=CHAT, timeout=(5, 0.3))
    refused, stalled, stalled_requests = instrumented.records()
    assert refused["sidecar.transport.phase"] == "connect" and refused["error.type"] == "httpx.ConnectError"
    assert stalled["sidecar.transport.phase"] == "read" and stalled["sidecar.client.timeout"] == 0.3
    assert stalled["event.duration"] >= 0.3e9  # the elapsed time until the failure
    assert stalled_requests["sidecar.transport.phase"] == "read"
    assert stalled_requests["sidecar.client.timeout"] == 0.3
    assert all("http.response.status_code" not in r for r in (refused, stalled, stalled_requests))


def test_configured_timeouts(instrumented: Instrumented, model_url: str) -> None:
    with httpx.Client(timeout=None) as no_timeout:
        no_timeout.post(model_url + "/v1/chat/completions", json=CHAT)
    requests.post(model_url + "/v1/chat/completions", json=CHAT)  # requests: no timeout unless given
    openai.OpenAI(base_url=model_url + "/v1", api_key="sk-" + "t" * 40, timeout=30.0, max_retries=0) \
        .chat.completions.create(**CHAT)  # type: ignore[call-overload]
    a, b, c = instrumented.records()
    assert a["sidecar.client.timeout_set"] is False and "sidecar.client.timeout" not in a
    assert b["sidecar.client.timeout_set"] is False
    assert c["sidecar.client.timeout_set"] is True and c["sidecar.client.timeout"] == 30.0


def test_connection_reuse(instrumented: Instrumented, model_url: str) -> None:
    with httpx.Client() as client:
        for _ in range(3):
            client.post(model_url + "/v1/chat/completions", json=CHAT)
    for _ in range(2):
        with httpx.Client() as fresh:  # a new client (so a new connection) per call
            fresh.post(model_url + "/v1/chat/completions", json=CHAT)
    reused = [r["sidecar.connection.reused"] for r in instrumented.records()]
    assert reused == [False, True, True, False, False]


def test_sdk_retries_are_linked(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key="sk-" + "r" * 40, max_retries=2)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="error-429", messages=[{"role": "user", "content": "x"}])
    attempts = instrumented.records()
    assert [r["http.request.resend_count"] for r in attempts] == [0, 1, 2]
    assert len({r["sidecar.retry.group"] for r in attempts}) == 1
    assert "sidecar.retry.delay" not in attempts[0]
    # The SDK honoured retry-after: 1 between attempts.
    assert all(r["sidecar.retry.delay"] >= 0.9 for r in attempts[1:])
    assert all(r["url.scheme"] == "http" for r in attempts)


def test_requests_cache_hits_are_recorded_as_hits_without_tokens(instrumented: Instrumented,
                                                                  model_url: str) -> None:
    import requests_cache

    session = requests_cache.CachedSession(backend="memory", allowable_methods=("GET", "POST"))
    answers = [session.post(model_url + "/v1/chat/completions", json=CHAT, timeout=10) for _ in range(3)]
    assert [a.from_cache for a in answers] == [False, True, True]
    assert len({a.text for a in answers}) == 1
    miss, *hits = instrumented.records()
    assert "sidecar.cache.hit" not in miss and miss["gen_ai.usage.input_tokens"] == 12
    for hit in hits:
        assert hit["sidecar.cache.hit"] is True
        assert "gen_ai.usage.input_tokens" not in hit and "gen_ai.usage.output_tokens" not in hit
        assert hit["http.response.status_code"] == 200 and hit["gen_ai.request.model"] == "gpt-4o-mini"
    labels = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat"}
    assert instrumented.metric("llm_cache_hits_total", labels) == 2
    assert instrumented.metric("llm_requests_total", {**labels, "status_code": "200", "error_type": ""}) == 1


@pytest.mark.sidecar(model_hosts="127.0.0.1=vllm")
def test_hishel_cache_hits_are_recorded_as_hits(instrumented: Instrumented, model_url: str) -> None:
    """hishel answers below the network transport: its hits are seen at its CacheTransport."""
    from hishel import SqliteStorage
    from hishel.httpx import CacheClient

    storage = SqliteStorage(database_path=str(instrumented.spool.parent / "hishel.db"))
    with CacheClient(storage=storage, timeout=30) as client:
        answers = [client.get(model_url + "/v1/models") for _ in range(3)]
    assert all(a.status_code == 200 for a in answers)
    records = instrumented.records()
    assert len(records) == 3
    assert [bool(r.get("sidecar.cache.hit")) for r in records] == [False, True, True]
    assert all(r["gen_ai.provider.name"] == "vllm" for r in records)
