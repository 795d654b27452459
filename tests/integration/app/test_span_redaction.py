"""What the HTTP instrumentation puts on the span it opens is redacted too: URLs, exception events."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import requests
from sidecar_testing import Instrumented

KEY = "AIzaSy" + "C" * 33
MAIL = "tenant.admin@example.org"


def _span_text(instrumented: Instrumented) -> str:
    parts = []
    for s in instrumented.spans.get_finished_spans():
        parts.append(s.name)
        parts += [f"{k}={v}" for k, v in (s.attributes or {}).items()]
        for e in s.events:
            parts += [f"{k}={v}" for k, v in (e.attributes or {}).items()]
        parts.append(s.status.description or "")
    return "\n".join(parts)


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_url_attributes_of_the_client_span_are_redacted(instrumented: Instrumented, model_url: str,
                                                        client: str) -> None:
    url = f"{model_url}/t/{quote(MAIL)}/v1beta/models/gemini-pro:generateContent?key={KEY}&notify={quote(MAIL)}"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    if client == "httpx":
        httpx.post(url, json=body).raise_for_status()
    else:
        requests.post(url, json=body, timeout=10).raise_for_status()
    assert len(instrumented.records()) == 1
    text = _span_text(instrumented)
    assert "generate_content gemini-pro" in text
    assert ("url.full=" in text or "http.url=" in text) and "<GOOGLE_API_KEY:" in text
    for leak in (KEY, "AIzaSy", MAIL, quote(MAIL), "tenant.admin"):
        assert leak not in text, leak


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_exception_events_and_status_are_redacted(instrumented: Instrumented, client: str) -> None:
    url = f"http://127.0.0.1:1/v1beta/models/gemini-pro:generateContent?key={KEY}"
    with pytest.raises(Exception) as info:
        if client == "httpx":
            httpx.post(url, json={})
        else:
            requests.post(url, json={}, timeout=5)
    records = instrumented.records()
    assert len(records) == 1 and records[0]["sidecar.transport.phase"] == "connect"
    if client == "requests":
        assert KEY in str(info.value)  # the exception itself quotes the URL ...
    text = _span_text(instrumented)
    assert "exception.message=" in text and "exception.stacktrace=" in text
    assert KEY not in text and "AIzaSy" not in text  # ... its span event does not


def test_a_span_processor_sees_redacted_url_attributes_at_start(instrumented: Instrumented, model_url: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanProcessor

    seen: list[str] = []

    class OnStart(SpanProcessor):
        def on_start(self, span: object, parent_context: object = None) -> None:
            seen.extend(f"{k}={v}" for k, v in (getattr(span, "attributes", None) or {}).items())

    provider = trace.get_tracer_provider()
    provider.add_span_processor(OnStart())  # type: ignore[attr-defined]
    url = f"{model_url}/v1beta/models/gemini-pro:generateContent?key={KEY}"
    httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}).raise_for_status()
    httpx.get(model_url + f"/v1/models?key={KEY}")  # not a model call: left as the instrumentation made it
    started = "\n".join(seen)
    assert "generateContent?key=<GOOGLE_API_KEY:" in started
    assert f"generateContent?key={KEY}" not in started
    assert f"/v1/models?key={KEY}" in started


def test_captured_header_attributes_are_masked_by_name(instrumented: Instrumented) -> None:
    import importlib

    rt = importlib.import_module("sidecar.app._state").runtime
    assert rt is not None
    opaque = "k3y-" + "z" * 30  # no known key shape: masked because of the header's name
    assert opaque not in rt.spans.value("http.request.header.x_api_key", opaque)
    assert "<" in rt.spans.value("http.request.header.authorization", f"Bearer {opaque}")
