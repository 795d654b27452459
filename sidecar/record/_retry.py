"""Step: retry grouping. Attempts of one logical request share a group (a keyed hash of method,
host, path and body); the delay is the time since the group's previous attempt ended."""

from __future__ import annotations

from collections.abc import Callable

RETRY_WINDOW_NS = 600 * 10**9  # attempts of one request further apart than this are separate requests
_BODY_BYTES = 65536  # bytes of the body that identify a request
_MAX_GROUPS = 10_000  # groups remembered; past this the memory starts over (delays are then unknown)


class RetryGroups:
    """The one piece of state the record build keeps between calls: when each group last ended."""

    def __init__(self, digest: Callable[[bytes], str]) -> None:
        self._digest = digest
        self._ends: dict[str, int] = {}  # group -> when its latest attempt ended (ns since the epoch)

    def group(self, method: str, host: str, path: str, body: bytes) -> str:
        return self._digest(f"{method} {host} {path}\n".encode() + body[:_BODY_BYTES])

    def attempt(self, group: str, start_ns: int, duration_ns: int) -> float | None:
        """Record an attempt of ``group``; the seconds since its previous attempt ended, if that was
        within the retry window (None for a first attempt, or one that overlaps the previous)."""
        previous_end = self._ends.get(group)
        delay = None
        if previous_end is not None and 0 <= start_ns - previous_end < RETRY_WINDOW_NS:
            delay = round((start_ns - previous_end) / 1e9, 6)
        if len(self._ends) >= _MAX_GROUPS:
            self._ends.clear()
        self._ends[group] = start_ns + duration_ns
        return delay
