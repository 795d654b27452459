"""Normalised views of a text: the same text as the rules expect to see it, with a way back.

A secret can be written in a form the rules (ASCII patterns) do not read: full-width digits
(``１３８１２３４５６７８``, common in Chinese input), other compatibility forms (``①``, ``𝟏``,
no-break spaces), digits of other scripts, or percent-encoded (``someone%40example.org``).
A view rewrites those forms to the plain ones; the rules scan the view; every finding is
mapped back to the characters of the original text it came from, and those are masked.

Mapping back never shrinks a finding: a view character made from several original characters
(``%40`` -> ``@``, ``⑩`` -> ``10``) maps to all of them.
"""

from __future__ import annotations

import re
import string
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator
from typing import NamedTuple

__all__ = ["View", "compat_fold", "views"]

SpanMap = Callable[[int, int], tuple[int, int]]

_lock = threading.Lock()
_tables: _Tables | None = None
# What a view is made for: a compatibility form that folds to a letter, a digit or a character the
# rules anchor on. Full-width punctuation alone (，。：（）, in almost every Chinese text) makes none.
_MATTERS = frozenset(string.ascii_letters + string.digits + "@%+=")

# Blocks holding characters whose compatibility form is ASCII, or decimal digits of other scripts.
_RANGES = ((0x00A0, 0x33FF), (0xA620, 0xABFF), (0xFB00, 0xFFEF), (0x104A0, 0x104AF), (0x1D400, 0x1D7FF),
           (0x1F100, 0x1F1FF), (0x1FBF0, 0x1FBF9))


class _Tables(NamedTuple):
    one: dict[int, str]  # character -> its one-character ASCII form
    multi: dict[int, str]  # character -> its longer ASCII form (⑩ -> 10)
    matters: _CharClass  # any character whose form holds a letter, a digit or @ % + =
    every: _CharClass  # any character of either table


def _build() -> _Tables:
    one: dict[int, str] = {}
    multi: dict[int, str] = {}
    for lo, hi in _RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            digit = unicodedata.decimal(ch, None)
            if digit is not None:
                one[cp] = str(digit)
                continue
            if not unicodedata.decomposition(ch).startswith("<"):
                continue  # no compatibility mapping
            form = unicodedata.normalize("NFKC", ch)
            if form == ch or not form.isascii() or not form:
                continue
            (one if len(form) == 1 else multi)[cp] = form
    forms = {**one, **multi}
    matters = [cp for cp, form in forms.items() if any(c in _MATTERS for c in form)]
    return _Tables(one, multi, _char_class(matters), _char_class(list(forms)))


class _CharClass:
    """``search(text)`` for any of a set of characters, fast: the standard engine tests a class of
    BMP characters with a bitmap, but one holding a character past U+FFFF against each range in
    turn (~20x slower), so the astral characters get their own class, tried only when the text
    has an astral character at all."""

    __slots__ = ("_astral", "_bmp", "pattern")

    def __init__(self, code_points: list[int]) -> None:
        self._bmp = _ranges([cp for cp in code_points if cp <= 0xFFFF])
        self._astral = _ranges([cp for cp in code_points if cp > 0xFFFF])
        self.pattern = _ranges(code_points)  # all of them, for finditer (the slow way)

    def search(self, text: str) -> re.Match[str] | None:
        found = self._bmp.search(text)
        if found is None and _ASTRAL.search(text) is not None:
            found = self._astral.search(text)
        return found


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def _ranges(code_points: list[int]) -> re.Pattern[str]:
    ranges: list[list[int]] = []
    for cp in sorted(code_points):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}]" if body else "(?!)")


def _char_class(code_points: list[int]) -> _CharClass:
    return _CharClass(code_points)


def _table() -> _Tables:
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                _tables = _build()
    return _tables


def compat_fold(value: str) -> str:
    """``value`` with compatibility forms and other scripts' digits as their ASCII forms."""
    if value.isascii():
        return value
    t = _table()
    return value.translate(t.one).translate(t.multi)


