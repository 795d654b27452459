"""The small steps from raw call facts to record fields: decode bodies, read JSON, find the key."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import zlib
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sidecar.clock import format_utc
from sidecar.errors import SidecarError
from sidecar.record.capture import CallCapture

_KEY_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
_KEY_PARAMS = ("key", "api_key", "apikey", "access_token")
HOST = socket.gethostname()


def iso_utc(ns: int) -> str:
    return format_utc(ns / 1e9)


def decode_body(data: bytes, encoding: str | None, limit: int) -> tuple[bytes, str | None]:
    """Undo gzip/deflate (at most ``limit`` bytes out). Returns (bytes, note) where note says what went wrong."""
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        return data, None
    if enc in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in enc else zlib.MAX_WBITS
        try:
            d = zlib.decompressobj(wbits)
            return d.decompress(data, limit), None
        except zlib.error:
            if enc == "deflate":  # raw deflate without the zlib header, as some servers send
                try:
                    d = zlib.decompressobj(-zlib.MAX_WBITS)
                    return d.decompress(data, limit), None
                except zlib.error:
                    pass
            return b"", f"undecodable_{enc}"
    # the note names only encodings from this list: a header value is not written as it is
    return b"", f"unsupported_encoding_{enc}" if enc in ("br", "zstd", "compress", "snappy") else "unsupported_encoding"


def to_text(data: bytes) -> tuple[str | None, str | None]:
    """UTF-8 text, or None with a note for binary bodies. Invalid bytes become U+FFFD."""
    if not data:
        return "", None
    sample = data[:1024]
    if b"\x00" in sample:
        return None, "binary"
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and text.count("\ufffd") > len(text) // 10 + 8:
        return None, "binary"
    return text, ("invalid_utf8" if "\ufffd" in text else None)


class JsonTooDeep(SidecarError, ValueError):
    """A JSON body nested deeper than the parser's recursion limit."""


def maybe_json(text: str | None) -> Any:
    """The parsed JSON object or array, None when the text is not one; ``JsonTooDeep`` when it
    is nested too deep to parse (a caller must not mistake that for plain text)."""
    if not text:
        return None
    s = text.lstrip()[:1]
    if s not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonTooDeep from None
    except ValueError:
        return None


_SALVAGE = (
    ("request_model", re.compile(rb'"model"\s{0,4}:\s{0,4}"([^"\\]{1,200})"'), lambda b: b.decode("utf-8", "replace")),
    ("request_stream", re.compile(rb'"stream"\s{0,4}:\s{0,4}(true|false)'), lambda b: b == b"true"),
    ("request_max_tokens", re.compile(rb'"max_(?:completion_)?tokens"\s{0,4}:\s{0,4}(\d{1,9})'), lambda b: int(b)),
)


def salvage_request_fields(head: bytes, tail: bytes) -> dict[str, Any]:
    """A request body over the cap cannot be parsed; its top-level model and stream flag are still
    findable in the bytes kept from its start and its end (SDKs put them at one or the other)."""
    out: dict[str, Any] = {}
    for name, pattern, convert in _SALVAGE:
        for part in (head[:65536], tail):
            m = pattern.search(part)
            if m:
                out[name] = convert(m.group(1))
                break
    return out


_U_ESCAPE = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.IGNORECASE)


def _unescape(m: re.Match[str]) -> str:
    if m.group(3):
        code = int(m.group(3), 16)
        return chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd"
    hi, lo = int(m.group(1), 16), int(m.group(2), 16)
    return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))


def unescape_json(text: str) -> str:
    """Undo ``\\uXXXX`` escapes in JSON text that cannot be parsed (cut by the cap): SDKs escape
    non-ASCII, and ``\\u8c22`` glued to ``13812345678`` would hide the number from the rules."""
    return _U_ESCAPE.sub(_unescape, text) if "\\u" in text else text


def transport_phase(exc: BaseException) -> str:
    """connect | read | write | pool | tls | other, from the exception's class names (httpx, requests, urllib3)."""
    names = " ".join(c.__name__ for c in type(exc).__mro__).lower()
    if "ssl" in names or "tls" in names or "certificate" in names:
        return "tls"
    for phase in ("pool", "connect", "read", "write"):
        if phase in names:
            return phase
    if "protocol" in names or "remotedisconnected" in names:
        return "read"
    return "other"


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max((when - dt.datetime.now(tz=dt.timezone.utc)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def find_credential(cap: CallCapture) -> tuple[str | None, str | None]:
    """(secret value, where it was sent) — the value is only ever fingerprinted."""
    for name in _KEY_HEADERS:
        v = header(cap.request_headers, name)
        if v:
            parts = v.split(None, 1)
            if name == "authorization" and len(parts) == 2:
                v = parts[1]
            return v.strip(), "header"
    try:
        query = urlsplit(cap.url).query
    except ValueError:  # an odd URL (an unclosed IPv6 bracket): no key to find in it
        return None, None
    if query:
        for k, v in parse_qsl(query, keep_blank_values=False):
            if k.lower() in _KEY_PARAMS and v:
                return v, "query"
    return None, None


