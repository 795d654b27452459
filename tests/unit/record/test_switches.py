"""OpenTelemetry's switches as the sidecar reads them."""

from __future__ import annotations

import pytest

from sidecar.record.switches import CAPTURE, OPT_IN, read_switches


@pytest.mark.parametrize("opt_in,capture,expected", [
    ("", "", (True, False, False, False, False)),
    ("", "true", (True, False, False, True, False)),
    ("", "TRUE", (True, False, False, True, False)),
    ("", "SPAN_ONLY", (True, False, False, False, False)),  # the latest vocabulary needs the opt-in
    ("http", "false", (False, True, False, False, False)),
    ("http/dup", "", (True, True, False, False, False)),
    ("http, gen_ai_latest_experimental", "span_and_event", (False, True, True, True, True)),
    ("gen_ai_latest_experimental", "EVENT_ONLY", (True, False, True, False, True)),
    ("gen_ai_latest_experimental", "true", (True, False, True, False, False)),
    ("gen_ai_latest_experimental", "NO_CONTENT", (True, False, True, False, False)),
    ("database", "", (True, False, False, False, False)),
])
def test_switches(monkeypatch: pytest.MonkeyPatch, opt_in: str, capture: str,
                  expected: tuple[bool, ...]) -> None:
    monkeypatch.setenv(OPT_IN, opt_in)
    monkeypatch.setenv(CAPTURE, capture)
    s = read_switches()
    assert (s.http_old, s.http_new, s.genai_latest, s.content_on_span, s.content_on_event) == expected
