"""One scan that tells which built-in rules can match a text, so the exact rules run only there.

Clean text is most of what a model call carries, and before this every rule (or its literal test)
read the whole text once.  Hyperscan (the ``hyperscan`` wheel: Vectorscan/Hyperscan) compiles
every built-in pattern into one automaton in *prefilter* mode: constructs it cannot run exactly
(look-arounds, back-references) are widened, so the set of patterns it reports is a superset of
those that match.  A rule it does not report cannot match, and is skipped; a rule it reports runs
as before, on the same text, with the same exact pattern, so the findings are the same as without
the prefilter (a test compares both paths on the labelled corpus, the adversarial corpus and
generated text).

The patterns are ASCII-mode ``regex`` patterns; the database is compiled for UTF-8 without
Unicode properties, which matches them character for character: ``.`` and negated classes take
one code point, ``\\w``, ``\\d``, ``\\s``, ``\\b`` and case folding stay ASCII.  Patterns that name
non-ASCII characters (the internationalised e-mail rule) and user rules are never prefiltered:
they always run.  A text that is not valid UTF-8 (lone surrogates) is not scanned: every rule runs.

When the wheel is missing (or a pattern does not compile), ``build`` returns ``None`` and the
engine keeps its pure-``regex`` path: the literal tests before each rule.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["Prefilter", "build"]


def _hyperscan() -> Any:
    try:
        return importlib.import_module("hyperscan")
    except Exception:  # not installed, or no wheel for this platform
        return None


class Prefilter:
    """``candidates(text)``: the indices (of the patterns given to ``build``) that may match, or
    ``None`` when the text could not be scanned (then every rule must run)."""

    __slots__ = ("_db", "_hs", "_local")

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
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._db)
        hits: set[int] = set()
        try:
            self._db.scan(data, match_event_handler=_on_match, context=hits, scratch=scratch)
        except Exception:  # a scan that failed tells nothing: every rule runs
            return None
        return hits


def _on_match(index: int, start: int, end: int, flags: int, hits: set[int]) -> None:
    hits.add(index)


def build(patterns: Sequence[tuple[int, str]]) -> Prefilter | None:
    """A prefilter over ``(index, pattern)`` pairs (ASCII patterns only), or ``None`` without the
    wheel or when one of them does not compile (then nothing is prefiltered)."""
    hs = _hyperscan()
    if hs is None or not patterns:
        return None
    flags = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_UTF8 | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_ALLOWEMPTY
    try:
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(
            expressions=[p.encode("ascii") for _, p in patterns],
            ids=[i for i, _ in patterns],
            elements=len(patterns),
            flags=[flags] * len(patterns),
        )
    except Exception:
        return None
    return Prefilter(hs, db)
