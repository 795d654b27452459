"""Step 1, decode: a call's body bytes -> text (and, for a JSON body, its parsed value), with notes
for what could not be decoded. Nothing here looks at the provider or redacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar.record._bodies import JsonTooDeep, decode_body, header, maybe_json, to_text
from sidecar.record.capture import CallCapture


@dataclass(slots=True)
class RequestBody:
    text: str | None  # None: binary, or JSON too deep to walk (withheld)
    parsed: Any  # the JSON value, None when the body is not JSON or was cut by the cap
    raw: bytes  # the bytes kept (at most the cap)
    truncated: bool
    tail: bytes  # the last bytes of a body over the cap


@dataclass(slots=True)
class ResponseBody:
    text: str | None  # None: no body to read (binary, undecodable or too deep)
    tail_text: str | None  # the end of a body over the cap (plain bodies only)
    truncated: bool
    framing: str  # sse | ndjson | array (a streamed JSON array) | json (anything else) | none (not text)
    parsed: Any  # the JSON value of a ``json`` body, None otherwise


def read_request(cap: CallCapture, notes: list[str]) -> RequestBody:
    """The request body. A body read through a tee (a streamed upload) updates the capture's size and cut."""
    raw = cap.request_body
    tail = cap.request_tail
    if raw is None and cap.request_tee is not None:
        raw = cap.request_tee.head_bytes()
        cap.request_size = cap.request_tee.size
        cap.request_truncated = cap.request_tee.truncated
        tail = cap.request_tee.tail_bytes() if cap.request_tee.truncated else None
    text, note = to_text(raw or b"")
    if note:
        notes.append("request_" + note)
    parsed = None
    if not cap.request_truncated:
        try:
            parsed = maybe_json(text)
        except JsonTooDeep:
            notes.append("request_json_too_deep")
            text = None  # never stored: it cannot be walked by key, so it is withheld
    return RequestBody(text, parsed, raw or b"", cap.request_truncated, tail or b"")


def response_encoding(cap: CallCapture) -> str | None:
    """The content-encoding still to undo (None when the client decoded the body already)."""
    return None if cap.response_decoded else header(cap.response_headers, "content-encoding")


def read_response(cap: CallCapture, encoding: str | None, max_bytes: int, stream_requested: bool,
                  notes: list[str]) -> ResponseBody | None:
    """The response body, decompressed and framed; None when the call got no response."""
    tee = cap.response
    if tee is None:
        return None
    raw, note = decode_body(tee.head_bytes(), encoding, max_bytes)
    if note:
        notes.append(note)
    text, note = to_text(raw)
    if note:
        notes.append("response_" + note)
    if text is None:
        return ResponseBody(None, None, tee.truncated, "none", None)
    tail_text = to_text(tee.tail_bytes())[0] if tee.truncated and not encoding else None
    framing = _framing(cap, text, stream_requested)
    parsed = None
    if framing == "json" and not tee.truncated:
        try:
            parsed = maybe_json(text)
        except JsonTooDeep:
            notes.append("response_json_too_deep")
            text = None
    return ResponseBody(text, tail_text, tee.truncated, framing, parsed)


def _framing(cap: CallCapture, text: str, stream_requested: bool) -> str:
    content_type = (header(cap.response_headers, "content-type") or "").lower()
    ep = cap.endpoint
    if "text/event-stream" in content_type:
        return "sse"
    if "ndjson" in content_type or (ep.api_format == "ollama" and stream_requested):
        return "ndjson"
    if ep.path_stream and text.lstrip()[:1] == "[":
        return "array"
    return "json"
