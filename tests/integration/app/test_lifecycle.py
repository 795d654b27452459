"""instrument()/uninstrument(): idempotent, reversible, thread-safe; our failures never reach the app."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading

import httpx
import httpx2
import openai
import pytest
import requests
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from sidecar_testing import HMAC_KEY, Instrumented, read_spool

import sidecar
from sidecar.app import _state
from sidecar.record.build import RecordBuilder

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _layers(fn: object) -> int:
    n = 0
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
        n += 1
    return n


def test_uninstrument_restores_original_behaviour(tmp_path: pathlib.Path, model_url: str) -> None:
    originals = (httpx.HTTPTransport.handle_request, httpx2.AsyncHTTPTransport.handle_async_request,
                 requests.Session.send)
    sidecar.instrument(spool_dir=tmp_path, hmac_key=HMAC_KEY)
    sidecar.instrument(spool_dir=tmp_path / "other")  # idempotent: a second call changes nothing
    assert _layers(httpx.HTTPTransport.handle_request) == 2  # ours + OpenTelemetry's, once each
    httpx.post(model_url + "/v1/chat/completions", json=CHAT)
    sidecar.uninstrument()
    sidecar.uninstrument()  # idempotent too
    assert (httpx.HTTPTransport.handle_request, httpx2.AsyncHTTPTransport.handle_async_request,
            requests.Session.send) == originals
    httpx.post(model_url + "/v1/chat/completions", json=CHAT)
    assert len(read_spool(tmp_path)) == 1
    assert not (tmp_path / "other").exists()


def test_existing_otel_instrumentation_is_kept(tmp_path: pathlib.Path, model_url: str) -> None:
    """If the app (or opentelemetry-instrument) instrumented httpx first, we go under it and restore it after."""
    inst = HTTPXClientInstrumentor()
    inst.instrument()
    try:
        sidecar.instrument(spool_dir=tmp_path, hmac_key=HMAC_KEY)
        httpx.post(model_url + "/v1/chat/completions", json=CHAT)
        sidecar.uninstrument()
        assert inst.is_instrumented_by_opentelemetry
        assert _layers(httpx.HTTPTransport.handle_request) == 1
        assert len(read_spool(tmp_path)) == 1
    finally:
        inst.uninstrument()


def test_concurrent_instrument_calls(tmp_path: pathlib.Path) -> None:
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        sidecar.instrument(spool_dir=tmp_path, hmac_key=HMAC_KEY)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert _layers(httpx.HTTPTransport.handle_request) == 2
        assert _layers(requests.Session.send) == 2
    finally:
        sidecar.uninstrument()


def test_pipeline_failure_never_reaches_the_app(instrumented: Instrumented, model_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: RecordBuilder, *args: object) -> None:
        raise RuntimeError("bug in the record builder")

    monkeypatch.setattr(RecordBuilder, "build", broken)
    client = openai.OpenAI(base_url=model_url + "/v1", api_key="sk-" + "a" * 40, max_retries=0)
    reply = client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert reply.choices[0].message.content == "Echo: hi"
    assert instrumented.records() == []
    assert instrumented.metric("sidecar_internal_errors_total", {"stage": "pipeline"}) == 1
    assert instrumented.metric("sidecar_records_dropped_total", {"reason": "pipeline_failed"}) == 1
    spans = [s for s in instrumented.spans.get_finished_spans() if s.name.startswith("POST") or "gpt" in s.name]
    assert len(spans) == 1  # the claimed span was still ended


def test_capture_failure_never_reaches_the_app(instrumented: Instrumented, model_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = _state.runtime
    assert runtime is not None

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("bug in capture")

    monkeypatch.setattr(runtime, "start", broken)
    assert httpx.post(model_url + "/v1/chat/completions", json=CHAT).status_code == 200
    assert requests.post(model_url + "/v1/chat/completions", json=CHAT, timeout=10).status_code == 200
    assert instrumented.metric("sidecar_internal_errors_total", {"stage": "capture"}) == 2


def test_bad_configuration_names_the_variable(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_SPOOL_FSYNC", "sometimes")
    with pytest.raises(sidecar.ConfigError, match="SIDECAR_SPOOL_FSYNC"):
        sidecar.instrument(spool_dir=tmp_path)
    assert _state.runtime is None
    monkeypatch.delenv("SIDECAR_SPOOL_FSYNC")
    with pytest.raises(sidecar.ConfigError, match="SIDECAR_RETENTION_DAYS"):
        sidecar.instrument(spool_dir=tmp_path, retention_days=30)


def test_opentelemetry_instrument_entry_point(tmp_path: pathlib.Path, model_url: str) -> None:
    """Zero-code: `opentelemetry-instrument python app.py` picks the sidecar up from its entry point."""
    app = tmp_path / "app.py"
    app.write_text(
        "import httpx, sys\n"
        f"r = httpx.post({model_url + '/v1/chat/completions'!r}, json={CHAT!r})\n"
        "print(r.status_code)\n")
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(tmp_path / "spool"), SIDECAR_HMAC_KEY=HMAC_KEY,
               OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    bindir = pathlib.Path(sys.executable).parent
    out = subprocess.run([str(bindir / "opentelemetry-instrument"), sys.executable, str(app)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "200"
    docs = read_spool(tmp_path / "spool")
    assert [d["gen_ai.request.model"] for d in docs] == ["gpt-4o-mini"]


def test_otlp_export_is_set_up_when_the_app_has_no_tracer_provider(tmp_path: pathlib.Path, model_url: str) -> None:
    """No TracerProvider in the app + OTEL_EXPORTER_OTLP_ENDPOINT: spans go out over OTLP/HTTP."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[bytes] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.path.encode() + b" " + self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = ("import httpx, sidecar\n"
           "sidecar.instrument()\n"
           f"httpx.post({model_url + '/v1/chat/completions'!r}, json={CHAT!r})\n"
           "sidecar.flush()  # spans end on the spool writer's thread: flush before shutting tracing down\n"
           "from opentelemetry import trace\n"
           "trace.get_tracer_provider().shutdown()\n")
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(tmp_path / "spool"), SIDECAR_HMAC_KEY=HMAC_KEY,
               OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        out = subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr
    traces = [r for r in received if r.startswith(b"/v1/traces ")]
    assert traces and b"chat gpt-4o-mini" in traces[0], (received, out.stderr[-2000:])  # span name in the payload


def test_forked_workers_write_as_their_own_producers(instrumented: Instrumented, model_url: str) -> None:
    """gunicorn-style: instrument in the parent, fork workers; each child is a producer of its own."""
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            httpx.post(model_url + "/v1/chat/completions", json=CHAT)
            httpx.post(model_url + "/v1/chat/completions", json=CHAT)
            code = 0 if sidecar.flush(10) else 2
        finally:
            os._exit(code)
    httpx.post(model_url + "/v1/chat/completions", json=CHAT)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    docs = instrumented.records()
    assert len(docs) == 3
    producers = {d["sidecar.producer.id"] for d in docs}
    assert len(producers) == 2
    by_producer = {p: sorted(d["sidecar.sequence"] for d in docs if d["sidecar.producer.id"] == p) for p in producers}
    assert sorted(by_producer.values()) == [[1], [1, 2]]  # each chain starts at 1
