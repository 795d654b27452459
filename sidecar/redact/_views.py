"""Normalised views of a text: the same text as the rules expect to see it, with a way back.

A secret can be written in a form the rules (ASCII patterns) do not read: full-width digits
(``１３８１２３４５６７８``, common in Chinese input), other compatibility forms (``①``, ``𝟏``,
no-break spaces), digits of other scripts, or percent-encoded (``someone%40example.org``).
A view rewrites those forms to the plain ones; the rules scan the view; every finding is
mapped back to the characters of the original text it came from, and those are masked.

Other views delete what hides a secret from a pattern: invisible characters inside it
(``alice\u200b@example.org``, a soft hyphen between card digit groups), HTML character references
(``alice&#64;example.org``), a line break inside a key of a known prefix (``sk-proj-Ab3…\nQx…``).

Mapping back never shrinks a finding: a view character made from several original characters
(``%40`` -> ``@``, ``⑩`` -> ``10``) maps to all of them, and a finding across deleted characters
covers them too.
"""

from __future__ import annotations

import html
import importlib
import re
import string
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

__all__ = ["View", "compat_fold", "may_have_views", "views"]

_rx: Any = importlib.import_module("regex")

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
    unusual: _CharClass  # what a compatibility or an invisible-character view is made for


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
    spaces = [cp for cp, form in forms.items() if form == " "]
    unusual = sorted({*matters, *spaces, *_IGNORABLE_CODE_POINTS})
    return _Tables(one, multi, _char_class(matters), _char_class(list(forms)), _char_class(unusual))


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
    """``value`` with compatibility forms and other scripts' digits as their ASCII forms, and
    without invisible characters (so a value hides nothing and hashes like its plain form)."""
    if value.isascii():
        return value
    t = _table()
    return _IGNORABLE.sub("", value).translate(t.one).translate(t.multi)


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
    if t.matters.search(text) is None and _DIGIT_SPACE.search(text) is None:
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


# Invisible characters a secret can carry inside it and still look whole: the format characters
# (Unicode category Cf: zero-width space and joiners, word joiner, BOM, soft hyphen, bidi marks,
# invisible operators) and the other default-ignorable code points (variation selectors, the
# combining grapheme joiner, Hangul fillers, Mongolian free variation selectors, tags).
_IGNORABLE_RANGES = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
                     (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                     (0xE0000, 0xE0FFF))


def _ignorable_code_points() -> list[int]:
    code_points = {cp for cp in range(0x10000) if unicodedata.category(chr(cp)) == "Cf"}
    code_points.update((0x110BD, 0x110CD, *range(0x13430, 0x13440)))
    for lo, hi in _IGNORABLE_RANGES:
        code_points.update(range(lo, hi + 1))
    return sorted(code_points)


_IGNORABLE_CODE_POINTS = _ignorable_code_points()
_IGNORABLE_CLASS = _CharClass(_IGNORABLE_CODE_POINTS)
_IGNORABLE = re.compile(_IGNORABLE_CLASS.pattern.pattern + "+")
# Characters a secret is written with, on both sides of an invisible run: only such a run can
# hide one (a variation selector after an emoji, or a ZWNJ inside a Persian word, makes no view).
_SECRETISH = r" 0-9A-Za-z@._+/=%:\-\uFF01-\uFF5E"
_HIDES = re.compile(rf"[{_SECRETISH}]{_IGNORABLE.pattern}[{_SECRETISH}]")
# Spaces that fold to ' ' (no-break, thin, ideographic …) between digits: card and SSN groups.
# (Opens with the space: a class of a few characters is found fast, one of all digits is not.)
_DIGIT_SPACE = re.compile(r"[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000](?<=\d.)(?=\d)", re.DOTALL)


def _ignorable_view(text: str) -> View | None:
    if _IGNORABLE_CLASS.search(text) is None or _HIDES.search(text) is None:
        return None
    return _rewrite(text, _IGNORABLE, lambda m: [])


