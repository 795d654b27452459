"""Redact a JSON tree with each long string scanned once per record.

The request's messages repeat the request body's strings, and the answer's messages repeat the
answer's: without this the same prompt is scanned twice. ``TreeRedaction`` walks a tree through
``Redactor.redact_json`` with each long string swapped for a short stand-in, and puts back the
string's own redaction (``redact_json`` of the string alone: the very walk it gets inside the tree),
remembered for the record. A stand-in that does not come back as it went in was masked by its key
name (``password``, ...): then the tree is redacted as it is, so the mask is made of the real value.
"""

from __future__ import annotations

import re
from typing import Any

from sidecar.errors import SidecarError
from sidecar.redact import Redactor

_LONG = 128  # shorter strings are remembered by the redactor itself, across records
# Stand-ins: NUL, one private-use character, NUL. No whitespace, digit or letter: no rule matches them.
_FIRST = 0xE000
_STAND_INS = 6400
_SPACE = re.compile(r"\s")
_JSON_OPEN = ("{", "[")


class TreeRedaction:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._memo: dict[str, tuple[Any, dict[str, int]]] = {}

    def forget(self) -> None:
        """Start a new record: what was remembered stays with the record it came from."""
        self._memo.clear()

    def redact(self, value: Any) -> tuple[Any, dict[str, int]]:
        """What ``Redactor.redact_json(value)`` returns (counts in another order at most)."""
        originals: list[str] = []
        try:
            swapped = _swap(value, originals)
        except _Collision:
            return self.redactor.redact_json(value)
        if not originals:
            return self.redactor.redact_json(value)
        red, summary = self.redactor.redact_json(swapped)
        found = [0]
        out = _restore(red, originals, self._string, summary, found)
        if found[0] != len(originals):  # a stand-in was masked: redo with the real values
            return self.redactor.redact_json(value)
        return out, summary

    def known(self, text: str) -> tuple[str, dict[str, int]] | None:
        """The redaction of ``text`` as ``Redactor.redact_text`` gives it, when this record has made it
        already (a stream's assembled answer is also its output message's text); else None."""
        if text[:1] in _JSON_OPEN or text[:1].isspace():
            return None  # a tree walk reads a string that holds JSON as JSON: not the same redaction
        found = self._memo.get(text)
        return (found[0], found[1]) if found is not None and isinstance(found[0], str) else None

    def _string(self, text: str) -> tuple[Any, dict[str, int]]:
        known = self._memo.get(text)
        if known is None:
            known = self._memo[text] = self.redactor.redact_json(text)
        return known


class _Collision(SidecarError):
    """The tree holds a string that looks like a stand-in: it is redacted as it is."""


def _swap(value: Any, originals: list[str]) -> Any:
    if isinstance(value, str):
        if len(value) > _LONG and len(originals) < _STAND_INS and _SPACE.search(value):
            # With whitespace, a value is never masked as token-like under a weak key name, so the
            # stand-in (which does not look like a token either) takes the same path as the value.
            originals.append(value)
            return f"\x00{chr(_FIRST + len(originals) - 1)}\x00"
        if len(value) == 3 and value[0] == "\x00":
            raise _Collision
        return value
    if isinstance(value, dict):
        return {k: _swap(v, originals) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, originals) for v in value]
    return value


def _restore(value: Any, originals: list[str], redact: Any, summary: dict[str, int], found: list[int]) -> Any:
    if isinstance(value, str):
        if len(value) == 3 and value[0] == "\x00" and value[2] == "\x00":
            index = ord(value[1]) - _FIRST
            if 0 <= index < len(originals):
                found[0] += 1
                out, counts = redact(originals[index])
                for k, n in counts.items():
                    summary[k] = summary.get(k, 0) + n
                return out
        return value
    if isinstance(value, dict):
        return {k: _restore(v, originals, redact, summary, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, originals, redact, summary, found) for v in value]
    return value
