"""UTC time as text: the one formatter and the one parser every record, digest, ledger entry and command
uses, so every timestamp the sidecar writes has one shape (RFC 3339, UTC, ``Z``) and sorts as text."""

from __future__ import annotations

import datetime as dt
from typing import Literal

TimeSpec = Literal["seconds", "milliseconds", "microseconds"]


def format_utc(when: dt.datetime | float | None = None, *, timespec: TimeSpec = "microseconds") -> str:
    """``2026-01-02T03:04:05.123456Z``: ``when`` (an aware datetime, a naive one taken as UTC, or seconds
    since the epoch; now when None) in UTC, to ``timespec``, digits cut not rounded."""
    if when is None:
        when = dt.datetime.now(tz=dt.timezone.utc)
    elif isinstance(when, (int, float)):
        when = dt.datetime.fromtimestamp(when, tz=dt.timezone.utc)
    elif when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def parse_utc(text: str) -> dt.datetime:
    """An ISO 8601 / RFC 3339 time -> an aware UTC datetime; without an offset it is taken as UTC.
    ValueError when ``text`` is not a time."""
    when = dt.datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)