# Character references: HTML, numeric always (';' optional, as browsers read them) or named with
# ';'; and the '\uXXXX' / '\xXX' escapes of JSON, JavaScript and Python source left in a text.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9A-Fa-f]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)"
                     r"|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}")


def _unescape(ref: str) -> str:
    if ref[0] == "&":
        return html.unescape(ref)
    char = chr(int(ref[2:], 16))
    return "\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char


def _html_view(text: str) -> View | None:
    if "&" not in text and "\\" not in text:
        return None
    found = False

    def unescape(m: re.Match[str]) -> list[str]:
        nonlocal found
        plain = _unescape(m.group())
        found = found or plain != m.group()
        return [plain]

    view = _rewrite(text, _ENTITY, unescape)
    return view if found else None


# A key of a known prefix broken over lines (a wrapped terminal, a mail body): the line break is
# joined when the run of key characters before it holds a key prefix (or the start of one: ``AKI``
# / ``AIOSF…``) and either the key before the break is too short to be whole, or the run after it
# looks random (a digit, or a capital after a small letter). So a whole key ending its line is not
# glued to the next line's word (``sk-…\nthanks``, ``…\nNEXT_KEY=``). A random-looking run that
# fills its line is joined to the next line too (a key wrapped twice).
_KEY_PREFIXES = {  # prefix -> the fewest characters of a whole key
    "sk-": 23, "sk_live_": 24, "rk_live_": 24, "sk_test_": 24, "rk_test_": 24, "whsec_": 30, "AKIA": 20, "ASIA": 20,
    "ABIA": 20, "ACCA": 20, "AIza": 39, "ghp_": 40, "gho_": 40, "ghu_": 40, "ghs_": 40, "ghr_": 40, "github_pat_": 33,
    "xoxa-": 15, "xoxb-": 15, "xoxp-": 15, "xoxo-": 15, "xoxs-": 15, "xoxr-": 15, "xoxe-": 15, "xapp-": 17, "hf_": 33,
    "eyJ": 12,
}  # fmt: skip
# a line break before a run of key characters: opens with the break, so it is found fast
_TOKEN_BREAK = re.compile(r"\n(?=[A-Za-z0-9_.-])")
_KEY_CHARS = "[A-Za-z0-9_.-]"
_RUN_BEFORE: Any = _rx.compile(_KEY_CHARS + "{1,400}", _rx.ASCII | _rx.REVERSE)  # the run ending where searched
_RUN_AFTER = re.compile(_KEY_CHARS + "{1,400}")
_RANDOM = re.compile(r"[0-9]|[a-z][A-Z]")
_MAX_BREAKS = 64


def _cut_key(before: str, after: str) -> bool | None:
    """None: no key prefix starts in ``before``; else whether the key there is cut short."""
    joined = before + after[:10]
    if not ("-" in joined or "_" in joined or "A" in joined or "J" in joined):
        return None  # every prefix holds one of those: a plain word is settled at once
    for prefix, shortest in _KEY_PREFIXES.items():
        at = joined.find(prefix)
        if 0 <= at < len(before):
            key = before[at:]
            return len(key) < shortest or (prefix == "eyJ" and key.count(".") < 2)
    return None


def _wrapped_key_view(text: str) -> View | None:
    if "\n" not in text:
        return None
    breaks: list[tuple[int, int]] = []
    last_after = (-1, -1)  # the run after the last joined break
    for m in _TOKEN_BREAK.finditer(text):
        nl = m.start()
        cut = nl - 1 if nl and text[nl - 1] == "\r" else nl
        before = _RUN_BEFORE.match(text, max(0, cut - 400), cut)
        if before is None:
            continue
        after = _RUN_AFTER.match(text, nl + 1)
        assert after is not None  # the look-ahead saw a key character
        random = _RANDOM.search(after.group()) is not None
        if before.span() == last_after:
            join = random  # the key's middle line
        else:
            short = _cut_key(before.group(), after.group())
            join = short is not None and (short or random)
        if join:
            breaks.append((cut, nl + 1))
            last_after = after.span()
            if len(breaks) >= _MAX_BREAKS:
                break
    return _delete(text, breaks) if breaks else None


