"""Rules made ready to scan: compiled once, with what the scan driver needs to know about each."""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ._check import compile_rule
from ._rules import CASELESS_RULES, NUMERIC_RULES, UNICODE_RULES, Rule

__all__ = ["Compiled", "gate", "prefilterable", "prepare"]


class Compiled(NamedTuple):
    """One rule, compiled: its pattern, validator, literals and how the scan driver treats it."""

    name: str
    regex: Any
    validator: Callable[[str], bool] | None
    literals: tuple[str, ...]
    group: str | None
    user: bool
    numeric: bool
    caseless: bool
    min_len: int
    unicode: bool


_BUILTIN_CACHE: dict[str, Any] = {}


def _compile_builtin(pattern: str) -> Any:
    compiled = _BUILTIN_CACHE.get(pattern)
    if compiled is None:
        compiled = _BUILTIN_CACHE[pattern] = compile_rule(pattern)
    return compiled


def gate(rules: Sequence[Compiled]) -> Any:
    """One pattern that matches, in the lower-cased text, wherever any rule could start to matter:
    every rule's literals (lower-cased: one plain alternation is ~2.5x faster than one holding
    case-insensitive groups, and a wider gate only lets more texts through to the rules), and a
    digit for the numeric rules. None (no gate) when some rule has no literal at all."""
    parts: set[str] = set()
    for rule in rules:
        if rule.numeric:
            parts.add("[0-9]")
        elif rule.literals:
            parts.update(re.escape(lit.lower()) for lit in rule.literals)
        else:
            return None
    return re.compile("|".join(sorted(parts, key=len, reverse=True)))


def prepare(rule: Rule, *, user: bool) -> Compiled:
    """``rule`` compiled (built-in patterns once a process), with its kind and shortest match."""
    compiled = compile_rule(rule.pattern) if user else _compile_builtin(rule.pattern)
    group = "secret" if "secret" in compiled.groupindex else None
    numeric = not user and rule in NUMERIC_RULES
    caseless = not user and rule in CASELESS_RULES
    min_len = _min_width(rule.pattern)
    unicode = not user and rule in UNICODE_RULES
    return Compiled(
        rule.name, compiled, rule.validator, tuple(rule.literals), group, user, numeric, caseless, min_len, unicode
    )


def prefilterable(rule: Compiled) -> bool:
    """Built-in ASCII patterns go to the prefilter; user rules and patterns naming non-ASCII
    characters (escapes the UTF-8 automaton would read differently) always run."""
    pattern = rule.regex.pattern
    return not rule.user and not rule.unicode and pattern.isascii() and not re.search(r"\\[xuUNpP]", pattern)


@functools.lru_cache(maxsize=1024)  # ~50 us a pattern, and each instrument() builds a Redactor
def _min_width(pattern: str) -> int:
    """The fewest characters a match of ``pattern`` spans (0 when the standard parser cannot tell).

    A rule is skipped on a text (or, for numeric rules, on number windows) shorter than that: on
    short texts the per-call cost of a scan is most of the work.  Uses the standard library's
    pattern parser, which is not public API: if it moves, rules are simply never skipped.
    """
    try:
        parser = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
        return max(0, int(parser.parse(pattern, re.ASCII).getwidth()[0]))
    except Exception:  # a pattern only the regex module reads (user rules), or a moved parser
        return 0

