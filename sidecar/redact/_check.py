"""Checking rules before use: user rules are held to what the built-ins are tested for."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

from ._errors import RedactionError
from ._rules import Rule
from ._validators import VALIDATORS

__all__ = ["MAX_REPEAT", "check_rule", "compile_rule", "parse_rules"]

# The third-party `regex` module: about twice as fast as `re` on these rules, and it gives match
# time-outs (user rules) and backward matching (the number windows).
_rx: Any = importlib.import_module("regex")

#: Largest repeat count accepted in a user pattern (``{n,m}`` with m above this is rejected).
MAX_REPEAT = 16_384

_RULE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _unbounded(pattern: str) -> str | None:
    """Describe the first unbounded (or oversized) quantifier of ``pattern``; ``None`` if all bounded."""
    i, n = 0, len(pattern)
    after_quantifier = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            after_quantifier = False
            continue
        if c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            after_quantifier = False
            continue
        if c == "(" and pattern.startswith("(?#", i):
            end = pattern.find(")", i)
            i = n if end < 0 else end + 1
            continue
        if c == "(" and pattern.startswith("(?", i):
            i += 2
            after_quantifier = False
            continue
        if c in "*+":
            if c == "+" and after_quantifier:  # possessive: a{1,5}+
                after_quantifier = False
                i += 1
                continue
            return f"unbounded quantifier '{c}' at offset {i}; use {{0,N}} / {{1,N}}"
        if c == "?":
            after_quantifier = not after_quantifier  # 'a?' is a quantifier, 'a??' / 'a{2}?' lazy
            i += 1
            continue
        if c == "{":
            m = _REPEAT.match(pattern, i)
            if m is not None and (m.group(1) or m.group(3)):
                low, comma, high = m.groups()
                if comma and not high:
                    return f"unbounded quantifier '{m.group(0)}' at offset {i}; give an upper bound"
                if int(high or low) > MAX_REPEAT:
                    return f"quantifier '{m.group(0)}' at offset {i} exceeds {MAX_REPEAT}"
                i = m.end()
                after_quantifier = True
                continue
        after_quantifier = False
        i += 1
    return None


def compile_rule(pattern: str) -> Any:
    """``pattern`` compiled as every rule is: ``regex`` module, ASCII mode."""
    return _rx.compile(pattern, _rx.ASCII)


def check_rule(rule: Rule) -> None:
    """Raise ``RedactionError`` naming the rule if it is not usable: bad name, unbounded or bad pattern."""
    if not isinstance(rule.name, str) or not _RULE_NAME.fullmatch(rule.name):
        raise RedactionError(f"redaction rule {rule.name!r}: name must be upper-case letters, digits, '_' (max 40)")
    if not isinstance(rule.pattern, str) or not rule.pattern:
        raise RedactionError(f"redaction rule {rule.name!r}: pattern must be a non-empty string")
    problem = _unbounded(rule.pattern)
    if problem is not None:
        raise RedactionError(f"redaction rule {rule.name!r}: {problem}")
    try:
        compiled = compile_rule(rule.pattern)
    except Exception as exc:  # regex.error / re.error / OverflowError
        raise RedactionError(f"redaction rule {rule.name!r}: pattern does not compile: {exc}") from None
    if compiled.search("") is not None:
        raise RedactionError(f"redaction rule {rule.name!r}: pattern matches the empty string")
    if rule.validator is not None and not callable(rule.validator):
        raise RedactionError(f"redaction rule {rule.name!r}: validator is not callable")
    if not all(isinstance(lit, str) and lit for lit in rule.literals):
        raise RedactionError(f"redaction rule {rule.name!r}: literals must be non-empty strings")


def parse_rules(spec: str) -> list[Rule]:
    """Read user rules from JSON (the ``SIDECAR_REDACT_RULES`` value).

    ``[{"name": "TICKET", "pattern": "TCK-[0-9]{6}", "validator": null, "literals": ["TCK-"]}]``;
    ``validator`` is null or one of the built-in names (see ``VALIDATORS``: ``luhn``, ``card``,
    ``cn_id``, ``cn_uscc``, ``us_ssn``, ``iban``, ``entropy``); ``literals`` is optional.
    Errors raise ``RedactionError`` naming the rule (or its position when it has no name).
    """
    if not spec or not spec.strip():
        return []
    try:
        data = json.loads(spec)
    except ValueError as exc:
        raise RedactionError(f"redaction rules: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise RedactionError("redaction rules: expected a JSON list of {name, pattern, validator} objects")
    rules: list[Rule] = []
    for index, item in enumerate(data):
        label = f"#{index}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label = repr(item["name"])
        if not isinstance(item, dict):
            raise RedactionError(f"redaction rule {label}: expected an object")
        unknown = set(item) - {"name", "pattern", "validator", "literals"}
        if unknown:
            raise RedactionError(f"redaction rule {label}: unknown field(s) {sorted(unknown)}")
        name, pattern = item.get("name"), item.get("pattern")
        if not isinstance(name, str) or not isinstance(pattern, str):
            raise RedactionError(f"redaction rule {label}: 'name' and 'pattern' must be strings")
        validator_name = item.get("validator")
        validator = None
        if validator_name is not None:
            if not isinstance(validator_name, str) or validator_name not in VALIDATORS:
                raise RedactionError(
                    f"redaction rule {label}: unknown validator {validator_name!r}; one of {sorted(VALIDATORS)} or null"
                )
            validator = VALIDATORS[validator_name]
        literals = item.get("literals", [])
        if not isinstance(literals, list) or not all(isinstance(x, str) for x in literals):
            raise RedactionError(f"redaction rule {label}: 'literals' must be a list of strings")
        rule = Rule(name=name, pattern=pattern, validator=validator, literals=tuple(literals))
        check_rule(rule)
        rules.append(rule)
    return rules
