"""What the CLI prints: record values made safe for the terminal that shows it, and the one-line error."""

from __future__ import annotations

import re
import sys
from typing import TextIO

__all__ = ["fail", "terminal_safe"]

# Characters a terminal acts on or that reorder what it shows: C0 and C1 controls (ESC opens cursor moves,
# erasures, clipboard writes; a line break forges a line), bidirectional overrides and invisible marks.
# Values in records come from callers; an auditor's terminal must show them, not obey them.
_TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def terminal_safe(line: str) -> str:
    """``line`` with every character a terminal would act on written as a ``\\uXXXX`` escape (also valid
    inside a JSON string, so JSON lines stay JSON)."""
    return _TERMINAL_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def fail(line: str, code: int, out: TextIO | None = None) -> int:
    """Print ``sidecar: <line>`` (stderr unless ``out``) and return ``code``: how a command ends on an error."""
    print(f"sidecar: {line}", file=out or sys.stderr)
    return code
