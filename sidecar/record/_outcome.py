"""Step: outcome and timing. The call's metadata from the capture alone (no body): when, how long,
where to, how it ended; and for streams, how the stream ended and when its first chunk came."""

from __future__ import annotations

from typing import Any

from sidecar.record._bodies import HOST, header, iso_utc, retry_after_seconds, transport_phase
from sidecar.record.capture import CallCapture

_SCHEMES = ("http", "https")
_CACHED_USAGE = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def call_metadata(cap: CallCapture, seq: int, producer_id: str, service_name: str) -> dict[str, Any]:
    """The fields every record has, the metadata-only fallback included."""
    ep = cap.endpoint
    failure = error_type(cap)
    scheme = cap.url.split("://", 1)[0].lower() if "://" in cap.url else ""
    return dict(
        event_id=f"{producer_id}-{seq}", timestamp=iso_utc(cap.start_ns), event_duration=duration_ns(cap),
        event_outcome="failure" if failure else "success", producer_id=producer_id, sequence=seq,
        service_name=service_name, host_name=HOST, trace_id=cap.trace_hex(),
        span_id=cap.span_hex(), provider=ep.provider, api_format=ep.api_format, operation=ep.operation,
        http_method=cap.method, url_path=cap.path, server_address=cap.host, server_port=cap.port,
        http_client=cap.client, url_scheme=(scheme if scheme in _SCHEMES else "other") if scheme else None,
        status_code=cap.status_code, error_type=failure, request_bytes=cap.request_size,
        response_bytes=cap.response.size if cap.response is not None else None,
        transport_phase=transport_phase(cap.exception) if cap.exception is not None and cap.status_code is None
        else None,
    )


def duration_ns(cap: CallCapture) -> int:
    return int(((cap.end_perf or cap.start_perf) - cap.start_perf) * 1e9)


def error_type(cap: CallCapture) -> str | None:
    """The exception's class (prefixed by its top-level package), else the HTTP status of a failure,
    else ``stream_error`` for a stream that broke off."""
    if cap.exception is not None:
        name = type(cap.exception).__qualname__
        mod = type(cap.exception).__module__
        if mod and mod != "builtins":
            name = f"{mod.split('.')[0]}.{name}"
        return name
    if cap.status_code is not None and cap.status_code >= 400:
        return str(cap.status_code)
    if cap.stream_outcome == "error":
        return "stream_error"
    return None


def outcome_fields(cap: CallCapture, fields: dict[str, Any], encoding: str | None) -> dict[str, Any]:
    """How the call went on the wire, given the parsed ``fields`` (finish reasons, stream flag)."""
    outcome = cap.stream_outcome
    if outcome == "closed_early" and fields.get("response_finish_reasons"):
        # SDKs close the response as soon as they read the end marker; the generation did finish.
        outcome = "completed"
    return dict(
        client_timeout=cap.timeout, client_timeout_set=(cap.timeout is not None) if cap.timeout_known else None,
        connection_reused=cap.connection_reused, resend_count=cap.resend_count,
        cache_hit=True if cap.cache_hit else None,
        retry_after=retry_after_seconds(header(cap.response_headers, "retry-after")),
        response_content_encoding=encoding or None, stream_outcome=outcome if cap.streamed else None,
        time_to_first_chunk=time_to_first_chunk(cap, bool(fields.get("request_stream"))),
    )


def time_to_first_chunk(cap: CallCapture, stream_requested: bool) -> float | None:
    """Seconds from the request to the first body byte, for streams only (a plain body's first byte
    says little about the model)."""
    tee = cap.response
    if tee is None or tee.first_at is None or not (cap.streamed or stream_requested):
        return None
    return round(tee.first_at - cap.start_perf, 6)


def drop_cached_usage(cap: CallCapture, fields: dict[str, Any]) -> None:
    """A cached answer cost nothing: its usage numbers describe the original call, not this one."""
    if cap.cache_hit:
        for name in _CACHED_USAGE:
            fields.pop(name, None)
