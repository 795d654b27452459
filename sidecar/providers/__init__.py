"""Provider recognition and body parsing, one place per API family."""

from sidecar.providers._match import Endpoint, EndpointMatcher, HostRule, parse_host_rules
from sidecar.providers._media import strip_inline_media
from sidecar.providers._messages import request_messages
from sidecar.providers._output import response_messages
from sidecar.providers._parse import (
    Fields,
    StreamSummary,
    iter_lines,
    iter_sse_data,
    looks_like_model_request,
    parse_error,
    parse_request,
    parse_response,
)

__all__ = [
    "Endpoint",
    "EndpointMatcher",
    "Fields",
    "HostRule",
    "StreamSummary",
    "iter_lines",
    "iter_sse_data",
    "looks_like_model_request",
    "parse_error",
    "parse_host_rules",
    "parse_request",
    "parse_response",
    "request_messages",
    "response_messages",
    "strip_inline_media",
]
