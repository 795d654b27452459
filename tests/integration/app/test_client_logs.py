"""The HTTP clients' own log lines (httpx and httpx2 at INFO, urllib3 at DEBUG) carry request URLs: while
instrumented, a key in the query or an e-mail in the path never reaches a log handler raw."""

from __future__ import annotations

import logging

import httpx
import httpx2
import pytest
import requests
from sidecar_testing import Instrumented

GOOGLE_KEY = "AIzaSy" + "Lg7" * 11
EMAIL = "tenant.admin@example.org"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def client_logs() -> Collect:
    handler = Collect()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.mark.parametrize("client", ["httpx", "httpx2", "requests"])
def test_client_log_lines_are_redacted(instrumented: Instrumented, model_url: str, client_logs: Collect,
                                       client: str) -> None:
    url = f"{model_url}/v1beta/models/gemini-1.5-flash:generateContent?key={GOOGLE_KEY}&notify={EMAIL}"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    if client == "requests":
        requests.post(url, json=body, timeout=10)
    else:
        (httpx if client == "httpx" else httpx2).post(url, json=body, timeout=10)
    logged = "\n".join(client_logs.lines)
    assert "generateContent" in logged, logged  # the client did log the request
    assert GOOGLE_KEY not in logged and EMAIL not in logged, logged
    assert len(instrumented.records()) == 1
