"""Redact first, cut second, on the same text.

A bounded field (content, an error message, a model name) keeps at most ``limit`` characters.
Cutting before redacting can split a secret so that no rule sees it whole; cutting the redacted
text at a fixed offset can split a placeholder, or (when placeholders changed lengths) keep text
the redaction never looked at.  So: scan a window a little longer than the limit, choose the
cut in the *original* text where it splits no finding, build the redacted text up to that cut,
and, when placeholders made it longer than the limit, cut it again between placeholders.
"""

from __future__ import annotations

import re

__all__ = ["MARGIN", "PLACEHOLDER", "cut_kept", "window_end"]

#: Characters scanned past the limit, so a secret that the limit would cut is seen whole.
#: A token running through the window's end is dropped whole (see ``window_end``).
MARGIN = 2048
#: What a placeholder looks like in redacted text.
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]{0,39}:[0-9a-f]{8}>")


def window_end(text: str, window: int, cut: int) -> int:
    """The cut, moved back to the start of a token that runs through the window's end.

    Such a token may be a secret the scan could not see whole (the window cut it), so no part of
    it is kept.  Tokens here are runs without whitespace; every rule whose match can hold
    whitespace either matches a cut prefix too (private keys) or is far shorter than ``MARGIN``.
    """
    if window >= len(text):
        return cut
    start = window
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return min(cut, start)


def cut_kept(redacted: str, limit: int) -> str:
    """``redacted`` cut to at most ``limit`` characters, never inside a placeholder."""
    if len(redacted) <= limit:
        return redacted
    for m in PLACEHOLDER.finditer(redacted, max(0, limit - 60), limit + 60):
        if m.start() < limit < m.end():
            return redacted[: m.start()]
    return redacted[:limit]
