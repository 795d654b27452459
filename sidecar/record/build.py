"""From raw call facts to one redacted record, in small steps (each in its own module, each tested alone):

    decode (``_decode``) -> provider parse (``_parse``) -> identity (``_identity``) -> price (``_genai``)
    -> redact (``_redaction``) -> retry grouping (``_retry``) -> outcome and timing (``_outcome``)
    -> document and spool line (``_document``)

Runs on the spool writer's thread. ``RecordBuilder`` holds the configuration and the little state
kept between calls, and guarantees one record per call: when a step fails on the content, the
record keeps the call's metadata and says why the content was withheld. Every string written
passes the redactor (``sidecar.record.privacy``).
"""

from __future__ import annotations

import logging
from typing import Any

from sidecar.config import AppSettings, ConfigError
from sidecar.cost import PriceBook, PricesFileError
from sidecar.record._bodies import (
    decode_body,
    header,
    iso_utc,
    maybe_json,
    retry_after_seconds,
    salvage_request_fields,
    to_text,
    transport_phase,
)
from sidecar.record._decode import read_request, read_response, response_encoding
from sidecar.record._document import document, encode, with_counts
from sidecar.record._genai import cost_fields
from sidecar.record._identity import identity_fields
from sidecar.record._outcome import call_metadata, drop_cached_usage, outcome_fields
from sidecar.record._parse import request_fields, response_fields
from sidecar.record._redaction import REDACT_MARGIN, REDACTION_FAILED, RecordRedaction, redact_messages
from sidecar.record._retry import RetryGroups
from sidecar.record.capture import CallCapture
from sidecar.record.switches import read_switches
from sidecar.redact import Redactor

__all__ = [
    "REDACTION_FAILED", "RecordBuilder", "decode_body", "document", "encode", "header", "iso_utc", "maybe_json",
    "retry_after_seconds", "salvage_request_fields", "to_text", "transport_phase",
]  # fmt: skip

log = logging.getLogger("sidecar")

_ERROR_MESSAGE_CHARS = 4096


class RecordBuilder:
    def __init__(self, settings: AppSettings, redactor: Redactor, producer_id: str) -> None:
        self.settings = settings
        self.redactor = redactor
        self.producer_id = producer_id
        self.redaction = RecordRedaction(redactor, settings.max_content_chars)
        self.retries = RetryGroups(lambda data: redactor.keyed_digest("retry-group", data))
        self.withheld = 0  # records written with their content withheld after a failure
        try:
            self.prices = PriceBook(settings.prices_file)
        except PricesFileError as exc:
            raise ConfigError(f"invalid configuration: SIDECAR_PRICES_FILE: {exc}") from None
        self.cost_unknown = 0  # calls with tokens but no known price
        self.switches = read_switches()  # OpenTelemetry's content switch, read once at start-up
        #: the redacted messages of the record just built, for its span (set when the switch asks for them)
        self.span_content: dict[str, Any] | None = None

    @property
    def redaction_failures(self) -> int:
        return self.redaction.failures

    def media_digest(self, raw: bytes) -> str:
        """Keyed hash of inline media bytes: matches the same file across records, reveals nothing."""
        return self.redactor.keyed_digest("media", raw, 32)

    def redact_field(self, value: str, bound: int, counts: dict[str, int]) -> str:
        """One short field through the redactor, cut to ``bound`` after redaction. Fails closed."""
        return self.redaction.field(value, bound, counts)

    def build(self, cap: CallCapture, seq: int) -> dict[str, Any]:
        """The record document. Always one: a failure on the content withholds the content, not the record."""
        self.span_content = None
        try:
            return self._build(cap, seq)
        except Exception as exc:  # withhold what could not be processed, keep the metadata
            self.withheld += 1
            log.warning("audit record content withheld (%s); trace %s", type(exc).__name__, cap.trace_hex())
            return self._metadata_only(cap, seq, f"content_withheld:{_reason(exc)}")
        finally:
            self.redaction.tree.forget()

    def _build(self, cap: CallCapture, seq: int) -> dict[str, Any]:
        s, ep = self.settings, cap.endpoint
        counts: dict[str, int] = {}
        notes: list[str] = []
        request = read_request(cap, notes)
        f, req_text, req_json = request_fields(ep, request, self.media_digest, notes)
        body_user = f.pop("body_user", None)
        encoding = response_encoding(cap)
        response = read_response(cap, encoding, s.max_body_bytes, bool(f.get("request_stream")), notes)
        parsed, out_text, resp_json, resp_truncated = response_fields(
            ep, response, cap.status_code, s.max_content_chars + 2 * REDACT_MARGIN, self.media_digest, notes)
        f.update(parsed)
        if "error_message" in f:
            f["error_message"] = self.redaction.text(f["error_message"], _ERROR_MESSAGE_CHARS, counts)
        f.update(identity_fields(cap, s, body_user, f.pop("conversation_id", None), self.redactor.fingerprint))
        url = self.redaction.url(cap.url, counts)  # fails closed: the record falls back
        if not cap.cache_hit and not cost_fields(self.prices, f, ep.provider):
            self.cost_unknown += 1  # tokens but no known price
        self._redact_content(cap, f, counts, notes, (req_text, req_json), (out_text, resp_json, resp_truncated))
        drop_cached_usage(cap, f)
        values = call_metadata(cap, seq, self.producer_id, s.service_name)
        group = self.retries.group(cap.method, cap.host, cap.path, request.raw)
        delay = self.retries.attempt(group, cap.start_ns, values["event_duration"])
        values.update(outcome_fields(cap, f, encoding))
        values.update(url_full=url, retry_group=group, retry_delay=delay, redaction_counts=counts, redaction_total=0,
                      content_note=",".join(notes) or (None if s.capture_content else "capture_off"), **f)
        doc = document(**values)
        self.redaction.final_pass(doc, counts)
        return with_counts(doc, counts)

    def _redact_content(self, cap: CallCapture, f: dict[str, Any], counts: dict[str, int], notes: list[str],
                        request: tuple[str | None, Any], response: tuple[str | None, Any, bool]) -> None:
        """The messages (for the record and the span) and the bodies' content, per the two switches:
        the record's is SIDECAR_CAPTURE_CONTENT, the span's OpenTelemetry's."""
        capture = self.settings.capture_content
        msg_counts, self.span_content = redact_messages(f, self.redaction, capture, self.switches, notes)
        resp_truncated = response[2]
        if capture:
            f["request_content"], t1 = self.redaction.content(request[0], request[1], counts)
            f["response_content"], t2 = self.redaction.content(response[0], response[1], counts)
            if t1 or t2 or cap.request_truncated or resp_truncated:
                f["content_truncated"] = True
            for kind, n in msg_counts.items():
                counts[kind] = max(counts.get(kind, 0), n)
        elif cap.request_truncated or resp_truncated:
            f["content_truncated"] = True

    def _metadata_only(self, cap: CallCapture, seq: int, note: str) -> dict[str, Any]:
        counts: dict[str, int] = {}
        try:
            url: str | None = self.redaction.url(cap.url, counts)
        except Exception:
            url = None
        values = call_metadata(cap, seq, self.producer_id, self.settings.service_name)
        values.update(url_full=url, content_note=note, retry_group=None, retry_delay=None, redaction_counts=counts,
                      redaction_total=0)
        doc = document(**values)
        self.redaction.final_pass(doc, counts)
        return with_counts(doc, counts)


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
