"""Validated rules: a candidate the validator rejects may hide a secret that starts inside it.

A pattern takes the longest match it can from the first place it can start.  A secret written
right after another number or code (``paid in 2024 4111 1111 1111 1111``, ``ref AB12 DE89 3704
…``) is then swallowed by a candidate that opens with that other number (``2024 4111 1111 1111``,
``AB12 DE89 3704 …``); the validator rejects it, and a plain scan goes on after its end, so the
secret is never tried.  Here the scan goes on from the character after the rejected candidate's
start instead, so every place the pattern can start inside it is tried (the patterns' own
look-behinds keep a built-in rule from starting inside a word or a number).

Bounded: only candidates up to ``RETRY_SPAN`` characters are retried (longer than any validated
numeric secret, a spaced IBAN being the longest at 42), so the work stays linear in the text,
at most ``RETRY_SPAN`` tries a character.  A secret that *ends* inside a longer candidate is the
validator's to find (see ``card_ok`` and ``iban_in_groups_ok`` in ``_rules``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["RETRY_SPAN", "validated"]

#: Longest rejected candidate the scan looks inside (characters).
RETRY_SPAN = 64


def validated(
    search: Callable[[int], Any], subject: str, validator: Callable[[str], bool], group: str | None, first: Any = None
) -> Iterator[Any]:
    """The matches that ``validator`` accepts (on the ``group`` span when the rule names one),
    found with ``search(pos)`` (the rule's pattern searched in ``subject`` from ``pos``), from
    ``first`` (the first match, when the caller has it) on; empty matches are passed through for
    the caller to skip."""
    m = search(0) if first is None else first
    while m is not None:
        s, e = m.span()
        start, end = m.span() if group is None else m.span(group)
        if start < 0:
            start, end = s, e
        if start >= end or validator(subject[start:end]):
            yield m
            pos = e if e > s else s + 1
        elif e - s <= RETRY_SPAN:
            pos = s + 1  # the secret may start anywhere inside the rejected candidate
        else:
            pos = e
        m = search(pos)
