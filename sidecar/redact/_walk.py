"""Redacting JSON documents: every string and long integer by content, values by key name."""

from __future__ import annotations

import json
import re
from typing import Any

from ._errors import RedactionError, fail_closed
from ._findings import Summary
from ._names import is_secret_key, is_weak_secret_key, token_like
from ._placeholders import TAG_CACHE

__all__ = ["JsonRedaction"]

# a string value that is itself a JSON object or array
_EMBEDDED_JSON = re.compile(r"\s{0,64}[\[{][\s\S]*[\]}]\s{0,64}\Z")
_EMBEDDED_MAX = 4 * 1024 * 1024
_JSON_OPEN = ("{", "[")


class JsonRedaction:
    """``redact_json`` for a redactor, which gives ``_redact`` (content) and ``_mask_value`` (whole)."""

    _names: dict[str, int]  # JSON key -> 2 secret name, 1 'token', 0 other

    def _redact(self, text: str, summary: Summary) -> str:
        raise NotImplementedError

    def _mask_value(self, value: str, default_type: str, summary: Summary) -> str:
        raise NotImplementedError

    def redact_json(self, value: Any) -> tuple[Any, Summary]:
        """Walk dicts and lists; return a redacted copy and counts by type.

        Values under secret-looking keys (``api_key``, ``password``, ``secret``, ``access_token``,
        ``authorization``, ``cookie``, ... compared without case, ``-`` or ``_``; also names ending
        in ``password``, ``secret``, ``api_key``, ``_token`` kinds) are masked whole as ``SECRET``
        (or the content type when the value is exactly one known key), recursively for nested
        values; ``token`` alone is masked only when its value looks like a credential.  Every
        other string (and dict key) goes through the content rules; integers of 9+ digits too.
        Raises ``RedactionError`` (fail closed) on any failure or an unsupported value type.
        """
        summary: Summary = {}
        with fail_closed:
            return self._walk(value, summary), summary

    def _walk(self, value: Any, summary: Summary) -> Any:
        if isinstance(value, str):
            if (value[:1] in _JSON_OPEN or value[:1].isspace()) and _EMBEDDED_JSON.match(value):
                return self._embedded(value, summary)
            return self._redact(value, summary)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if isinstance(k, str):
                    new_k = self._redact(k, summary)
                    kind = self._names.get(k)
                    if kind is None:  # the same few dozen key names in every body: judged once
                        if len(self._names) >= TAG_CACHE:
                            self._names.clear()
                        kind = self._names[k] = 2 if is_secret_key(k) else int(is_weak_secret_key(k))
                    if kind == 2:
                        out[new_k] = self._mask_tree(v, summary)
                        continue
                    if kind == 1 and isinstance(v, str) and token_like(v):
                        out[new_k] = self._mask_value(v, "SECRET", summary)
                        continue
                    out[new_k] = self._walk(v, summary)
                else:
                    out[k] = self._walk(v, summary)
            return out
        if isinstance(value, list | tuple):
            return [self._walk(v, summary) for v in value]
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            if -100_000_000 < value < 100_000_000:
                return value
            text = str(value)
            redacted = self._redact(text, summary)
            return value if redacted == text else redacted
        raise RedactionError(f"cannot redact a {type(value).__name__} inside JSON")

    def _embedded(self, value: str, summary: Summary) -> str:
        """A string that holds a JSON document (tool-call arguments, tool results): walked by key
        name like the outer document, so ``{"otp": "123456"}`` inside a string is masked too."""
        try:
            inner = json.loads(value) if len(value) <= _EMBEDDED_MAX else None
        except (ValueError, RecursionError):
            inner = None
        if not isinstance(inner, dict | list):
            return self._redact(value, summary)
        found: Summary = {}
        walked = self._walk(inner, found)
        if not found:
            return self._redact(value, summary)  # nothing inside: keep the text as written
        for k, v in found.items():
            summary[k] = summary.get(k, 0) + v
        return json.dumps(walked, ensure_ascii=False)

    def _mask_tree(self, value: Any, summary: Summary) -> Any:
        if isinstance(value, str):
            return self._mask_value(value, "SECRET", summary)
        if isinstance(value, dict):
            return {
                (self._redact(k, summary) if isinstance(k, str) else k): self._mask_tree(v, summary)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._mask_tree(v, summary) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return self._mask_value(str(value), "SECRET", summary)
        raise RedactionError(f"cannot redact a {type(value).__name__} inside JSON")
