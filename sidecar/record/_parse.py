"""Step 2, provider parse: decoded bodies -> record fields (model, parameters, usage, messages, errors),
by the endpoint's wire format. Values are raw here: the redact step comes after."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sidecar.providers import (
    Endpoint,
    StreamSummary,
    iter_lines,
    iter_sse_data,
    parse_error,
    parse_request,
    parse_response,
    request_messages,
    response_messages,
    strip_inline_media,
)
from sidecar.record._bodies import salvage_request_fields
from sidecar.record._decode import RequestBody, ResponseBody

Digest = Callable[[bytes], str]


def request_fields(ep: Endpoint, body: RequestBody, media_digest: Digest,
                   notes: list[str]) -> tuple[dict[str, Any], str | None, Any]:
    """(fields, content text, content JSON): inline media in the content is replaced by a marker."""
    f: dict[str, Any] = {}
    text, parsed = body.text, body.parsed
    if parsed is None and body.truncated:
        f.update(salvage_request_fields(body.raw, body.tail))
    else:
        f.update(parse_request(ep.api_format, parsed))
        try:
            f.update(request_messages(ep.api_format, ep.operation, parsed, media_digest))
            if parsed is not None and text is not None and len(text) >= 1024:
                stripped = strip_inline_media(parsed, media_digest)
                if stripped != parsed:  # the raw content keeps a marker, never the media's base64
                    parsed = stripped
                    text = json.dumps(stripped, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:  # nested too deep to walk: no messages; the content path decides the rest
            notes.append("messages_too_deep")
    if ep.path_model and not f.get("request_model"):
        f["request_model"] = ep.path_model
    if ep.path_stream:
        f["request_stream"] = True
    return f, text, parsed


def response_fields(ep: Endpoint, body: ResponseBody | None, status: int | None, stream_budget: int,
                    media_digest: Digest, notes: list[str]) -> tuple[dict[str, Any], str | None, Any, bool]:
    """(fields, content text, content JSON, truncated). A stream's content is its assembled text."""
    if body is None:
        return {}, None, None, False
    if body.framing == "none":
        return {}, None, None, body.truncated
    if body.framing != "json":
        assert body.text is not None
        summary = StreamSummary(ep.api_format, stream_budget)
        for t in [body.text] + ([body.tail_text] if body.tail_text else []):
            summary.feed(iter_sse_data(t) if body.framing == "sse" else (iter_lines(t) if body.framing == "ndjson"
                                                                          else [t]))
        f = dict(summary.fields)
        f["output_messages"] = summary.output.messages() or None
        return f, summary.text(), None, body.truncated or summary.truncated
    f = parse_response(ep.api_format, body.parsed)
    try:
        f["output_messages"] = response_messages(ep.api_format, body.parsed, media_digest) or None
    except RecursionError:
        notes.append("messages_too_deep")
    if status is not None and status >= 400:
        f.update(parse_error(ep.api_format, body.parsed))
    return f, body.text, body.parsed, body.truncated