def _delete(text: str, spans: list[tuple[int, int]]) -> View:
    """A view of ``text`` without the (sorted, disjoint) ``spans``."""
    parts: list[str] = []
    segments: list[tuple[int, int, int, bool]] = []
    pos = vpos = 0
    for s, e in spans:
        if s > pos:
            parts.append(text[pos:s])
            segments.append((vpos, pos, s - pos, True))
            vpos += s - pos
        pos = e
    if pos < len(text) or not segments:
        parts.append(text[pos:])
        segments.append((vpos, pos, len(text) - pos, True))
    return View("".join(parts), segments)


class _Composed(View):
    """A view of a view, mapping straight back to the original."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, outer: View, inner: View) -> None:
        super().__init__(inner.text, [(0, 0, 0, True)])
        self._outer = outer
        self._inner = inner

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        return self._outer.to_original(*self._inner.to_original(start, end))


def may_have_views(text: str) -> bool:
    """Whether ``views(text)`` can yield anything (cheap: most ASCII texts have no view)."""
    return not text.isascii() or "%" in text or "&" in text or "\n" in text or "\\" in text


def views(text: str) -> Iterator[View]:
    """The normalised views of ``text`` that differ from it (none for plain ASCII text without
    '%', '&', '\\' or a line break).

    Invisible characters are deleted, compatibility forms folded, HTML character references
    and percent-encoding decoded, line breaks inside keys joined, in turn until nothing changes
    (at most ``_DECODE_LEVELS`` rounds: ``%EF%BC%94`` is a full-width digit, ``%2540`` an encoded
    ``%40``); each intermediate view is scanned too."""
    current: View | None = None
    subject = text
    for _ in range(_DECODE_LEVELS):
        changed = False
        # one search for any character either view is made for (most non-ASCII text has none)
        quiet = subject.isascii() or _table().unusual.search(subject) is None
        for make in (_ignorable_view, _compat_view, _html_view, _percent_view, _wrapped_key_view):
            if quiet and (make is _compat_view or make is _ignorable_view):
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


def _hs_class(code_points: list[int]) -> str:
    """A character class of ``code_points`` in the prefilter's syntax (UTF-8 mode, ``\\x{...}``)."""
    ranges: list[list[int]] = []
    for cp in sorted(set(code_points)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[{body}]"


def _wrapped_key_trigger() -> str:
    """A line break inside a run of key characters that holds (or is cut through) a key prefix."""
    key = "[A-Za-z0-9_.-]"
    arms: list[str] = []
    for prefix in _KEY_PREFIXES:
        arms.append(f"{re.escape(prefix)}{key}*\\r?\\n{key}")
        arms.extend(f"{re.escape(prefix[:k])}\\r?\\n{re.escape(prefix[k:])}" for k in range(1, len(prefix)))
    return "|".join(arms)


def view_triggers() -> list[str]:
    """Patterns (for the one-pass prefilter) of which one matches wherever ``views(text)`` yields a
    view: each is a superset of what a view maker needs before it makes a view of ``text`` itself
    (later views are made of views, so they need the first). A text none of them matches has no
    view, which saves each maker's own search on most clean non-ASCII text."""
    t = _table()
    compat = [cp for cp, form in {**t.one, **t.multi}.items() if any(c in _MATTERS for c in form)]
    spaces = [0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]
    return [
        _hs_class(_IGNORABLE_CODE_POINTS),  # _ignorable_view
        _hs_class(compat + spaces),  # _compat_view: a form that matters, or a space between digits
        r"&[#A-Za-z]|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}",  # _html_view
        "%[0-9A-Fa-f]{2}",  # _percent_view
        _wrapped_key_trigger(),  # _wrapped_key_view
    ]
