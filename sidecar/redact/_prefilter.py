"""One scan that tells which built-in rules can match a text, so the exact rules run only there.

Clean text is most of what a model call carries, and before this every rule (or its literal test)
read the whole text once.  Every built-in pattern, widened where an engine cannot run it exactly
(``superset``: look-arounds become the characters they test, or go), is compiled into one
multi-pattern scanner, and the same scan says whether the text can have a normalised view at all
(``_views.view_triggers``).  A rule it does not report cannot match, and is skipped; a rule it
reports runs as before, on the same text, with the same exact pattern, so the findings are the same
as without the prefilter (tests compare both engines with the pure-``regex`` path on the labelled
corpus, the adversarial corpus and generated text).

Two engines, the first installed one wins (``ENGINES``):

* RE2's ``Set`` (the ``google-re2`` wheel): one lazily built DFA; look-arounds are dropped
  (``for_re2``), which only widens a pattern. Its "no match" is also what it answers when the DFA
  runs out of memory, so a sentinel pattern that matches every text tells the two apart.
* Hyperscan / Vectorscan (the ``hyperscan`` wheel) in *prefilter* mode, which widens what it
  cannot run exactly. Patterns are scanned byte by byte where that reads the same as UTF-8 mode
  (``needs_utf8``), about 30% faster on mixed-script text.

The patterns are ASCII-mode ``regex`` patterns and both engines read them without Unicode
properties: ``.`` and negated classes take one code point, ``\\w``, ``\\d``, ``\\s`` and ``\\b``
stay ASCII (RE2's case folding is wider, which is fine).  Patterns that name non-ASCII characters
(the internationalised e-mail rule) and user rules are never prefiltered: they always run.  A text
that is not valid UTF-8 (lone surrogates) is not scanned: every rule runs.

When neither wheel is there (or a pattern does not compile), ``build`` returns ``None`` and the
engine keeps its pure-``regex`` path: the literal tests before each rule.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ENGINES", "Prefilter", "build", "for_re2", "needs_utf8", "superset"]


# A negative look-behind or look-ahead on one plain character class ``[...]`` (no escapes, not negated).
_CLASS = r"\[([^\]\\^][^\]\\]*)\]"
_LEAD = re.compile(r"\(\?<!" + _CLASS + r"\)")
_LATE = re.compile(r"\(\?<!" + _CLASS + r"(\[\\s\\S\]\{(\d+)\}|\[[^\]\\]+\])\)")
_TAIL = re.compile(r"\(\?!" + _CLASS + r"(?:\|[^()]*)?\)\Z")
_BIG_REPEAT = re.compile(r"(?<!\\)\{(\d+),(\d+)\}")
_OPEN_OVER = 64
_OTHER_LOOKBEHIND = re.compile(r"\(\?<!(?:[^()\[\\]|\\.|\[(?:[^\]\\]|\\.)*\])*\)")


def superset(pattern: str) -> str:
    """``pattern`` with its edge look-arounds turned into the characters they test, for the
    prefilter (which would otherwise drop them and report every digit run as a phone number).

    Only three shapes are rewritten, each into a pattern that matches wherever ``pattern`` does:
    ``(?<![C])`` opening the pattern, or ``(?<![C][\\s\\S]{n})`` after a fixed-width start n
    characters long (or ``(?<![C]B)`` after a start written exactly ``B``), becomes ``(?:^|[^C])``
    before the start: the character before the match is not in C.  ``(?![C])`` or ``(?![C]|...)``
    closing the pattern becomes ``(?:[^C]|$)`` (dropping the other alternatives only widens it).
    Once a look-behind is rewritten, the pattern's other negative look-behinds are dropped (each
    only narrows the match; the prefilter would drop them anyway). A repeat bounded above 64
    (``{5,4096}``) becomes open (``{5,}``).  Anything else is left as it is."""
    before = ""
    if (m := _LEAD.match(pattern)) is not None:
        before, pattern = f"(?:^|[^{m.group(1)}])", _strip_lookbehinds(pattern[m.end():])
    elif (pos := pattern.find("(?<!")) > 0:
        m = _LATE.match(pattern, pos)
        start = pattern[:pos]
        if m is not None and (m.group(2) == start or (m.group(3) and _fixed_width(start) == int(m.group(3)))):
            before, pattern = f"(?:^|[^{m.group(1)}])", start + _strip_lookbehinds(pattern[m.end():])
    if (m := _TAIL.search(pattern)) is not None:
        pattern = f"{pattern[:m.start()]}(?:[^{m.group(1)}]|$)"
    # Large bounded repeats ({5,4096}, {12,8192}) make the database slow to compile (seconds) and
    # to scan; an open repeat matches every count the bounded one does.
    return _BIG_REPEAT.sub(lambda r: r.group(0) if int(r.group(2)) <= _OPEN_OVER else f"{{{r.group(1)},}}",
                           before + pattern)


def _strip_lookbehinds(pattern: str) -> str:
    """``pattern`` without its other negative look-behinds (each only narrows what matches, so
    without them the pattern matches wherever it did); one holding a group is left in place."""
    return _OTHER_LOOKBEHIND.sub("", pattern)


def _fixed_width(pattern: str) -> int:
    """The width of every match of ``pattern``, or -1 when it varies or cannot be told."""
    try:
        parser = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
        low, high = parser.parse(pattern, re.ASCII).getwidth()
    except Exception:
        return -1
    return int(low) if low == high else -1


_EDGE_BEFORE = re.compile(r"\A\(\?:\^\|\[\^[^\]\\]*\]\)")
_EDGE_AFTER = re.compile(r"\(\?:\[\^[^\]\\]*\]\|\$\)\Z")
# what reads "any character but ...": one byte of a multi-byte character when not in UTF-8 mode
_NEGATED = {"NOT_LITERAL", "ANY", "CATEGORY_NOT_SPACE", "CATEGORY_NOT_WORD", "CATEGORY_NOT_DIGIT", "NEGATE"}


def needs_utf8(pattern: str) -> bool:
    """Whether ``pattern`` must be scanned in UTF-8 mode (slower: ~30% on mixed-script text) to
    report every text the same pattern does in that mode.

    Byte mode reads a multi-byte character as several bytes, each 0x80 or above: an ASCII literal
    or positive ASCII class never matches them in either mode, and ``[^C]`` (C ASCII) at the
    pattern's very edge, as ``superset`` writes it, matches the byte next to the match whenever it
    matches the character there. Any other negated class, ``.``, ``\\S``, ``\\W`` or ``\\D``
    could count a character as several bytes (a bounded repeat would then miss), so it needs UTF-8
    mode, as does a non-ASCII pattern or one the standard parser cannot read."""
    body = _EDGE_AFTER.sub("", _EDGE_BEFORE.sub("", pattern))
    if not body.isascii():
        return True
    try:
        parser = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
        tree = parser.parse(body, re.ASCII)
    except Exception:
        return True
    return any(token in _NEGATED for token in _tokens(tree))


def _tokens(node: Any) -> Any:
    """Every opcode and category name in a parsed pattern (walked generically: the tree's shape
    differs between Python versions)."""
    if isinstance(node, list | tuple) or type(node).__name__ == "SubPattern":
        for item in node:
            yield from _tokens(item)
    elif type(node).__name__ == "_NamedIntConstant":
        yield str(node)


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or no wheel for this platform
        return None


class Prefilter:
    """``candidates(text)``: the indices (of the patterns given to ``build``) that may match, or
    ``None`` when the text could not be scanned (then every rule must run). ``engine`` names the
    library that scans."""

    __slots__ = ()
    engine = ""

    def candidates(self, text: str) -> set[int] | None:
        raise NotImplementedError


class _Re2Set(Prefilter):
    """google-re2's ``Set``: every pattern in one lazily built DFA, scanned in one pass.

    ``make`` builds the set (the same one every time). A child process builds its own on its
    first scan after a fork: RE2 guards its DFA cache with a lock, and a fork while another thread
    held it (the scan runs without the GIL) would leave the child's copy locked forever."""

    __slots__ = ("_forks", "_ids", "_make", "_sentinel", "_set")
    engine = "re2"

    def __init__(self, make: Callable[[], Any], ids: list[int]) -> None:
        self._make = make
        self._set = make()
        self._forks = _FORKS[0]
        self._ids = ids
        self._sentinel = len(ids)  # the index of the pattern added after the given ones

    def candidates(self, text: str) -> set[int] | None:
        try:
            if self._forks != _FORKS[0]:
                self._set, self._forks = self._make(), _FORKS[0]
            found = self._set.Match(text)
        except Exception:  # lone surrogates (not UTF-8), or a failed scan: every rule runs
            return None
        # RE2 answers "no match" when its DFA runs out of memory; the sentinel (the last pattern,
        # which matches every text) tells that apart: without it, the scan said nothing.
        if self._sentinel not in found:
            return None
        ids = self._ids
        return {ids[k] for k in found if k != self._sentinel}


