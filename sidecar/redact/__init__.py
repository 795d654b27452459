"""Redaction engine: secrets and personal data become keyed ``<TYPE:hmac8>`` placeholders.

>>> r = Redactor(b"k" * 32)
>>> r.redact_text("mail alice@example.com")[1]
{'EMAIL': 1}

See ``docs/redaction.md`` for the rules, placeholders, configuration and the fail-closed contract.
"""

from __future__ import annotations

from ._bound import cut_kept
from ._engine import REGEX_ENGINE, Finding, Redactor, Summary, check_rule, parse_rules
from ._errors import RedactionError
from ._key import AppKeys, app_keys, derive, load_or_create_key, read_key_ring
from ._rules import BUILTIN_RULES, IP_RULES, Rule
from ._validators import VALIDATORS

__all__ = [
    "BUILTIN_RULES",
    "IP_RULES",
    "REGEX_ENGINE",
    "VALIDATORS",
    "AppKeys",
    "Finding",
    "RedactionError",
    "Redactor",
    "Rule",
    "Summary",
    "app_keys",
    "check_rule",
    "cut_kept",
    "derive",
    "load_or_create_key",
    "parse_rules",
    "read_key_ring",
]
