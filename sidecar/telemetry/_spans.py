"""GenAI semantic-convention attributes on the call's client span."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

# record document field -> span attribute (same name unless listed)
_SPAN_FIELDS = (
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.request.max_tokens",
    "gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.request.top_k", "gen_ai.request.stop_sequences",
    "gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty", "gen_ai.request.seed",
    "gen_ai.request.stream", "gen_ai.response.id", "gen_ai.response.model", "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.response.time_to_first_chunk", "server.address",
    "server.port", "error.type", "http.response.status_code",
)


def span_name(doc: dict[str, Any]) -> str:
    op = doc.get("gen_ai.operation.name") or "chat"
    model = doc.get("gen_ai.request.model")
    return f"{op} {model}" if model else op


def apply_to_span(span: Span, doc: dict[str, Any], *, end_time_ns: int | None) -> None:
    """Name the span, set the attributes, mark errors, and end it when ``end_time_ns`` is given."""
    if span.is_recording():
        span.update_name(span_name(doc))
        attrs = {k: doc[k] for k in _SPAN_FIELDS if doc.get(k) is not None}
        span.set_attributes(attrs)
        span.set_attribute("sidecar.record.id", doc["event.id"])
        if doc.get("error.type"):
            span.set_status(Status(StatusCode.ERROR, doc.get("error.code") or doc["error.type"]))
    if end_time_ns is not None:
        span.end(end_time=end_time_ns)
