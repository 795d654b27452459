"""The scan driver: which rules run on a text, over what, and their detections.

With a prefilter (see ``_prefilter``) one pass says which built-in rules can match and whether the
text can have a normalised view; only those rules run, each after its literal test. Without one
(no wheel, or a text that is not UTF-8) the pure-``regex`` path runs: rules grouped by their
literals, one substring test a group. Both give the same detections (tests compare them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ._compiled import Compiled, gate, prefilterable
from ._errors import RedactionError
from ._findings import Detection, Finding, merge
from ._prefilter import Prefilter, build, superset
from ._retry import validated
from ._rules import PREFILTER_SUPERSETS, RUNLESS_RULES
from ._views import may_have_views, view_triggers, views
from ._windows import NumericView, numeric_view

__all__ = ["USER_RULE_TIMEOUT_S", "Scanner"]

#: Time budget for a user rule on one text: this many seconds plus one second per MB.
USER_RULE_TIMEOUT_S = 1.0
#: Numeric rules scan the number windows (see _windows), not the text, only in texts longer than
#: this (in shorter ones finding the windows costs more than it saves) and when three or more of
#: them are to run.
_WINDOWS_FROM = 1024
#: Prefilter ids of the view triggers start here (rules are numbered from 0).
_VIEW_TRIGGER = 1 << 20

# (literals, caseless, ((priority, rule), ...)): rules checked together by one literal test
_Group = tuple[tuple[str, ...], bool, tuple[tuple[int, Compiled], ...]]


class Scanner:
    """Finds what ``rules`` (in priority order) detect in a text; immutable, shared by threads."""

    def __init__(self, rules: tuple[Compiled, ...], allow: frozenset[str]) -> None:
        self.rules = rules
        self._allow = allow
        # False only in tests that compare with scanning every numeric rule over the whole text.
        self.windowed = True
        self._group(rules)
        # One pass says which built-in rules can match and, with the view triggers, whether the
        # text can have a normalised view at all. None without either wheel, and set to None by
        # the tests that compare with the pure-regex path.
        filtered = [(i, PREFILTER_SUPERSETS.get(r.regex.pattern) or superset(r.regex.pattern))
                    for i, r in enumerate(rules) if prefilterable(r)]
        triggers = [(_VIEW_TRIGGER + n, p) for n, p in enumerate(view_triggers())]
        self.filter_patterns = tuple(filtered + triggers)
        self.prefilter: Prefilter | None = build(self.filter_patterns)
        self.triggers = frozenset(i for i, _ in triggers)
        self.prefiltered = frozenset(i for i, _ in filtered)
        # the rules the prefilter never rules out, on any text and on ASCII text
        self._always_any = frozenset(i for i in range(len(rules)) if i not in self.prefiltered)
        self._always_ascii = frozenset(i for i in self._always_any if not rules[i].unicode)

    def _group(self, rules: tuple[Compiled, ...]) -> None:
        """The pure-regex path's groups: rules that share their literals are checked together,
        each keeping its priority (its index in the rule list)."""
        groups: dict[tuple[bool, bool, bool, bool, tuple[str, ...]], list[tuple[int, Compiled]]] = {}
        for priority, rule in enumerate(rules):
            kind = (rule.numeric, rule.user, rule.caseless, rule.unicode, rule.literals)
            groups.setdefault(kind, []).append((priority, rule))
        text_groups: list[_Group] = []
        unicode_groups: list[_Group] = []
        for (numeric, _, caseless, unicode, literals), members in groups.items():
            if not numeric:
                (unicode_groups if unicode else text_groups).append((literals, caseless, tuple(members)))
        self._text_groups = tuple(text_groups)
        # rules that can only match non-ASCII text (internationalised e-mail addresses) come last
        self._all_text_groups = self._text_groups + tuple(unicode_groups)
        self._numeric = [i for i, rule in enumerate(rules) if rule.numeric]
        runless = {rule.pattern for rule in RUNLESS_RULES}
        self._runless = frozenset(i for i in self._numeric if rules[i].regex.pattern in runless)
        self._gate = gate(rules)

    def scan(self, text: str) -> list[Finding]:
        """The findings in ``text`` and in its normalised views, merged, in order."""
        prefilter = self.prefilter
        hits = None if prefilter is None else prefilter.candidates(text)
        has_views = may_have_views(text) if hits is None else not self.triggers.isdisjoint(hits)
        spans = self._spans(text, hits)
        if has_views:
            # Secrets written in forms the rules do not read (full-width digits, percent-encoding,
            # invisible characters inside, HTML character references, a key broken over lines):
            # scan the normalised views too and mask the original characters they came from.
            for view in views(text):
                view_hits = None if prefilter is None else prefilter.candidates(view.text)
                for s, e, priority, name in self._spans(view.text, view_hits):
                    start, end = view.to_original(s, e)
                    spans.append((start, end, priority, name))
        return merge(spans)

    def _spans(self, text: str, hits: set[int] | None) -> list[Detection]:
        return self._spans_all(text) if hits is None else self._spans_hit(text, hits)

    def _spans_hit(self, text: str, hits: set[int]) -> list[Detection]:
        """The detections of the rules the prefilter reported (``hits``) and of those it never
        rules out; each rule still checks its literals first (the prefilter's patterns are wider
        than the rules, and a substring test costs less than a scan)."""
        if hits and not self.triggers.isdisjoint(hits):
            hits = hits - self.triggers
        always = self._always_ascii if text.isascii() else self._always_any
        if not hits and not always:
            return []  # clean text: one scan, no rule can match
        rules = self.rules
        size = len(text)
        lowered = ""
        spans: list[Detection] = []
        numeric: list[int] = []
        for priority in sorted(hits.union(always) if always else hits):
            rule = rules[priority]
            if rule.numeric:
                numeric.append(priority)
                continue
            if rule.min_len > size:
                continue  # no match fits in a shorter text
            if rule.literals:
                haystack = (lowered or (lowered := text.lower())) if rule.caseless else text
                for lit in rule.literals:  # a loop: a generator in any() costs more than the test
                    if lit in haystack:
                        break
                else:
                    continue
            self._run(rule, priority, text, text, None, spans)
        if numeric:
            self._run_numeric(text, numeric, spans)
        return spans

    def _spans_all(self, text: str) -> list[Detection]:
        """The detections of every rule, without a prefilter: the pure-regex path."""
        # Most short strings in a model call (roles, ids, finish reasons) contain none of the
        # rules' trigger literals: one search settles them before the per-rule loop. (For long
        # texts the alternation is slower than the loop's substring checks.)
        lowered = ""
        if self._gate is not None and len(text) <= 256 and self._gate.search(lowered := text.lower()) is None:
            return []
        spans: list[Detection] = []
        size = len(text)
        for literals, caseless, members in self._text_groups if text.isascii() else self._all_text_groups:
            haystack: str | None = text
            if caseless:
                # names in any case: looked up in the lower-cased text (made once a text: with fifteen
                # name rules, lower-casing plus a substring test each costs less than scanning with each)
                haystack = lowered or (lowered := text.lower())
            elif size > 256 and len(literals) > 2 and not members[0][1].user:
                # A substring test reads the whole text at about half the cost of scanning it for
                # a built-in rule (measured: the regex module finds their leading words fast), so
                # on a long text a built-in group with more than two literals is cheaper to scan.
                haystack = None
            if literals and haystack is not None:
                for lit in literals:
                    if lit in haystack:
                        break
                else:
                    continue
            for priority, rule in members:
                if rule.min_len <= size:  # no match fits in a shorter text
                    self._run(rule, priority, text, text, None, spans)
        if self._numeric:
            # every numeric rule is to run here: the windows pay for themselves even in short texts
            self._run_numeric(text, self._numeric, spans, windows_from=0)
        return spans

    def _run_numeric(
        self, text: str, todo: list[int], spans: list[Detection], windows_from: int = _WINDOWS_FROM
    ) -> None:
        """Run the numeric rules ``todo`` over the number windows of a text longer than
        ``windows_from`` (see _windows), or over the whole text when it is shorter or only one or
        two of them are left to run (then scanning costs less than finding the windows)."""
        subject, to_text, room = text, None, len(text)
        if self.windowed and len(todo) > 2 and len(text) > windows_from:
            view = numeric_view(text)
            if view is None:
                subject, room = "", 0  # no run: only the rules that need none can match
            elif isinstance(view, NumericView):
                subject, to_text, room = view.text, view.to_text, view.longest
        rules = self.rules
        for priority in todo:
            rule = rules[priority]
            if priority in self._runless and subject is not text:
                self._run(rule, priority, text, text, None, spans)  # not gated by the windows
                continue
            if rule.min_len > room:
                continue  # no match fits in the longest window
            if rule.literals:
                for lit in rule.literals:
                    if lit in subject:
                        break
                else:
                    continue
            self._run(rule, priority, text, subject, to_text, spans)

    def _run(
        self,
        rule: Compiled,
        priority: int,
        text: str,
        subject: str,
        to_text: Callable[[int], int] | None,
        spans: list[Detection],
    ) -> None:
        """Scan ``subject`` (the text, or its number windows mapped back by ``to_text``) for one rule."""
        allow, validator, group, regex = self._allow, rule.validator, rule.group, rule.regex
        if rule.user:
            budget = USER_RULE_TIMEOUT_S + len(text) / 1_000_000
            matches: Iterable[Any]
            if validator is not None:  # a rejected candidate is looked inside (see _retry)
                matches = validated(lambda pos: regex.search(text, pos, timeout=budget, concurrent=False),
                                    text, validator, group)
            else:
                matches = regex.finditer(text, timeout=budget, concurrent=False)
        else:
            # concurrent=False: the regex module otherwise drops and retakes the GIL around every
            # match; on the spool writer's thread each retake waits for the application's thread
            # (up to the 5 ms switch interval), which made a 17 us scan cost ~800 us there.
            first = regex.search(subject, concurrent=False)
            if first is None:  # the usual case, and a search costs less than starting an iterator
                return
            if validator is not None:  # a rejected candidate is looked inside (see _retry)
                matches = validated(lambda pos: regex.search(subject, pos, concurrent=False),
                                    subject, validator, group, first)
            else:
                rest = regex.finditer(subject, max(first.end(), first.start() + 1), concurrent=False)
                matches = itertools.chain((first,), rest)
        try:
            for m in matches:
                start, end = m.span() if group is None else m.span(group)
                if start < 0:
                    start, end = m.span()
                if start >= end:
                    continue
                if to_text is not None:
                    shift = to_text(start) - start
                    start, end = start + shift, end + shift
                if allow and text[start:end] in allow:
                    continue
                spans.append((start, end, priority, rule.name))
        except TimeoutError:
            raise RedactionError(f"redaction rule {rule.name!r} ran past its time budget") from None
