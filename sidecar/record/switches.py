"""OpenTelemetry's own switches, read from the environment as OpenTelemetry documents them.

``OTEL_SEMCONV_STABILITY_OPT_IN`` (comma list): ``http`` -> new HTTP names only, ``http/dup`` -> old and
new, absent -> the old names only (as the HTTP instrumentors do, so one span never mixes the two);
``gen_ai_latest_experimental`` -> the content switch takes the latest GenAI vocabulary below.

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: with ``gen_ai_latest_experimental``,
``SPAN_ONLY`` | ``EVENT_ONLY`` | ``SPAN_AND_EVENT`` | ``NO_CONTENT``; without it, ``true`` puts the
content on the span. Anything else (or unset): no content on spans or events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Switches:
    http_old: bool  # write http.status_code (and the instrumentors write http.method)
    http_new: bool  # write http.response.status_code
    genai_latest: bool
    content_on_span: bool
    content_on_event: bool


def read_switches() -> Switches:
    opt_in = {p.strip().lower() for p in os.environ.get(OPT_IN, "").split(",") if p.strip()}
    dup = "http/dup" in opt_in
    new = dup or "http" in opt_in
    latest = "gen_ai_latest_experimental" in opt_in
    value = os.environ.get(CAPTURE, "").strip()
    if latest:
        mode = value.upper()
        span = mode in ("SPAN_ONLY", "SPAN_AND_EVENT")
        event = mode in ("EVENT_ONLY", "SPAN_AND_EVENT")
    else:
        span, event = value.lower() in _TRUE, False
    return Switches(http_old=dup or not new, http_new=new, genai_latest=latest, content_on_span=span,
                    content_on_event=event)
