"""The one UTC formatter/parser and the one backoff formula."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.backoff import backoff_delay
from sidecar.clock import format_utc, parse_utc

SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
moments = st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30),
                       timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=-9, minutes=-30)),
                                                  dt.timezone(dt.timedelta(hours=14))]))


@given(moments)
def test_format_is_one_shape_in_utc_and_parses_back(when: dt.datetime) -> None:
    text = format_utc(when)
    assert SHAPE.fullmatch(text), text
    assert parse_utc(text) == when  # the same instant
    assert parse_utc(text).utcoffset() == dt.timedelta(0)


@given(moments, moments)
def test_text_order_is_time_order(a: dt.datetime, b: dt.datetime) -> None:
    assert (format_utc(a) < format_utc(b)) == (a < b)


def test_precisions_and_inputs() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    assert format_utc(when, timespec="seconds") == "2026-01-02T03:04:05Z"
    assert format_utc(when, timespec="milliseconds") == "2026-01-02T03:04:05.678Z"  # cut, not rounded
    assert format_utc(when.replace(tzinfo=None)) == "2026-01-02T03:04:05.678901Z"  # naive is UTC
    assert format_utc(1_700_000_000.5) == "2023-11-14T22:13:20.500000Z"
    assert SHAPE.fullmatch(format_utc())


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-02T03:04:05Z", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("2026-01-02t03:04:05z", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("2026-01-02T03:04:05", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("2026-01-02T05:04:05+02:00", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    (" 2026-01-02 ", dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)),
])
def test_parse_accepts_iso_forms(text: str, expected: dt.datetime) -> None:
    got = parse_utc(text)
    assert got == expected and got.tzinfo == dt.timezone.utc


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-01-02T25:00:00Z"])
def test_parse_refuses_what_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)


def test_backoff_doubles_to_the_cap_without_jitter() -> None:
    assert [backoff_delay(a, base=1.0, cap=30.0) for a in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(10**9, base=0.05, cap=0.5) == 0.5  # no overflow however many attempts
    assert backoff_delay(-3, base=2.0, cap=8.0) == 2.0


@given(st.integers(0, 10**6), st.floats(0.001, 100), st.floats(1, 1000), st.integers())
def test_jitter_stays_in_the_upper_half(attempt: int, base: float, extra: float, seed: int) -> None:
    cap = base * extra
    plain = backoff_delay(attempt, base=base, cap=cap)
    jittered = backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert plain / 2 <= jittered <= plain <= cap


@given(st.integers(0, 100), st.floats(0, 10_000, allow_nan=False))
def test_retry_after_is_a_floor(attempt: int, retry_after: float) -> None:
    got = backoff_delay(attempt, base=1.0, cap=60.0, rng=random.Random(0), retry_after=retry_after)
    assert got >= retry_after and got >= backoff_delay(attempt, base=1.0, cap=60.0) / 2


def test_jitter_spreads_clients_apart() -> None:
    delays = {backoff_delay(5, base=1.0, cap=60.0, rng=random.Random(seed)) for seed in range(50)}
    assert len(delays) == 50


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bad_parameters_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, base=base, cap=cap)
