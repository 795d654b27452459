"""The few fields the anomaly detector reads of a record: time, provider, model, status, API key."""

from __future__ import annotations

import calendar
from typing import Any, NamedTuple

from sidecar.ship.metrics import record_view
from sidecar.telemetry import provider_label, status_label


class Fields(NamedTuple):
    ts: float
    provider: str
    model: str | None
    status: str  # a bounded label: the status code, or "none" when no response came
    fingerprint: str | None


_minute_cache: dict[str, float] = {}


def parse_ts(value: str) -> float | None:
    """RFC 3339 in UTC ('2026-11-25T10:00:00.123456Z' or '...+00:00'); the minute is cached."""
    if len(value) < 19 or value[10] != "T":
        return None
    minute = value[:16]
    base = _minute_cache.get(minute)
    try:
        if base is None:
            y, mo, d = int(value[0:4]), int(value[5:7]), int(value[8:10])
            h, mi = int(value[11:13]), int(value[14:16])
            base = float(calendar.timegm((y, mo, d, h, mi, 0, 0, 0, 0)))
            if len(_minute_cache) > 4096:
                _minute_cache.clear()
            _minute_cache[minute] = base
        end = 19
        if value[19:20] == ".":
            end = 20
            while end < len(value) and value[end].isdigit():
                end += 1
        seconds = float(value[17:end])
    except ValueError:
        return None
    if end < len(value) and value[end:] not in ("Z", "+00:00"):
        return None  # records are written in UTC; anything else is not one of ours
    return base + seconds


def extract(raw: bytes) -> Fields | None:
    """The fields from a raw record document.

    ``record_view`` parses the metadata part only (content fields come last and are cut off), with
    the C JSON parser: measured as fast as searching the bytes for each key, and exact."""
    view = record_view(raw)
    return view_fields(view) if view is not None else None


def view_fields(doc: dict[str, Any]) -> Fields | None:
    """The same fields from an already parsed document (e.g. ``record_view``)."""
    stamp = doc.get("@timestamp")
    provider = doc.get("gen_ai.provider.name")
    if not isinstance(stamp, str) or not isinstance(provider, str):
        return None
    ts = parse_ts(stamp)
    if ts is None:
        return None
    status = doc.get("http.response.status_code")
    model = doc.get("gen_ai.request.model") or doc.get("gen_ai.response.model")
    fingerprint = doc.get("sidecar.credential.fingerprint")
    return Fields(ts, provider_label(provider), model if isinstance(model, str) else None,
                  status_label(status) if isinstance(status, int) else "none",
                  fingerprint if isinstance(fingerprint, str) else None)