class View:
    """A rewritten text and the map from its spans back to spans of the original."""

    __slots__ = ("_exact", "_o_len", "_o_start", "_v_start", "text")

    def __init__(self, text: str, segments: list[tuple[int, int, int, bool]]) -> None:
        self.text = text
        # (view start, original start, original length, exact: same length, char for char)
        self._v_start = [s[0] for s in segments]
        self._o_start = [s[1] for s in segments]
        self._o_len = [s[2] for s in segments]
        self._exact = [s[3] for s in segments]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        i = bisect_right(self._v_start, start) - 1
        s = self._o_start[i] + (start - self._v_start[i] if self._exact[i] else 0)
        j = bisect_right(self._v_start, end - 1) - 1
        e = self._o_start[j] + (end - self._v_start[j] if self._exact[j] else self._o_len[j])
        return s, max(e, s + 1)


def _rewrite(text: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], list[str]]) -> View | None:
    """A view where each match of ``pattern`` becomes the pieces ``replace`` returns, each piece
    standing for an equal share of the match's characters (the last piece takes the rest)."""
    parts: list[str] = []
    segments: list[tuple[int, int, int, bool]] = []
    pos = vpos = 0
    for m in pattern.finditer(text):
        s, e = m.span()
        if s > pos:
            parts.append(text[pos:s])
            segments.append((vpos, pos, s - pos, True))
            vpos += s - pos
        pieces = replace(m)
        share = max((e - s) // max(len(pieces), 1), 1)
        o = s
        for n, piece in enumerate(pieces):
            width = (e - o) if n == len(pieces) - 1 else share
            parts.append(piece)
            segments.append((vpos, o, width, len(piece) == width))
            vpos += len(piece)
            o += width
        pos = e
    if not segments:
        return None
    if pos < len(text):
        parts.append(text[pos:])
        segments.append((vpos, pos, len(text) - pos, True))
    return View("".join(parts), segments)


def _compat_view(text: str) -> View | None:
    t = _table()
    if t.matters.search(text) is None:
        return None
    if not any(ord(ch) in t.multi for ch in text):
        folded = text.translate(t.one)  # one character for one: offsets unchanged
        return View(folded, [(0, 0, len(text), True)])

    def fold(m: re.Match[str]) -> list[str]:
        code = ord(m.group())
        return [t.one.get(code, t.multi.get(code, m.group()))]

    return _rewrite(text, t.every.pattern, fold)


_DECODE_LEVELS = 4
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2}){0,4096}")  # opens with a literal: found fast
_FORM = re.compile(r"[^\s=&]{1,256}=[^\s&]{0,65536}(?:&[^\s=&]{1,256}=?[^\s&]{0,65536}){0,4096}")


def _decode_run(m: re.Match[str]) -> list[str]:
    raw = bytes.fromhex(m.group().replace("%", ""))
    try:
        chars = raw.decode("utf-8")
    except UnicodeDecodeError:
        return list(raw.decode("latin-1"))
    if len(chars) == len(raw):
        return list(chars)
    return [chars]  # multi-byte characters: the run maps back as a whole


def _percent_view(text: str) -> View | None:
    if "%" not in text:
        return None
    view = _rewrite(text, _PERCENT, _decode_run)
    if view is not None and "+" in view.text and " " not in text and _FORM.fullmatch(text):
        # a form body or query string: '+' is a space there (same length, same offsets)
        view.text = view.text.replace("+", " ")
    return view


class _Composed(View):
    """A view of a view, mapping straight back to the original."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, outer: View, inner: View) -> None:
        super().__init__(inner.text, [(0, 0, 0, True)])
        self._outer = outer
        self._inner = inner

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        return self._outer.to_original(*self._inner.to_original(start, end))


def views(text: str) -> Iterator[View]:
    """The normalised views of ``text`` that differ from it (none for plain ASCII text without '%').

    Compatibility forms are folded and percent-encoding decoded in turn until nothing changes
    (at most ``_DECODE_LEVELS`` rounds: ``%EF%BC%94`` is a full-width digit, ``%2540`` an encoded
    ``%40``); each intermediate view is scanned too."""
    current: View | None = None
    subject = text
    for _ in range(_DECODE_LEVELS):
        changed = False
        for make in (_compat_view, _percent_view):
            if make is _compat_view and subject.isascii():
                continue
            view = make(subject)
            if view is None or view.text == subject:
                continue
            current = view if current is None else _Composed(current, view)
            subject = view.text
            changed = True
            yield current
        if not changed:
            return