# How many forks this process is away from the one that built the sets (see _Re2Set).
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class _Hyperscan(Prefilter):
    """A Hyperscan (Vectorscan) database in prefilter mode, one match reported per pattern."""

    __slots__ = ("_db", "_hs", "_local")
    engine = "hyperscan"

    def __init__(self, hs: Any, db: Any) -> None:
        self._hs = hs
        self._db = db
        # A scratch space is per thread: one Redactor is shared by the application's threads and
        # the spool writer, and a scratch in use by two scans at once is an error.
        self._local = threading.local()

    def candidates(self, text: str) -> set[int] | None:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: not UTF-8, so not something to scan
            return None
        try:
            scratch = self._local.scratch
        except AttributeError:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        hits: set[int] = set()
        try:
            self._db.scan(data, match_event_handler=_on_match, context=hits, scratch=scratch)
        except Exception:  # a scan that failed tells nothing: every rule runs
            return None
        return hits


def _on_match(index: int, start: int, end: int, flags: int, hits: set[int]) -> None:
    hits.add(index)


#: The engines ``build`` tries, fastest first (measured on the bench corpus: RE2's set scanned
#: clean text at about 1.7x and short dirty texts at about 1.4x Hyperscan's rate, its per-call
#: cost being lower).
ENGINES = ("re2", "hyperscan")
#: Memory budget of RE2's lazily built DFA (its states are cached up to this; with the 8 MB
#: default the dirty corpus filled the cache and each scan fell back to the slow NFA, ~30x).
RE2_MAX_MEM = 32 << 20

