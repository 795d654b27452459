"""From raw call facts to one redacted record: decode -> parse -> identify -> redact -> build.

Runs on the spool writer's thread. Each step is a small function; ``RecordBuilder``
only wires them together with the configuration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import socket
import zlib
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sidecar._config import Settings
from sidecar.instrument._capture import CallCapture
from sidecar.providers import StreamSummary, iter_sse_data, parse_error, parse_request, parse_response
from sidecar.record import SCHEMA_VERSION, AuditRecord
from sidecar.redact import Redactor

REDACTION_FAILED = "[content withheld: redaction failed]"
# Text past the content cap that still goes through redaction, so a secret cut by the cap
# (a PEM block runs to ~3.3 KB) is matched whole before the cut, never left half-visible.
_REDACT_MARGIN = 8192
_KEY_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
_KEY_PARAMS = ("key", "api_key", "apikey", "access_token")
_HOST = socket.gethostname()


def iso_utc(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    return b"", f"unsupported_encoding_{enc[:20]}"


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


def maybe_json(text: str | None) -> Any:
    if not text:
        return None
    s = text.lstrip()[:1]
    if s not in ("{", "["):
        return None
    try:
        return json.loads(text)
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


_RETRY_WINDOW_NS = 600 * 10**9  # attempts of one request further apart than this are separate requests


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
    query = urlsplit(cap.url).query
    if query:
        for k, v in parse_qsl(query, keep_blank_values=False):
            if k.lower() in _KEY_PARAMS and v:
                return v, "query"
    return None, None


class RecordBuilder:
    def __init__(self, settings: Settings, redactor: Redactor, producer_id: str) -> None:
        self.settings = settings
        self.redactor = redactor
        self.producer_id = producer_id
        self.redaction_failures = 0
        self._group_ends: dict[str, int] = {}  # retry group -> when its latest attempt ended (ns)

    # -- content -----------------------------------------------------------

    def _redact_content(self, text: str | None, parsed: Any, counts: dict[str, int]) -> tuple[str | None, bool]:
        """Redacted, capped content; (text, truncated). Fails closed."""
        if text is None:
            return None, False
        limit = self.settings.max_content_chars
        try:
            if parsed is not None and len(text) <= limit:
                value, summary = self.redactor.redact_json(parsed)
                out = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            else:
                out, summary = self.redactor.redact_text(unescape_json(text[: limit + _REDACT_MARGIN]))
        except Exception:  # any failure withholds the content
            self.redaction_failures += 1
            counts["REDACTION_FAILED"] = counts.get("REDACTION_FAILED", 0) + 1
            return REDACTION_FAILED, False
        for k, v in summary.items():
            counts[k] = counts.get(k, 0) + v
        truncated = len(out) > limit or len(text) > limit
        return out[:limit], truncated

    def _redact_short(self, text: str | None, counts: dict[str, int]) -> str | None:
        if text is None:
            return None
        try:
            out, summary = self.redactor.redact_text(text[:4096])
        except Exception:  # never store an unredacted URL
            self.redaction_failures += 1
            return REDACTION_FAILED
        for k, v in summary.items():
            counts[k] = counts.get(k, 0) + v
        return out

    # -- the record ----------------------------------------------------------

    def build(self, cap: CallCapture, seq: int) -> dict[str, Any]:
        """The record document (AuditRecord's JSON form: dotted names, schema order, no empty fields)."""
        s = self.settings
        ep = cap.endpoint
        counts: dict[str, int] = {}
        f: dict[str, Any] = {}
        notes: list[str] = []

        # request
        req_bytes = cap.request_body
        req_tail = cap.request_tail
        if req_bytes is None and cap.request_tee is not None:
            req_bytes = cap.request_tee.head_bytes()
            cap.request_size = cap.request_tee.size
            cap.request_truncated = cap.request_tee.truncated
            req_tail = cap.request_tee.tail_bytes() if cap.request_tee.truncated else None
        req_text, note = to_text(req_bytes or b"")
        if note:
            notes.append("request_" + note)
        req_json = maybe_json(req_text) if not cap.request_truncated else None
        if req_json is None and cap.request_truncated:
            f.update(salvage_request_fields(req_bytes or b"", req_tail or b""))
        else:
            f.update(parse_request(ep.api_format, req_json))
        body_user = f.pop("body_user", None)
        if ep.path_model and not f.get("request_model"):
            f["request_model"] = ep.path_model
        if ep.path_stream:
            f["request_stream"] = True

        # response
        resp_text: str | None = None
        resp_json: Any = None
        out_text: str | None = None
        resp_truncated = False
        content_type = (header(cap.response_headers, "content-type") or "").lower()
        encoding = None if cap.response_decoded else header(cap.response_headers, "content-encoding")
        tee = cap.response
        if tee is not None:
            raw, note = decode_body(tee.head_bytes(), encoding, s.max_body_bytes)
            if note:
                notes.append(note)
            resp_text, note = to_text(raw)
            if note:
                notes.append("response_" + note)
            resp_truncated = tee.truncated
            tail_text = None
            if tee.truncated and not encoding:
                tail_text, _ = to_text(tee.tail_bytes())
            is_sse = "text/event-stream" in content_type
            is_ndjson = "ndjson" in content_type or (ep.api_format == "ollama" and f.get("request_stream"))
            if resp_text is not None and (is_sse or is_ndjson or (ep.path_stream and resp_text.lstrip()[:1] == "[")):
                summary = StreamSummary(ep.api_format, s.max_content_chars + _REDACT_MARGIN)
                texts = [resp_text] + ([tail_text] if tail_text else [])
                for t in texts:
                    summary.feed(iter_sse_data(t) if is_sse else (t.splitlines() if is_ndjson else [t]))
                f.update(summary.fields)
                out_text = summary.text()
                resp_truncated = resp_truncated or summary.truncated
            elif resp_text is not None:
                resp_json = maybe_json(resp_text) if not tee.truncated else None
                parsed = parse_response(ep.api_format, resp_json)
                if cap.status_code is not None and cap.status_code >= 400:
                    parsed.update(parse_error(ep.api_format, resp_json))
                f.update(parsed)
                out_text = resp_text
        if cap.status_code is not None and cap.status_code >= 400 and "error_message" in f:
            f["error_message"] = self._redact_short(f["error_message"], counts)

        # identity
        user = cap.user_id
        if user is None and s.user_header:
            user = header(cap.request_headers, s.user_header)
        user = user or body_user
        secret, where = find_credential(cap)
        if secret:
            f["credential_fingerprint"] = self.redactor.fingerprint(secret)
            f["credential_location"] = where
        try:
            url, url_counts = self.redactor.redact_url(cap.url)
            for k, v in url_counts.items():
                counts[k] = counts.get(k, 0) + v
        except Exception:
            url = f"{urlsplit(cap.url).scheme}://{cap.host}{cap.path}"
            self.redaction_failures += 1

        # content
        if s.capture_content:
            f["request_content"], t1 = self._redact_content(req_text, req_json, counts)
            f["response_content"], t2 = self._redact_content(out_text, resp_json, counts)
            if t1 or t2 or cap.request_truncated or resp_truncated:
                f["content_truncated"] = True
        elif cap.request_truncated or resp_truncated:
            f["content_truncated"] = True
        if user:
            user = self._redact_short(user, counts)

        # outcome
        error_type = None
        if cap.exception is not None:
            error_type = type(cap.exception).__qualname__
            mod = type(cap.exception).__module__
            if mod and mod != "builtins":
                error_type = f"{mod.split('.')[0]}.{error_type}"
        elif cap.status_code is not None and cap.status_code >= 400:
            error_type = str(cap.status_code)
        elif cap.stream_outcome == "error":
            error_type = "stream_error"
        if cap.cache_hit:
            # A cached answer cost nothing: its usage numbers describe the original call, not this one.
            for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                f.pop(name, None)
        outcome = cap.stream_outcome
        if outcome == "closed_early" and f.get("response_finish_reasons"):
            # SDKs close the response as soon as they read the end marker; the generation did finish.
            outcome = "completed"
        duration_ns = int(((cap.end_perf or cap.start_perf) - cap.start_perf) * 1e9)
        group = hashlib.sha256(f"{cap.method} {cap.host} {cap.path}\n".encode() + (req_bytes or b"")[:65536]
                               ).hexdigest()[:16]
        previous_end = self._group_ends.get(group)
        delay = None
        if previous_end is not None and 0 <= cap.start_ns - previous_end < _RETRY_WINDOW_NS:
            delay = round((cap.start_ns - previous_end) / 1e9, 6)
        if len(self._group_ends) >= 10_000:
            self._group_ends.clear()
        self._group_ends[group] = cap.start_ns + duration_ns
        ttfc = None
        if tee is not None and tee.first_at is not None and (cap.streamed or f.get("request_stream")):
            ttfc = round(tee.first_at - cap.start_perf, 6)

        return document(
            event_id=f"{self.producer_id}-{seq}",
            timestamp=iso_utc(cap.start_ns),
            event_duration=duration_ns,
            event_outcome="failure" if error_type else "success",
            producer_id=self.producer_id,
            sequence=seq,
            service_name=s.service_name,
            host_name=_HOST,
            trace_id=_trace_id(cap),
            span_id=_span_id(cap),
            user_id=user,
            provider=ep.provider,
            api_format=ep.api_format,
            operation=ep.operation,
            http_method=cap.method,
            url_full=url,
            url_path=cap.path,
            server_address=cap.host,
            server_port=cap.port,
            http_client=cap.client,
            url_scheme=urlsplit(cap.url).scheme or None,
            client_timeout=cap.timeout,
            client_timeout_set=(cap.timeout is not None) if cap.timeout_known else None,
            connection_reused=cap.connection_reused,
            resend_count=cap.resend_count,
            retry_group=group,
            retry_delay=delay,
            cache_hit=True if cap.cache_hit else None,
            transport_phase=transport_phase(cap.exception) if cap.exception is not None and cap.status_code is None
            else None,
            status_code=cap.status_code,
            error_type=error_type,
            retry_after=retry_after_seconds(header(cap.response_headers, "retry-after")),
            request_bytes=cap.request_size,
            response_bytes=tee.size if tee is not None else None,
            response_content_encoding=encoding or None,
            stream_outcome=outcome if cap.streamed else None,
            time_to_first_chunk=ttfc,
            content_note=",".join(notes) or (None if s.capture_content else "capture_off"),
            redaction_counts=counts or None,
            redaction_total=sum(counts.values()) or None,
            **f,
        )


# (attribute, document name) in schema order. Building the document straight from these skips
# pydantic's construct/dump (~30 us a record); tests validate built documents against AuditRecord.
_FIELDS = tuple((name, info.alias or name) for name, info in AuditRecord.model_fields.items())
_DEFAULTS = {"schema_version": SCHEMA_VERSION}


def document(**values: Any) -> dict[str, Any]:
    unknown = values.keys() - {name for name, _ in _FIELDS}
    if unknown:
        raise TypeError(f"not record fields: {sorted(unknown)}")
    values = {**_DEFAULTS, **values}
    return {alias: v for name, alias in _FIELDS if (v := values.get(name)) is not None}


def _trace_id(cap: CallCapture) -> str | None:
    if cap.span is None:
        return None
    ctx = cap.span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _span_id(cap: CallCapture) -> str | None:
    if cap.span is None:
        return None
    ctx = cap.span.get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None
