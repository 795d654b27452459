"""Provider recognition and body parsing, one place per API family."""

from sidecar.providers._match import Endpoint, EndpointMatcher, HostRule, parse_host_rules
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
]
