"""From raw call facts to one redacted record: decode -> parse -> identify -> redact -> build.

Runs on the spool writer's thread. Each step is a small function (``sidecar.record._bodies``);
``RecordBuilder`` wires them together with the configuration, and guarantees one record
per call: when a step fails on the content, the record keeps the call's metadata and says
why the content was withheld. Every string written passes the redactor (``sidecar.record.privacy``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from sidecar.config import AppSettings, ConfigError
from sidecar.cost import PriceBook, PricesFileError
from sidecar.providers import (
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
from sidecar.record import SCHEMA_VERSION, AuditRecord
from sidecar.record._bodies import (
    HOST,
    RETRY_WINDOW_NS,
    JsonTooDeep,
    decode_body,
    find_credential,
    header,
    iso_utc,
    maybe_json,
    retry_after_seconds,
    salvage_request_fields,
    to_text,
    transport_phase,
    unescape_json,
)
from sidecar.record._genai import MESSAGE_ALIASES, MESSAGE_FIELDS, cost_fields, cut_strings
from sidecar.record.capture import CallCapture
from sidecar.record.privacy import DEFAULT_BOUND, REDACTED, REDACTED_WHERE_BUILT, SAFE
from sidecar.record.switches import read_switches
from sidecar.redact import Redactor, cut_kept

__all__ = [
    "REDACTION_FAILED", "RecordBuilder", "decode_body", "document", "encode", "header", "iso_utc", "maybe_json",
    "retry_after_seconds", "salvage_request_fields", "to_text", "transport_phase",
]  # fmt: skip

log = logging.getLogger("sidecar")

REDACTION_FAILED = "[content withheld: redaction failed]"
FIELD_WITHHELD = "[withheld: redaction failed]"
# Text past the content cap that a stream summary keeps: the cut is made after redaction.
_REDACT_MARGIN = 2048
_ERROR_MESSAGE_CHARS = 4096
_URL_CHARS = 8192
_SHORT = 256  # strings this short are remembered with their redaction (models, paths recur)
_SHORT_CACHE = 2048
_SCHEMES = ("http", "https")
_SURROGATE = re.compile("[\ud800-\udfff]")


class RecordBuilder:
    def __init__(self, settings: AppSettings, redactor: Redactor, producer_id: str) -> None:
        self.settings = settings
        self.redactor = redactor
        self.producer_id = producer_id
        self.redaction_failures = 0
        self.withheld = 0  # records written with their content withheld after a failure
        self._group_ends: dict[str, int] = {}  # retry group -> when its latest attempt ended (ns)
        self._short: dict[str, tuple[str, dict[str, int]]] = {}
        try:
            self.prices = PriceBook(settings.prices_file)
        except PricesFileError as exc:
            raise ConfigError(f"invalid configuration: SIDECAR_PRICES_FILE: {exc}") from None
        self.cost_unknown = 0  # calls with tokens but no known price
        self.switches = read_switches()  # OpenTelemetry's content switch, read once at start-up
        #: the redacted messages of the record just built, for its span (set when the switch asks for them)
        self.span_content: dict[str, Any] | None = None

    def media_digest(self, raw: bytes) -> str:
        """Keyed hash of inline media bytes: matches the same file across records, reveals nothing."""
        return self.redactor.keyed_digest("media", raw, 32)

    # -- redaction ---------------------------------------------------------------

    def _redact_content(self, text: str | None, parsed: Any, counts: dict[str, int]) -> tuple[str | None, bool]:
        """Redacted, capped content; (text, truncated). Redact first, cut second. Fails closed."""
        if text is None:
            return None, False
        limit = self.settings.max_content_chars
        try:
            if parsed is not None and len(text) <= limit:
                value, summary = self.redactor.redact_json(parsed)
                out = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                cut = len(out) > limit
                out = cut_kept(out, limit)
            else:
                out, summary, cut = self.redactor.redact_bounded(unescape_json(text[: limit + 2 * _REDACT_MARGIN]),
                                                                 limit)
        except Exception:  # any failure withholds the content
            self.redaction_failures += 1
            counts["REDACTION_FAILED"] = counts.get("REDACTION_FAILED", 0) + 1
            return REDACTION_FAILED, False
        _add(counts, summary)
        return out, cut or len(text) > limit

    def redact_field(self, value: str, bound: int, counts: dict[str, int]) -> str:
        """One short field through the redactor, cut to ``bound`` after redaction. Fails closed."""
        cached = self._short.get(value) if len(value) <= _SHORT else None
        if cached is None:
            try:
                out, summary, _ = self.redactor.redact_bounded(value, bound)
            except Exception:
                self.redaction_failures += 1
                return FIELD_WITHHELD
            cached = (out, summary)
            if len(value) <= _SHORT:
                if len(self._short) >= _SHORT_CACHE:
                    self._short.clear()
                self._short[value] = cached
        _add(counts, cached[1])
        return cached[0]

    def _choke(self, doc: dict[str, Any], counts: dict[str, int]) -> None:
        """The final pass: every string field that is not safe by construction (``SAFE``) and was
        not redacted where it was built goes through the redactor now, and is cut to its bound."""
        for key, value in doc.items():
            if key in SAFE or key in _BUILT:
                continue
            bound = REDACTED.get(key, DEFAULT_BOUND)
            if isinstance(value, str):
                doc[key] = self.redact_field(value, bound, counts)
            elif isinstance(value, list):
                doc[key] = [self.redact_field(v, bound, counts) if isinstance(v, str) else v for v in value]

    # -- the record ----------------------------------------------------------------

    def build(self, cap: CallCapture, seq: int) -> dict[str, Any]:
        """The record document. Always one: a failure on the content withholds the content, not the record."""
        self.span_content = None
        try:
            return self._build(cap, seq)
        except Exception as exc:  # withhold what could not be processed, keep the metadata
            self.withheld += 1
            log.warning("audit record content withheld (%s); trace %s", type(exc).__name__, cap.trace_hex())
            return self._metadata_only(cap, seq, f"content_withheld:{_reason(exc)}")

    def _metadata_only(self, cap: CallCapture, seq: int, note: str) -> dict[str, Any]:
        counts: dict[str, int] = {}
        try:
            url, url_counts = self.redactor.redact_url(cap.url)
            url = cut_kept(url, _URL_CHARS)
            _add(counts, url_counts)
        except Exception:
            url = None
        values = self._common(cap, seq)
        values.update(url_full=url, content_note=note, retry_group=None, retry_delay=None)
        doc = document(**values)
        self._choke(doc, counts)
        return _with_counts(doc, counts)

    def _common(self, cap: CallCapture, seq: int) -> dict[str, Any]:
        """The call's metadata, from the capture alone (no body)."""
        ep = cap.endpoint
        error_type = _error_type(cap)
        duration_ns = int(((cap.end_perf or cap.start_perf) - cap.start_perf) * 1e9)
        scheme = cap.url.split("://", 1)[0].lower() if "://" in cap.url else ""
        return dict(
            event_id=f"{self.producer_id}-{seq}", timestamp=iso_utc(cap.start_ns), event_duration=duration_ns,
            event_outcome="failure" if error_type else "success", producer_id=self.producer_id, sequence=seq,
            service_name=self.settings.service_name, host_name=HOST, trace_id=cap.trace_hex(),
            span_id=cap.span_hex(), provider=ep.provider, api_format=ep.api_format, operation=ep.operation,
            http_method=cap.method, url_path=cap.path, server_address=cap.host, server_port=cap.port,
            http_client=cap.client, url_scheme=(scheme if scheme in _SCHEMES else "other") if scheme else None,
            status_code=cap.status_code, error_type=error_type, request_bytes=cap.request_size,
            response_bytes=cap.response.size if cap.response is not None else None,
            transport_phase=transport_phase(cap.exception) if cap.exception is not None and cap.status_code is None
            else None,
        )

    def _request(self, cap: CallCapture, f: dict[str, Any], notes: list[str]) -> tuple[str | None, Any, bytes]:
        """Request fields into ``f``; returns (text, parsed JSON, bytes)."""
        ep = cap.endpoint
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
        req_json = None
        if not cap.request_truncated:
            try:
                req_json = maybe_json(req_text)
            except JsonTooDeep:
                notes.append("request_json_too_deep")
                req_text = None  # never stored: it cannot be walked by key, so it is withheld
        if req_json is None and cap.request_truncated:
            f.update(salvage_request_fields(req_bytes or b"", req_tail or b""))
        else:
            f.update(parse_request(ep.api_format, req_json))
            try:
                f.update(request_messages(ep.api_format, ep.operation, req_json, self.media_digest))
                if req_json is not None and req_text is not None and len(req_text) >= 1024:
                    stripped = strip_inline_media(req_json, self.media_digest)
                    if stripped != req_json:  # the raw content keeps a marker, never the media's base64
                        req_json = stripped
                        req_text = json.dumps(stripped, ensure_ascii=False, separators=(",", ":"))
            except RecursionError:  # nested too deep to walk: no messages; the content path decides the rest
                notes.append("messages_too_deep")
        if ep.path_model and not f.get("request_model"):
            f["request_model"] = ep.path_model
        if ep.path_stream:
            f["request_stream"] = True
        return req_text, req_json, req_bytes or b""

    def _response(self, cap: CallCapture, f: dict[str, Any], notes: list[str],
                  encoding: str | None) -> tuple[str | None, Any, bool]:
        """Response fields into ``f``; returns (text to store, parsed JSON, truncated)."""
        s, ep, tee = self.settings, cap.endpoint, cap.response
        if tee is None:
            return None, None, False
        content_type = (header(cap.response_headers, "content-type") or "").lower()
        raw, note = decode_body(tee.head_bytes(), encoding, s.max_body_bytes)
        if note:
            notes.append(note)
        resp_text, note = to_text(raw)
        if note:
            notes.append("response_" + note)
        if resp_text is None:
            return None, None, tee.truncated
        truncated = tee.truncated
        tail_text = to_text(tee.tail_bytes())[0] if tee.truncated and not encoding else None
        is_sse = "text/event-stream" in content_type
        is_ndjson = "ndjson" in content_type or (ep.api_format == "ollama" and f.get("request_stream"))
        if is_sse or is_ndjson or (ep.path_stream and resp_text.lstrip()[:1] == "["):
            summary = StreamSummary(ep.api_format, s.max_content_chars + 2 * _REDACT_MARGIN)
            for t in [resp_text] + ([tail_text] if tail_text else []):
                summary.feed(iter_sse_data(t) if is_sse else (iter_lines(t) if is_ndjson else [t]))
            f.update(summary.fields)
            f["output_messages"] = summary.output.messages() or None
            return summary.text(), None, truncated or summary.truncated
        resp_json = None
        if not tee.truncated:
            try:
                resp_json = maybe_json(resp_text)
            except JsonTooDeep:
                notes.append("response_json_too_deep")
                resp_text = None
        parsed = parse_response(ep.api_format, resp_json)
        try:
            parsed["output_messages"] = response_messages(ep.api_format, resp_json, self.media_digest) or None
        except RecursionError:
            notes.append("messages_too_deep")
        if cap.status_code is not None and cap.status_code >= 400:
            parsed.update(parse_error(ep.api_format, resp_json))
        f.update(parsed)
        return resp_text, resp_json, truncated

    def _build(self, cap: CallCapture, seq: int) -> dict[str, Any]:
        s = self.settings
        counts: dict[str, int] = {}
        f: dict[str, Any] = {}
        notes: list[str] = []
        req_text, req_json, req_bytes = self._request(cap, f, notes)
        body_user = f.pop("body_user", None)
        encoding = None if cap.response_decoded else header(cap.response_headers, "content-encoding")
        out_text, resp_json, resp_truncated = self._response(cap, f, notes, encoding)
        if "error_message" in f:
            f["error_message"] = self._bounded_text(f["error_message"], _ERROR_MESSAGE_CHARS, counts)

        # identity
        user = cap.user_id
        if user is None and s.user_header:
            user = header(cap.request_headers, s.user_header)
        secret, where = find_credential(cap)
        if secret:
            f["credential_fingerprint"] = self.redactor.fingerprint(secret)
            f["credential_location"] = where
        url, url_counts = self.redactor.redact_url(cap.url)  # fails closed: the record falls back
        url = cut_kept(url, _URL_CHARS)
        _add(counts, url_counts)

        conversation = cap.conversation_id or (header(cap.request_headers, s.conversation_header)
                                               if s.conversation_header else None)
        body_conversation = f.pop("conversation_id", None)
        f["conversation_id"] = conversation or body_conversation
        if not cap.cache_hit:  # a cached answer cost nothing (its usage numbers are dropped below)
            self._cost(f, cap.endpoint.provider)

        # content: the record's is governed by SIDECAR_CAPTURE_CONTENT, the span's by OpenTelemetry's switch
        msg_counts = self._messages(f, notes)
        if s.capture_content:
            f["request_content"], t1 = self._redact_content(req_text, req_json, counts)
            f["response_content"], t2 = self._redact_content(out_text, resp_json, counts)
            if t1 or t2 or cap.request_truncated or resp_truncated:
                f["content_truncated"] = True
        elif cap.request_truncated or resp_truncated:
            f["content_truncated"] = True
        if s.capture_content:
            for kind, n in msg_counts.items():
                counts[kind] = max(counts.get(kind, 0), n)

        if cap.cache_hit:
            # A cached answer cost nothing: its usage numbers describe the original call, not this one.
            for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                f.pop(name, None)
        values = self._common(cap, seq)
        outcome = cap.stream_outcome
        if outcome == "closed_early" and f.get("response_finish_reasons"):
            # SDKs close the response as soon as they read the end marker; the generation did finish.
            outcome = "completed"
        group, delay = self._retry_group(cap, req_bytes, values["event_duration"])
        ttfc = None
        tee = cap.response
        if tee is not None and tee.first_at is not None and (cap.streamed or f.get("request_stream")):
            ttfc = round(tee.first_at - cap.start_perf, 6)
        values.update(
            user_id=user or body_user, url_full=url, client_timeout=cap.timeout,
            client_timeout_set=(cap.timeout is not None) if cap.timeout_known else None,
            connection_reused=cap.connection_reused, resend_count=cap.resend_count, retry_group=group,
            retry_delay=delay, cache_hit=True if cap.cache_hit else None,
            retry_after=retry_after_seconds(header(cap.response_headers, "retry-after")),
            response_content_encoding=encoding or None, stream_outcome=outcome if cap.streamed else None,
            time_to_first_chunk=ttfc, content_note=",".join(notes) or (None if s.capture_content else "capture_off"),
            **f,
        )
        doc = document(**values)
        self._choke(doc, counts)
        return _with_counts(doc, counts)

    def _messages(self, f: dict[str, Any], notes: list[str]) -> dict[str, int]:
        """Redact the structured messages in ``f``: kept there when the record captures content, and
        in ``span_content`` when OpenTelemetry's switch asks for them. Returns their redaction counts
        (they repeat the bodies' values: the caller merges them, it does not add them)."""
        capture = self.settings.capture_content
        want_span = self.switches.content_on_span or self.switches.content_on_event
        span_content: dict[str, Any] = {}
        msg_counts: dict[str, int] = {}
        for name in MESSAGE_FIELDS:
            value = f.pop(name, None)
            if value is None or not (capture or want_span):
                continue
            value, cut = self._redact_messages(value, msg_counts, notes)
            if value is None:
                continue
            span_content[MESSAGE_ALIASES[name]] = value
            if capture:
                f[name] = value
                if cut:
                    f["content_truncated"] = True
        self.span_content = span_content if want_span and span_content else None
        return msg_counts

    def _cost(self, f: dict[str, Any], provider: str | None) -> None:
        if not cost_fields(self.prices, f, provider):
            self.cost_unknown += 1

    def _redact_messages(self, value: Any, counts: dict[str, int], notes: list[str]) -> tuple[Any, bool]:
        """Structured messages, redacted, every string cut so their total stays within the content
        budget (cut again after redaction, so a placeholder is never split). Fails closed."""
        limit = self.settings.max_content_chars
        try:
            pre, _ = cut_strings(value, limit + _REDACT_MARGIN)
            red, summary = self.redactor.redact_json(pre)
            out, cut = cut_strings(red, limit)
        except Exception:
            self.redaction_failures += 1
            counts["REDACTION_FAILED"] = counts.get("REDACTION_FAILED", 0) + 1
            if "messages_withheld" not in notes:
                notes.append("messages_withheld")
            return None, False
        _add(counts, summary)
        return out, cut or cut_strings(value, limit)[1]

    def _bounded_text(self, text: str, limit: int, counts: dict[str, int]) -> str:
        try:
            out, summary, _ = self.redactor.redact_bounded(text, limit)
        except Exception:
            self.redaction_failures += 1
            return FIELD_WITHHELD
        _add(counts, summary)
        return out

    def _retry_group(self, cap: CallCapture, body: bytes, duration_ns: int) -> tuple[str, float | None]:
        """A keyed hash of method, host, path and body (attempts of one request share it), and the
        delay since the previous attempt of the group ended."""
        group = self.redactor.keyed_digest("retry-group", f"{cap.method} {cap.host} {cap.path}\n".encode()
                                           + body[:65536])
        previous_end = self._group_ends.get(group)
        delay = None
        if previous_end is not None and 0 <= cap.start_ns - previous_end < RETRY_WINDOW_NS:
            delay = round((cap.start_ns - previous_end) / 1e9, 6)
        if len(self._group_ends) >= 10_000:
            self._group_ends.clear()
        self._group_ends[group] = cap.start_ns + duration_ns
        return group, delay