_BUILT: dict[tuple[tuple[tuple[int, str], ...], tuple[str, ...]], Prefilter | None] = {}
_BUILD_LOCK = threading.Lock()


def build(patterns: Sequence[tuple[int, str]], engines: Sequence[str] = ENGINES) -> Prefilter | None:
    """A prefilter over ``(index, pattern)`` pairs from the first of ``engines`` whose library is
    installed and compiles every pattern, or ``None`` (then nothing is prefiltered).  Compiling
    takes up to a second, so each set of patterns is compiled once a process (the result is
    read-only and shared between threads)."""
    key = (tuple(patterns), tuple(engines))
    with _BUILD_LOCK:
        if key not in _BUILT:
            _BUILT[key] = _compile(key[0], key[1])
        return _BUILT[key]


def _compile(patterns: Sequence[tuple[int, str]], engines: Sequence[str]) -> Prefilter | None:
    if not patterns:
        return None
    compilers = {"re2": _compile_re2, "hyperscan": _compile_hyperscan}
    for engine in engines:
        built = compilers[engine](patterns) if engine in compilers else None
        if built is not None:
            return built
    return None


def _compile_re2(patterns: Sequence[tuple[int, str]], max_mem: int = RE2_MAX_MEM) -> Prefilter | None:
    re2 = _module("re2")
    if re2 is None:
        return None
    expressions = [for_re2(pattern) for _, pattern in patterns]

    def make() -> Any:
        options = re2.Options()
        options.max_mem = max_mem
        options.log_errors = False  # a failure is detected (see _Re2Set), not written to stderr
        compiled = re2.Set.SearchSet(options)
        for expression in expressions:
            compiled.Add(expression)  # raises when the pattern does not compile
        compiled.Add("(?:)")  # the sentinel: matches every text
        compiled.Compile()  # raises when it fails
        return compiled

    try:
        return _Re2Set(make, [i for i, _ in patterns])
    except Exception:
        return None


def _compile_hyperscan(patterns: Sequence[tuple[int, str]]) -> Prefilter | None:
    hs = _module("hyperscan")
    if hs is None:
        return None
    flags = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_ALLOWEMPTY
    try:
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(
            expressions=[p.encode("utf-8") for _, p in patterns],
            ids=[i for i, _ in patterns],
            elements=len(patterns),
            flags=[flags | (hs.HS_FLAG_UTF8 if needs_utf8(p) else 0) for _, p in patterns],
        )
    except Exception:
        return None
    return _Hyperscan(hs, db)


_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")


def for_re2(pattern: str) -> str:
    """``pattern`` as RE2 reads it, matching wherever ``pattern`` does: look-arounds (RE2 has none)
    become empty groups, which only widens the match; ``\\s`` is spelled out (RE2's leaves out
    the vertical tab the ``regex`` module's ASCII ``\\s`` holds) and ``\\Z`` becomes ``\\z``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            pair = pattern[i : i + 2]
            out.append({"\\s": "[\\t\\n\\x0b\\f\\r ]", "\\Z": "\\z"}.get(pair, pair))
            i += 2
        elif c == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end].replace("\\s", "\\t\\n\\x0b\\f\\r "))
            i = end
        elif pattern.startswith(_LOOKAROUND, i):
            out.append("(?:)")
            i = _group_end(pattern, i)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _class_end(pattern: str, i: int) -> int:
    """The index just past the character class opening at ``pattern[i]``."""
    i += 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _group_end(pattern: str, i: int) -> int:
    """The index just past the group opening at ``pattern[i]``."""
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        depth += c == "("
        depth -= c == ")"
        i += 1
        if depth == 0:
            return i
    return i
