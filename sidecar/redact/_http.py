"""Redacting HTTP parts: headers by name and content, URLs by structure and content."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from ._bound import PLACEHOLDER
from ._errors import RedactionError, fail_closed
from ._findings import Summary
from ._names import AUTH_HEADERS, AUTH_SCHEME, COOKIE_HEADERS, is_key_header, is_secret_param

__all__ = ["HttpRedaction"]


class HttpRedaction:
    """``redact_headers`` and ``redact_url`` for a redactor, which gives ``_redact`` (content),
    ``_mask_value`` (whole) and ``placeholder``."""

    _allow: frozenset[str]

    def _redact(self, text: str, summary: Summary) -> str:
        raise NotImplementedError

    def _mask_value(self, value: str, default_type: str, summary: Summary) -> str:
        raise NotImplementedError

    def placeholder(self, type_name: str, value: str) -> str:
        raise NotImplementedError

    def redact_headers(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str]
    ) -> tuple[dict[str, str], Summary]:
        """Return ``({lower-cased name: redacted value}, counts)``.

        ``authorization`` / ``proxy-authorization`` keep the scheme (``Bearer <OPENAI_KEY:..>``,
        else ``AUTH``); API-key headers (``x-api-key``, ``api-key``, ``x-goog-api-key``, names
        ending in ``-token``, ``-api-key``, ``-secret`` ...) are masked whole (``API_KEY`` or the
        content type); ``cookie`` / ``set-cookie`` keep cookie names and attributes, values become
        ``COOKIE``; all other values go through the content rules.  Repeated names are joined
        with ``", "``.  Raises ``RedactionError`` on failure (fail closed).
        """
        summary: Summary = {}
        with fail_closed:
            items = headers.items() if isinstance(headers, Mapping) else headers
            out: dict[str, str] = {}
            for raw_name, raw_value in items:
                name = _as_str(raw_name).strip().lower()
                value = self._header_value(name, _as_str(raw_value), summary)
                out[name] = value if name not in out else f"{out[name]}, {value}"
            return out, summary

    def _header_value(self, name: str, value: str, summary: Summary) -> str:
        if name in AUTH_HEADERS:
            return self._auth_value(value, summary)
        if name in COOKIE_HEADERS:
            return self._cookie_value(value, summary, set_cookie=name == "set-cookie")
        if is_key_header(name):
            return self._mask_value(value, "API_KEY", summary)
        return self._redact(value, summary)

    def _auth_value(self, value: str, summary: Summary) -> str:
        m = AUTH_SCHEME.fullmatch(value.strip())
        if m is None:
            return self._mask_value(value, "AUTH", summary)
        scheme, space, credentials = m.groups()
        return f"{scheme}{space}{self._mask_value(credentials, 'AUTH', summary)}"

    def _cookie_value(self, value: str, summary: Summary, *, set_cookie: bool) -> str:
        parts = value.split(";")
        out: list[str] = []
        for index, part in enumerate(parts):
            if set_cookie and index > 0:  # attributes: Path, Domain, Expires, HttpOnly ...
                out.append(self._redact(part, summary))
                continue
            cname, eq, cvalue = part.partition("=")
            if not eq:
                out.append(self._mask_value(part, "COOKIE", summary) if part.strip() else part)
                continue
            lead = len(cvalue) - len(cvalue.lstrip())
            masked = self._mask_value(cvalue.strip(), "COOKIE", summary) if cvalue.strip() else cvalue.strip()
            out.append(f"{cname}={cvalue[:lead]}{masked}")
        return ";".join(out)

    def redact_url(self, url: str) -> tuple[str, Summary]:
        """Return ``(redacted URL, counts)``.

        User-info (``user:pass@``) becomes ``<URL_CREDENTIALS:..>@``; secret query (and fragment)
        parameters (``key``, ``api_key``, ``apikey``, ``access_token``, ``token``, ``sig``,
        ``signature``, ``code``, ``password``, ``X-Amz-Signature`` ...) become ``SECRET`` or the
        content type (``?key=<GOOGLE_API_KEY:..>``); then the content rules run on the rest.
        The URL is split by hand (never raises on odd URLs) and otherwise kept byte for byte.
        Raises ``RedactionError`` on failure (fail closed).
        """
        if not isinstance(url, str):
            raise RedactionError(f"cannot redact a {type(url).__name__}; expected str")
        summary: Summary = {}
        with fail_closed:
            return self._redact(self._url_structure(url, summary), summary), summary

    def _url_structure(self, url: str, summary: Summary) -> str:
        rest, hash_mark, fragment = url.partition("#")
        rest, qmark, query = rest.partition("?")
        scheme_end = rest.find("://")
        if scheme_end >= 0:
            auth_start = scheme_end + 3
            path_start = rest.find("/", auth_start)
            if path_start < 0:
                path_start = len(rest)
            authority = rest[auth_start:path_start]
            userinfo, at, host = authority.rpartition("@")
            if at and userinfo and not PLACEHOLDER.fullmatch(userinfo):
                masked = userinfo if userinfo in self._allow else self.placeholder("URL_CREDENTIALS", userinfo)
                if masked != userinfo:
                    summary["URL_CREDENTIALS"] = summary.get("URL_CREDENTIALS", 0) + 1
                rest = f"{rest[:auth_start]}{masked}@{host}{rest[path_start:]}"
        if qmark:
            query = self._mask_params(query, summary)
        if hash_mark and "=" in fragment:
            fragment = self._mask_params(fragment, summary)
        return f"{rest}{qmark}{query}{hash_mark}{fragment}"

    def _mask_params(self, query: str, summary: Summary) -> str:
        out: list[str] = []
        for part in query.split("&"):
            name, eq, value = part.partition("=")
            if eq and value and is_secret_param(unquote(name)):
                out.append(f"{name}={self._mask_value(unquote(value), 'SECRET', summary)}")
            else:
                out.append(part)
        return "&".join(out)


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    raise TypeError("header names and values must be str or bytes")
