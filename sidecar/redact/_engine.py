"""The redaction engine: find secrets and personal data, replace them with keyed placeholders.

One job a module: ``_check`` (user rules), ``_compiled`` (rules made ready), ``_scan`` (which rules
run where, the prefilter, the views), ``_findings`` (merging detections), ``_placeholders`` (keyed
tags), ``_names`` (secrets by name), ``_walk`` (JSON), ``_http`` (headers and URLs), ``_bound``
(redact first, cut second). This module puts them together behind ``Redactor``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._bound import MARGIN, PLACEHOLDER, cut_kept, window_end
from ._check import check_rule, parse_rules
from ._compiled import prepare
from ._errors import RedactionError, fail_closed
from ._findings import Finding, Summary, count
from ._http import HttpRedaction
from ._placeholders import TAG_CACHE, Keyed
from ._rules import BUILTIN_RULES, IP_RULES, Rule
from ._scan import Scanner
from ._walk import JsonRedaction

__all__ = ["REGEX_ENGINE", "Finding", "Redactor", "Summary", "check_rule", "parse_rules"]

#: The pattern engine of the rules (the third-party ``regex`` module).
REGEX_ENGINE = "regex"
_SHORT = 128  # strings up to this long have their redacted form remembered


class Redactor(Keyed, JsonRedaction, HttpRedaction):
    """Replace secrets and personal data with ``<TYPE:hmac8>`` placeholders.

    ``hmac8`` is the first 8 hex characters of HMAC-SHA256(key, value): the same value under the
    same key gives the same tag in every process; another key gives unrelated tags.  Numbers are
    hashed in a canonical form (digits only for cards, SSNs and phones, lower-case e-mail) so one
    value written two ways correlates.

    Fail-closed contract: every ``redact_*`` method either returns a fully redacted value or
    raises ``RedactionError``; it never returns (part of) its input unredacted because something
    went wrong inside.  The error message never contains the input.  The caller stores a marker
    in place of the content and counts the failure.

    Instances are immutable after construction and safe to share between threads.
    """

    def __init__(
        self,
        key: bytes,
        *,
        extra_rules: Sequence[Rule] = (),
        allow: Iterable[str] = (),
        detect_ip: bool = False,
    ) -> None:
        super().__init__(key)
        compiled = [prepare(rule, user=False) for rule in (*BUILTIN_RULES, *(IP_RULES if detect_ip else ()))]
        for rule in extra_rules:
            if not isinstance(rule, Rule):
                raise RedactionError(f"redaction rule {rule!r}: expected a sidecar.redact.Rule")
            check_rule(rule)
            compiled.append(prepare(rule, user=True))
        self._allow: frozenset[str] = frozenset(v for v in allow if isinstance(v, str) and v)
        self._scanner = Scanner(tuple(compiled), self._allow)
        self._short: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._names: dict[str, int] = {}
        self.detect_ip = detect_ip

    def scan(self, text: str) -> list[Finding]:
        """The spans ``redact_text`` would replace, in order, without replacing them (no values)."""
        if not isinstance(text, str):
            raise RedactionError(f"cannot redact a {type(text).__name__}; expected str")
        with fail_closed:
            return self._scanner.scan(text)

    def redact_text(self, text: str) -> tuple[str, Summary]:
        """Return ``(redacted text, counts by type)``.

        Raises ``RedactionError`` (fail closed) if the text cannot be redacted: a non-str input,
        a user rule that ran past its time budget, or any internal error.  Never returns the
        input unredacted in those cases.
        """
        if not isinstance(text, str):
            raise RedactionError(f"cannot redact a {type(text).__name__}; expected str")
        summary: Summary = {}
        with fail_closed:
            return self._redact(text, summary), summary

    def redact_bounded(self, text: str, limit: int) -> tuple[str, Summary, bool]:
        """Return ``(redacted text of at most limit characters, counts, cut)``: redact first, cut second.

        The cut falls where it splits no finding (and no token the scan window ended inside), so
        no part of a secret and no part of a placeholder is kept. Counts cover what is kept.
        Raises ``RedactionError`` (fail closed) like ``redact_text``.
        """
        if not isinstance(text, str):
            raise RedactionError(f"cannot redact a {type(text).__name__}; expected str")
        summary: Summary = {}
        with fail_closed:
            if len(text) <= limit:
                out = self._redact(text, summary)
                if len(out) <= limit:
                    return out, summary, False
                summary.clear()
            return self._redact_start(text, limit, summary), summary, True

    def _redact_start(self, text: str, limit: int, summary: Summary) -> str:
        """The redacted start of ``text``, at most ``limit`` characters, cut where it splits no
        finding and no placeholder (only the first ``limit + MARGIN`` characters are scanned)."""
        window = text[: limit + MARGIN]
        findings = self._scanner.scan(window)
        cut = window_end(text, len(window), min(limit, len(window)))
        for f in findings:
            if f.start < cut < f.end:
                cut = f.start
                break
        parts: list[str] = []
        masked: list[tuple[int, str]] = []  # (end in the output, type) of each placeholder
        pos = length = 0
        for start, end, type_name in findings:
            if end > cut:
                break
            tag = self.placeholder(type_name, window[start:end])
            parts += (window[pos:start], tag)
            length += start - pos + len(tag)
            masked.append((length, type_name))
            pos = end
        parts.append(window[pos:cut])
        out = cut_kept("".join(parts), limit)
        count(summary, [type_name for end, type_name in masked if end <= len(out)])
        return out

    def _redact(self, text: str, summary: Summary) -> str:
        short = len(text) <= _SHORT
        if short:
            # Short strings come back call after call (keys, roles, model names, ids, the user's
            # e-mail): their redacted form is remembered, like the tags are.
            known = self._short.get(text)
            if known is not None:
                count(summary, known[1])
                return known[0]
        findings = self._scanner.scan(text)
        if not findings:
            out = text
        else:
            parts: list[str] = []
            pos = 0
            for start, end, type_name in findings:
                parts.append(text[pos:start])
                parts.append(self.placeholder(type_name, text[start:end]))
                pos = end
            parts.append(text[pos:])
            out = "".join(parts)
        types = tuple(f.type for f in findings)
        count(summary, types)
        if short:
            if len(self._short) >= TAG_CACHE:
                self._short.clear()
            self._short[text] = (out, types)
        return out

    def _mask_value(self, value: str, default_type: str, summary: Summary) -> str:
        """Mask all of ``value``; typed by content when one built-in rule covers it exactly."""
        if not value or value in self._allow:
            return value
        stripped = value.strip()
        if PLACEHOLDER.fullmatch(stripped):
            return value  # already one of ours (a value redacted twice keeps its type and tag)
        type_name = default_type
        findings = self._scanner.scan(stripped)
        if len(findings) == 1 and findings[0].start == 0 and findings[0].end == len(stripped):
            type_name = findings[0].type
        summary[type_name] = summary.get(type_name, 0) + 1
        return self.placeholder(type_name, stripped)
