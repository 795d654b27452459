"""Build CallCaptures and RecordBuilders for unit tests, without any HTTP client."""

from __future__ import annotations

import time
from typing import Any

from sidecar.config import AppSettings, load_settings
from sidecar.providers import EndpointMatcher
from sidecar.record.build import RecordBuilder
from sidecar.record.capture import BodyTee, CallCapture
from sidecar.redact import Redactor

KEY = b"unit-test-key-" + b"0" * 32


def builder(**options: Any) -> RecordBuilder:
    settings = load_settings(AppSettings, hmac_key=KEY.decode(), **options)
    return RecordBuilder(settings, Redactor(KEY), "p0")


def capture(url: str = "https://api.openai.com/v1/chat/completions", *, body: bytes | None = b"{}",
            response: bytes | None = b"{}", status: int | None = 200, content_type: str = "application/json",
            headers: list[tuple[str, str]] | None = None, cap_bytes: int = 10 * 1024 * 1024,
            response_headers: list[tuple[str, str]] | None = None) -> CallCapture:
    rest = url.split("://", 1)[1]
    hostport, _, path_query = rest.partition("/")
    host, _, port = hostport.partition(":")
    path = "/" + path_query.split("?", 1)[0]
    endpoint = EndpointMatcher().match("POST", host, int(port) if port else None, path)
    assert endpoint is not None, url
    cap = CallCapture(endpoint=endpoint, client="httpx", method="POST", url=url, host=host,
                      port=int(port) if port else 443, path=path, request_headers=headers or [],
                      start_ns=time.time_ns(), start_perf=time.perf_counter())
    if body is not None:
        cap.request_size = len(body)
        cap.request_body = body[:cap_bytes]
        cap.request_truncated = len(body) > cap_bytes
    cap.status_code = status
    cap.response_headers = [("content-type", content_type), *(response_headers or [])]
    if response is not None:
        cap.response = BodyTee(cap_bytes)
        cap.response.add(response)
    cap.end_perf = time.perf_counter()
    return cap