def encode(doc: dict[str, Any]) -> bytes:
    """The spool line of ``doc``. Lone surrogates (from ``\\udc00`` escapes in a body) cannot be
    written as UTF-8: they become U+FFFD, and the record says so."""
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or an infinity: not JSON, and the index would refuse the record
        doc = {k: v for k, v in doc.items() if not (isinstance(v, float) and not math.isfinite(v))}
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        note = doc.get("sidecar.content.note")
        doc["sidecar.content.note"] = f"{note},lone_surrogates_replaced" if note else "lone_surrogates_replaced"
        doc = _reorder(doc)
        return _SURROGATE.sub("\ufffd", json.dumps(doc, ensure_ascii=False, separators=(",", ":"))).encode("utf-8")


def _error_type(cap: CallCapture) -> str | None:
    if cap.exception is not None:
        error_type = type(cap.exception).__qualname__
        mod = type(cap.exception).__module__
        if mod and mod != "builtins":
            error_type = f"{mod.split('.')[0]}.{error_type}"
        return error_type
    if cap.status_code is not None and cap.status_code >= 400:
        return str(cap.status_code)
    if cap.stream_outcome == "error":
        return "stream_error"
    return None


def _reason(exc: BaseException) -> str:
    """A short, fixed-vocabulary reason (never the exception's message: it may quote the input)."""
    if isinstance(exc, RecursionError):
        return "too_deep"
    if isinstance(exc, UnicodeError):
        return "encoding"
    if isinstance(exc, MemoryError):
        return "too_large"
    if type(exc).__name__ == "RedactionError":
        return "redaction_failed"
    return "processing_failed"


def _add(counts: dict[str, int], summary: dict[str, int]) -> None:
    for k, v in summary.items():
        counts[k] = counts.get(k, 0) + v


def _with_counts(doc: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    if counts:
        doc["sidecar.redaction.counts"] = counts
        doc["sidecar.redaction.total"] = sum(counts.values())
        return _reorder(doc)
    return doc


# (attribute, document name) in schema order. Building the document straight from these skips
# pydantic's construct/dump (~30 us a record); tests validate built documents against AuditRecord.
_FIELDS = tuple((name, info.alias or name) for name, info in AuditRecord.model_fields.items())
_ORDER = {alias: n for n, (_, alias) in enumerate(_FIELDS)}
_DEFAULTS = {"schema_version": SCHEMA_VERSION}
_BUILT = frozenset(REDACTED_WHERE_BUILT)


def document(**values: Any) -> dict[str, Any]:
    unknown = values.keys() - {name for name, _ in _FIELDS}
    if unknown:
        raise TypeError(f"not record fields: {sorted(unknown)}")
    values = {**_DEFAULTS, **values}
    return {alias: v for name, alias in _FIELDS if (v := values.get(name)) is not None}


def _reorder(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(doc.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))
