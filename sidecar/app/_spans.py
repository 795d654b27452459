"""GenAI semantic-convention attributes on the call's client span."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from sidecar.record.switches import Switches, read_switches

# record document field -> span attribute (same name unless listed)
_SPAN_FIELDS = (
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.request.max_tokens",
    "gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.request.top_k", "gen_ai.request.stop_sequences",
    "gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty", "gen_ai.request.seed",
    "gen_ai.request.stream", "gen_ai.response.id", "gen_ai.response.model", "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.response.time_to_first_chunk", "server.address",
    "server.port", "error.type", "gen_ai.conversation.id",
)
_COST_FIELDS = ("sidecar.cost.usd", "sidecar.cost.input_usd", "sidecar.cost.output_usd",
                "sidecar.cost.cache_read_usd", "sidecar.cost.cache_write_usd")
#: redacted structured content: a span attribute or event attribute each, JSON text (the Python SDK
#: holds no structured attribute values; the conventions allow JSON strings then)
CONTENT_FIELDS = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages",
                  "gen_ai.tool.definitions")
DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def span_name(doc: dict[str, Any]) -> str:
    op = doc.get("gen_ai.operation.name") or "chat"
    model = doc.get("gen_ai.request.model")
    return f"{op} {model}" if model else op


def content_attributes(content: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(content[k], ensure_ascii=False, separators=(",", ":"))
            for k in CONTENT_FIELDS if content.get(k) is not None}


def apply_to_span(span: Span, doc: dict[str, Any], *, end_time_ns: int | None,
                  content: dict[str, Any] | None = None, switches: Switches | None = None,
                  cost: bool = True) -> None:
    """Name the span, set the attributes, mark errors, and end it when ``end_time_ns`` is given.

    ``content``: the redacted messages for the span (given only when the content switch asks for them);
    ``cost``: put the price on the span too."""
    sw = switches or read_switches()
    if span.is_recording():
        span.update_name(span_name(doc))
        attrs = {k: doc[k] for k in _SPAN_FIELDS if doc.get(k) is not None}
        status = doc.get("http.response.status_code")
        if status is not None:
            if sw.http_new:
                attrs["http.response.status_code"] = status
            if sw.http_old:
                attrs["http.status_code"] = status
        if cost or sw.content_on_span:
            attrs.update({k: doc[k] for k in _COST_FIELDS if doc.get(k) is not None})
        if content and sw.content_on_span:
            attrs.update(content_attributes(content))
        span.set_attributes(attrs)
        if content and sw.content_on_event:
            event = content_attributes(content)
            event["gen_ai.operation.name"] = doc.get("gen_ai.operation.name") or "chat"
            span.add_event(DETAILS_EVENT, event)
        span.set_attribute("sidecar.record.id", doc["event.id"])
        if doc.get("error.type"):
            span.set_status(Status(StatusCode.ERROR, doc.get("error.code") or doc["error.type"]))
    if end_time_ns is not None:
        span.end(end_time=end_time_ns)
