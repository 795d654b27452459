"""Redaction of what other code put on the spans the sidecar touches.

The HTTP instrumentation sets ``url.full`` / ``http.url`` / ``url.path`` / ``url.query`` /
``http.target`` (and, when configured to, request and response headers) on the client span it
opens, records exceptions whose messages can quote the URL, and sets a status text from them.
For a model call every one of these strings goes through the redactor: at the span's start (so a
``SpanProcessor.on_start`` sees redacted values too) and again before the sidecar ends it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sidecar.app._spans import CONTENT_FIELDS
from sidecar.providers import EndpointMatcher
from sidecar.redact import Redactor, cut_kept

__all__ = ["SpanRedactor"]

WITHHELD = "[withheld: redaction failed]"
_URL_KEYS = ("url.full", "http.url")
_METHOD_KEYS = ("http.request.method", "http.method")
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
# made here: the record id, and content the record builder redacted already (re-cutting it would break its JSON)
_MADE_HERE = frozenset(("sidecar.record.id", *CONTENT_FIELDS))


class SpanRedactor:
    def __init__(self, redactor: Redactor, matcher: EndpointMatcher, field: Callable[[str, int], str]) -> None:
        self._redactor = redactor
        self._matcher = matcher
        self._field = field  # the record builder's (cached) redaction of a short field
        self._cache: dict[tuple[str, str, str], str] = {}

    def start_attributes(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """The attributes a client span opens with, redacted when the span is a model call's."""
        url = next((attributes[k] for k in _URL_KEYS if isinstance(attributes.get(k), str)), None)
        method = next((attributes[k] for k in _METHOD_KEYS if isinstance(attributes.get(k), str)), "POST")
        if url is None:
            return attributes
        try:
            parts = urlsplit(url)
            model_call = self._matcher.match(method, parts.hostname or "", parts.port, parts.path) is not None
        except ValueError:
            model_call = True  # an odd URL: redact rather than guess
        if not model_call:
            return attributes  # not a model call: left as the instrumentation made it
        return {k: self._value_or_tuple(k, v) for k, v in attributes.items()}

    def redact_span(self, span: Any) -> None:
        """Every string attribute on the span except the record id made here."""
        attrs = getattr(span, "attributes", None)
        if not attrs:
            return
        updates: dict[str, Any] = {}
        for key, value in attrs.items():
            if key in _MADE_HERE:
                continue
            new = self._value_or_tuple(key, value)
            if new != value:
                updates[key] = new
        if updates:
            span.set_attributes(updates)

    def message(self, text: str, limit: int) -> str:
        """An exception message or traceback: URLs' secret parameters and the content rules, then cut."""
        try:
            return cut_kept(self._redactor.redact_url(text)[0], limit)
        except Exception:
            return WITHHELD

    def _value_or_tuple(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.value(key, value)
        if isinstance(value, tuple | list) and any(isinstance(v, str) for v in value):
            return tuple(self.value(key, v) if isinstance(v, str) else v for v in value)
        return value

    def value(self, key: str, value: str) -> str:
        """``value`` of attribute ``key``, redacted (remembered: a client sends the same URLs again
        and again, and at the span's start this runs on the application's thread)."""
        kind = "h" if key.startswith(_HEADER_PREFIXES) else "q" if key == "url.query" else "u" if (
            "url" in key or key == "http.target") else "f"
        cached = self._cache.get((kind, key if kind == "h" else "", value))
        if cached is None:
            cached = self._value(key, value)
            if len(value) <= 2048:
                if len(self._cache) >= 1024:
                    self._cache.clear()
                self._cache[(kind, key if kind == "h" else "", value)] = cached
        return cached

    def _value(self, key: str, value: str) -> str:
        try:
            if key.startswith(_HEADER_PREFIXES):  # masked by the header's name too (x-api-key ...)
                name = key.split(".header.", 1)[1].replace("_", "-")
                headers, _ = self._redactor.redact_headers([(name, value)])
                return cut_kept(headers[name], 1024)
            if "url" in key or key in ("http.target", "url.query"):
                if key == "url.query":
                    return cut_kept(self._redactor.redact_url("?" + value)[0][1:], 2048)
                return cut_kept(self._redactor.redact_url(value)[0], 2048)
        except Exception:
            return WITHHELD
        return self._field(value, 1024)
