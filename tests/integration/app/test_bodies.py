"""Odd bodies: gzip, binary, invalid UTF-8, chunked uploads, bodies over the cap."""

from __future__ import annotations

import httpx
import pytest
import requests
from sidecar_testing import Instrumented


def chat(model: str, content: str = "hi") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def test_gzip_response_httpx_and_requests(instrumented: Instrumented, model_url: str) -> None:
    r1 = httpx.post(model_url + "/v1/chat/completions", json=chat("gzip-model", "zipped alice@example.com"))
    r2 = requests.post(model_url + "/v1/chat/completions", json=chat("gzip-model", "zipped"), timeout=10)
    assert r1.json()["choices"][0]["message"]["content"].startswith("Echo: zipped")
    assert r2.json()["usage"]["prompt_tokens"] == 12
    a, b = instrumented.records()
    assert a["sidecar.response.content_encoding"] == "gzip"
    assert a["gen_ai.usage.output_tokens"] == 3 and b["gen_ai.usage.output_tokens"] == 2
    assert "alice@example.com" not in a["sidecar.response.content"]


def test_binary_and_invalid_utf8_bodies(instrumented: Instrumented, model_url: str) -> None:
    assert len(httpx.post(model_url + "/v1/chat/completions", json=chat("binary")).content) == 1024
    assert httpx.post(model_url + "/v1/chat/completions", json=chat("plain")).content.endswith(b"utf-8")
    binary, plain = instrumented.records()
    assert "sidecar.response.content" not in binary
    assert "response_binary" in binary["sidecar.content.note"]
    assert binary["http.response.body.bytes"] == 1024
    assert "invalid_utf8" in plain["sidecar.content.note"]
    assert "\ufffd" in plain["sidecar.response.content"]


def test_chunked_request_body(instrumented: Instrumented, model_url: str) -> None:
    def body() -> object:
        yield b'{"model": "chunked-up", '
        yield b'"messages": [{"role": "user", "content": "in pieces"}]}'

    resp = httpx.post(model_url + "/v1/chat/completions", content=body(),
                      headers={"content-type": "application/json"})
    assert resp.json()["choices"][0]["message"]["content"] == "Echo: in pieces"
    (r,) = instrumented.records()
    assert r["gen_ai.request.model"] == "chunked-up"
    assert r["http.request.body.bytes"] == len(b"".join(body()))  # type: ignore[arg-type]


@pytest.mark.sidecar(max_body_bytes=4096, max_content_chars=1000)
def test_bodies_over_the_cap(instrumented: Instrumented, model_url: str) -> None:
    big = "x" * 200_000 + " alice@example.com"
    resp = httpx.post(model_url + "/v1/chat/completions", json=chat("big", big))
    assert resp.status_code == 200
    (r,) = instrumented.records()
    assert r["http.request.body.bytes"] > 200_000
    assert r["sidecar.content.truncated"] is True
    assert len(r["sidecar.request.content"]) <= 1000
    assert r["gen_ai.request.model"] == "big"  # salvaged from the bytes kept


@pytest.mark.sidecar(max_body_bytes=4096, max_content_chars=1000)
def test_escaped_non_ascii_next_to_personal_data_in_a_capped_body(instrumented: Instrumented,
                                                                    model_url: str) -> None:
    """httpx escapes non-ASCII in JSON (\\u8054...); a body past the cap is redacted as text, unescaped first."""
    big = "联系我13812345678谢谢 " + "x" * 200_000
    httpx.post(model_url + "/v1/chat/completions", json=chat("big", big))
    (r,) = instrumented.records()
    assert "13812345678" not in r["sidecar.request.content"]
    assert "联系我<PHONE:" in r["sidecar.request.content"]
