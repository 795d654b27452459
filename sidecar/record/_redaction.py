"""Step: redact. Every string the record keeps passes the redactor once, by the path made for its
shape (content, messages, a short field, the URL), and is cut to its bound after redaction. Each
path fails closed: what cannot be redacted is withheld and counted."""

from __future__ import annotations

import json
from typing import Any

from sidecar.record._bodies import unescape_json
from sidecar.record._genai import MESSAGE_ALIASES, MESSAGE_FIELDS, cut_strings, string_chars
from sidecar.record._tree import TreeRedaction
from sidecar.record.privacy import DEFAULT_BOUND, REDACTED, REDACTED_WHERE_BUILT, SAFE
from sidecar.record.switches import Switches
from sidecar.redact import Redactor, cut_kept

REDACTION_FAILED = "[content withheld: redaction failed]"
FIELD_WITHHELD = "[withheld: redaction failed]"
# Text past the content cap that is still redacted (and kept by a stream summary): the cut is made after.
REDACT_MARGIN = 2048
URL_CHARS = 8192
_SHORT = 256  # strings this short are remembered with their redaction (models, paths recur)
_SHORT_CACHE = 2048
_PASSED = frozenset(SAFE) | frozenset(REDACTED_WHERE_BUILT)  # fields the final pass leaves as they are


def add_counts(counts: dict[str, int], summary: dict[str, int]) -> None:
    for k, v in summary.items():
        counts[k] = counts.get(k, 0) + v


class RecordRedaction:
    """The redactor as the record build uses it; counts what it could not redact (``failures``)."""

    def __init__(self, redactor: Redactor, max_content_chars: int) -> None:
        self.redactor = redactor
        self.limit = max_content_chars
        self.failures = 0
        self._short: dict[str, tuple[str, dict[str, int]]] = {}
        self.tree = TreeRedaction(redactor)  # JSON trees: a string the bodies and messages share is scanned once

    def _failed(self, counts: dict[str, int]) -> None:
        self.failures += 1
        counts["REDACTION_FAILED"] = counts.get("REDACTION_FAILED", 0) + 1

    def content(self, text: str | None, parsed: Any, counts: dict[str, int]) -> tuple[str | None, bool]:
        """Redacted, capped content; (text, truncated). Redact first, cut second."""
        if text is None:
            return None, False
        limit = self.limit
        try:
            if parsed is not None and len(text) <= limit:
                value, summary = self.tree.redact(parsed)
                out = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                cut = len(out) > limit
                out = cut_kept(out, limit)
            else:
                out, summary, cut = self._bounded(unescape_json(text[: limit + 2 * REDACT_MARGIN]), limit)
        except Exception:  # any failure withholds the content
            self._failed(counts)
            return REDACTION_FAILED, False
        add_counts(counts, summary)
        return out, cut or len(text) > limit

    def _bounded(self, text: str, limit: int) -> tuple[str, dict[str, int], bool]:
        """``Redactor.redact_bounded``, from the record's memory when the text was redacted whole already
        and fits (that is what ``redact_bounded`` returns then)."""
        known = self.tree.known(text) if len(text) <= limit else None
        if known is not None and len(known[0]) <= limit:
            return known[0], dict(known[1]), False
        return self.redactor.redact_bounded(text, limit)

    def messages(self, value: Any, counts: dict[str, int], notes: list[str]) -> tuple[Any, bool]:
        """Structured messages, every string cut so their total stays within the content budget
        (cut again after redaction, so a placeholder is never split); (None, False) when withheld."""
        limit = self.limit
        try:
            # Copies are made only to cut: most messages fit, and then they are walked once to count.
            total = string_chars(value)
            pre = value if total <= limit + REDACT_MARGIN else cut_strings(value, limit + REDACT_MARGIN)[0]
            red, summary = self.tree.redact(pre)
            out, cut = (red, False) if string_chars(red) <= limit else cut_strings(red, limit)
        except Exception:
            self._failed(counts)
            if "messages_withheld" not in notes:
                notes.append("messages_withheld")
            return None, False
        add_counts(counts, summary)
        return out, cut or total > limit

    def field(self, value: str, bound: int, counts: dict[str, int]) -> str:
        """One short field, cut to ``bound`` after redaction."""
        cached = self._short.get(value) if len(value) <= _SHORT else None
        if cached is None:
            try:
                out, summary, _ = self.redactor.redact_bounded(value, bound)
            except Exception:
                self.failures += 1
                return FIELD_WITHHELD
            cached = (out, summary)
            if len(value) <= _SHORT:
                if len(self._short) >= _SHORT_CACHE:
                    self._short.clear()
                self._short[value] = cached
        add_counts(counts, cached[1])
        return cached[0]

    def text(self, text: str, limit: int, counts: dict[str, int]) -> str:
        """Free text (an error message), cut to ``limit`` after redaction."""
        try:
            out, summary, _ = self.redactor.redact_bounded(text, limit)
        except Exception:
            self.failures += 1
            return FIELD_WITHHELD
        add_counts(counts, summary)
        return out

    def url(self, url: str, counts: dict[str, int]) -> str:
        """The URL with credentials and secret parameters masked. Raises on failure: a record
        cannot keep its URL unredacted, so the caller falls back."""
        out, summary = self.redactor.redact_url(url)
        add_counts(counts, summary)
        return cut_kept(out, URL_CHARS)

    def final_pass(self, doc: dict[str, Any], counts: dict[str, int]) -> None:
        """Every string field that is not safe by construction (``SAFE``) and was not redacted where
        it was built goes through the redactor now, and is cut to its bound."""
        for key, value in doc.items():
            if key in _PASSED:
                continue
            bound = REDACTED.get(key, DEFAULT_BOUND)
            if isinstance(value, str):
                doc[key] = self.field(value, bound, counts)
            elif isinstance(value, list):
                doc[key] = [self.field(v, bound, counts) if isinstance(v, str) else v for v in value]


def redact_messages(fields: dict[str, Any], redaction: RecordRedaction, capture: bool, switches: Switches,
                    notes: list[str]) -> tuple[dict[str, int], dict[str, Any] | None]:
    """Redact the structured messages in ``fields``: kept there when the record captures content,
    and returned for the span when OpenTelemetry's switch asks for them. Returns (their redaction
    counts, the span's content). The counts repeat the bodies' values: the caller merges them, it
    does not add them."""
    want_span = switches.content_on_span or switches.content_on_event
    span_content: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for name in MESSAGE_FIELDS:
        value = fields.pop(name, None)
        if value is None or not (capture or want_span):
            continue
        value, cut = redaction.messages(value, counts, notes)
        if value is None:
            continue
        span_content[MESSAGE_ALIASES[name]] = value
        if capture:
            fields[name] = value
            if cut:
                fields["content_truncated"] = True
    return counts, (span_content if want_span and span_content else None)
