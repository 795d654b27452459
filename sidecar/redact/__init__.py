"""Redaction engine: secrets and personal data become keyed ``<TYPE:hmac8>`` placeholders.

>>> r = Redactor(b"k" * 32)
>>> r.redact_text("mail alice@example.com")[1]
{'EMAIL': 1}

See ``docs/redaction.md`` for the rules, placeholders, configuration and the fail-closed contract.
"""

from __future__ import annotations

from ._engine import REGEX_ENGINE, Finding, Redactor, Summary, check_rule, parse_rules
from ._errors import RedactionError
from ._key import load_or_create_key
from ._rules import BUILTIN_RULES, IP_RULES, VALIDATORS, Rule

__all__ = [
    "BUILTIN_RULES",
    "IP_RULES",
    "REGEX_ENGINE",
    "VALIDATORS",
    "Finding",
    "RedactionError",
    "Redactor",
    "Rule",
    "Summary",
    "check_rule",
    "load_or_create_key",
    "parse_rules",
]
