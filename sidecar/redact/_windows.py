"""Where the numeric rules can match: short windows around runs of digits.

A dozen numeric rules (cards, Chinese IDs and credit codes, IBANs, SSNs, phones, IPv4) each scan
the text for a digit; in text dense with numbers (timestamps, hashes, order numbers) that costs
more than all other rules together.  Every match of those rules (but the IBAN's, see
``RUNLESS_RULES`` in ``_rules``: it scans the whole text) holds a *run*: at least seven
characters that open with a digit and go on with digits and the separators `` ().+#-``.  The rest
of a match sits next to its run: letters of an IBAN or a credit code (upper-case, digits and
spaces), a phone extension (``x123``, ``ext. 123``), a ``+`` or ``(`` just before.  And every
numeric rule looks at one character before its match and at most two after it.

So one scan finds the runs, each run grows by those neighbours and by that context, and the
numeric rules scan only the windows, joined by a character none of them consumes.  The result
is the same as scanning the whole text: a match and its context lie inside one window, and a
window never starts or ends inside a match.  When a neighbour stretch is longer than
``REACH`` (so its edge could cut a match), the caller scans the whole text instead.
"""

from __future__ import annotations

import importlib
from bisect import bisect_right
from typing import Any

__all__ = ["REACH", "SEPARATOR", "NumericView", "numeric_view"]

_rx: Any = importlib.import_module("regex")

#: Longest stretch of upper-case letters, digits and spaces a window grows by on either side:
#: more than twice the longest IBAN written with spaces (34 characters + 8 spaces), so a window
#: edge inside such a stretch can neither cut nor hide a match that holds the run.
REACH = 96
#: Joins the windows: not consumed by any numeric rule, and not a letter or digit to the
#: look-arounds, so a window edge behaves like the edge of the text.
SEPARATOR = "\x00"
#: Context kept before and after a window: the look-behinds read one character before a match
#: (two with the ``+`` / ``(`` a phone may open with), the look-aheads two after it.
_BEFORE, _AFTER = 2, 2

# Bounded like every pattern here; a longer run is found in pieces that touch (or are at most two
# separators apart, closer than any match allows), so their windows merge.
_RUN = _rx.compile(r"[0-9][0-9 ().+#-]{6,4096}", _rx.ASCII)
_LEFT = _rx.compile(rf"[0-9A-Z ]{{0,{REACH}}}", _rx.ASCII | _rx.REVERSE)
_RIGHT = _rx.compile(rf"(?:[ ]?(?:x|ext\.?)[ ]?[0-9]{{1,6}})?[0-9A-Z ]{{0,{REACH}}}", _rx.ASCII)
_GROWS_LEFT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ ")
_GROWS_RIGHT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZxe")


class NumericView:
    """The windows of one text joined into one string, and the way back to text offsets."""

    __slots__ = ("_offsets", "_starts", "_windows", "longest", "text")

    def __init__(self, text: str, windows: list[tuple[int, int]]) -> None:
        self.text = SEPARATOR.join([text[s:e] for s, e in windows])
        #: The longest window: no match is longer.
        self.longest = max([e - s for s, e in windows])
        self._windows = windows
        self._starts: list[int] = []  # filled on the first to_text (most texts have no match)
        self._offsets: list[int] = []

    def to_text(self, pos: int) -> int:
        """The offset in the original text of offset ``pos`` of the joined windows."""
        if not self._starts:
            joined = 0
            for s, e in self._windows:
                self._starts.append(joined)
                self._offsets.append(s - joined)
                joined += e - s + 1
        return pos + self._offsets[bisect_right(self._starts, pos) - 1]


def numeric_view(text: str) -> NumericView | str | None:
    """What the numeric rules should scan: ``None`` (nothing: no run), ``text`` itself (a
    stretch ran past ``REACH``), or a ``NumericView`` of the windows."""
    n = len(text)
    windows: list[tuple[int, int]] = []
    for m in _RUN.finditer(text, concurrent=False):
        s, e = m.span()
        if s > 0 and text[s - 1] in _GROWS_LEFT:
            grown = _LEFT.match(text, 0, s, concurrent=False)
            if grown is not None:
                if s - grown.start() >= REACH:
                    return text
                s = grown.start()
        if e < n and text[e] in _GROWS_RIGHT:
            grown = _RIGHT.match(text, e, concurrent=False)
            if grown is not None:
                if grown.end() - e >= REACH:
                    return text
                e = grown.end()
        s = max(0, s - _BEFORE)
        e = min(n, e + _AFTER)
        if windows and s <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(e, windows[-1][1]))
        else:
            windows.append((s, e))
    if not windows:
        return None
    return NumericView(text, windows)
