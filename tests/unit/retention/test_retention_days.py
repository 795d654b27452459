"""Day arithmetic of the enforcer and of verify: clock skew, month and year boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from sidecar.config import ShipperSettings
from sidecar.retention import is_expired, newest_expired_day
from sidecar.retention._enforcer import Partition, parse_index, split, utc_today
from sidecar.retention._policies import ilm_policy, ism_policy
from sidecar.retention._verify import Evidence, _check_limits, check_ilm_policy, check_ism_policy

D = dt.date


def test_boundaries_for_90_days() -> None:
    today = D(2026, 4, 3)
    assert is_expired(D(2026, 1, 1), 90, today)  # today - 92 days: first day deleted
    assert not is_expired(D(2026, 1, 2), 90, today)  # today - 91: the clock-skew day, kept
    assert not is_expired(D(2026, 1, 3), 90, today)  # today - 90: just inside the limit, kept
    assert newest_expired_day(90, today) == D(2026, 1, 1)


@pytest.mark.parametrize(
    ("today", "newest"),
    [
        (D(2026, 1, 1), D(2025, 10, 1)),  # year boundary
        (D(2024, 3, 1), D(2023, 11, 30)),  # leap February
        (D(2025, 3, 1), D(2024, 11, 29)),  # common February
        (D(2026, 5, 31), D(2026, 2, 28)),  # month ends
        (D(2026, 12, 31), D(2026, 9, 30)),
    ],
)
def test_month_and_year_boundaries(today: dt.date, newest: dt.date) -> None:
    assert newest_expired_day(90, today) == newest
    assert is_expired(newest, 90, today)
    assert not is_expired(newest + dt.timedelta(days=1), 90, today)


@pytest.mark.parametrize("days", [1, 30, 90, 365])
def test_every_record_kept_at_least_n_days_even_with_a_day_of_skew(days: int) -> None:
    start = D(2023, 12, 1)
    for offset in range(0, 800, 7):
        today = start + dt.timedelta(days=offset)
        for age in range(0, days + 10):
            day = today - dt.timedelta(days=age)
            expired = is_expired(day, days, today)
            assert expired == (age >= days + 2)
            if expired:
                # Deletion can happen at the earliest at 00:00 of `today` by this machine's clock,
                # which may be a day fast; the newest record of `day` is just before its next midnight.
                earliest_true_now = dt.datetime.combine(today, dt.time()) - dt.timedelta(days=1)
                newest_record = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
                assert earliest_true_now - newest_record >= dt.timedelta(days=days)


def test_utc_today_uses_utc() -> None:
    tz = dt.timezone(dt.timedelta(hours=-5))
    assert utc_today(dt.datetime(2026, 1, 1, 22, 0, tzinfo=tz)) == D(2026, 1, 2)
    with pytest.raises(ValueError):
        utc_today(dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("name", "kind", "day"),
    [
        ("llm-audit-2026.01.31", "audit", D(2026, 1, 31)),
        ("llm-audit-deadletter-2024.02.29", "deadletter", D(2024, 2, 29)),
        ("llm-audit-anomalies-2025.12.31", "anomalies", D(2025, 12, 31)),
        ("llm-audit-digests-2026.03.01", "digests", D(2026, 3, 1)),
    ],
)
def test_parse_index_names(name: str, kind: str, day: dt.date) -> None:
    part = parse_index(name, "llm-audit")
    assert part is not None and (part.kind, part.day) == (kind, day)


@pytest.mark.parametrize(
    "name",
    [
        "llm-audit-2025.02.29",  # not a date
        "llm-audit-2026.13.01",
        "llm-audit-2026.1.01",
        "llm-audit-2026.01.01-000001",
        "llm-audit-retention-meta",
        "llm-audit-other-2026.01.01",
        "llm-auditx-2026.01.01",
        "xllm-audit-2026.01.01",
        "llm-audit-2026-01-01",
    ],
)
def test_parse_index_ignores_other_names(name: str) -> None:
    assert parse_index(name, "llm-audit") is None


def test_prefix_is_literal_not_a_regex() -> None:
    assert parse_index("a.b-2026.01.01", "a.b") is not None
    assert parse_index("axb-2026.01.01", "a.b") is None


def test_split_keeps_young_and_sorts() -> None:
    today = D(2026, 4, 3)
    parts = [Partition(f"p-{d:%Y.%m.%d}", "audit", d) for d in (D(2026, 1, 3), D(2025, 12, 1), D(2026, 1, 1))]
    expired, kept = split(parts, 90, today)
    assert [p.day for p in expired] == [D(2025, 12, 1), D(2026, 1, 1)]
    assert [p.day for p in kept] == [D(2026, 1, 3)]


def _settings(retention_days: int = 90, allow_short_retention: bool = False) -> ShipperSettings:
    return ShipperSettings(retention_days=retention_days, allow_short_retention=allow_short_retention)


def test_verify_grace_after_midnight() -> None:
    settings = _settings()
    ev = Evidence(target="t", configured_days=90, limits={"enforcer": 90.0},
                  partitions=[Partition("p-2026.01.01", "audit", D(2026, 1, 1))])
    # 2026-04-03 00:30: the partition crossed the limit 30 minutes ago; the hourly enforcer has time.
    _check_limits(ev, settings, dt.datetime(2026, 4, 3, 0, 30, tzinfo=dt.timezone.utc))
    assert ev.ok
    _check_limits(ev, settings, dt.datetime(2026, 4, 3, 3, 0, tzinfo=dt.timezone.utc))
    assert not ev.ok and "p-2026.01.01" in ev.problems[0]


def test_verify_limit_checks() -> None:
    now = dt.datetime(2026, 4, 3, 12, tzinfo=dt.timezone.utc)
    ev = Evidence(target="t", configured_days=90, limits={"ILM": 90.0, "enforcer": 60.0})
    _check_limits(ev, _settings(), now)
    assert any("less than SIDECAR_RETENTION_DAYS=90" in p for p in ev.problems)
    assert any("below 90 days" in p for p in ev.problems)
    ev = Evidence(target="t", configured_days=30, limits={"enforcer": 30.0})
    _check_limits(ev, _settings(retention_days=30, allow_short_retention=True), now)
    assert ev.ok
    ev = Evidence(target="t", configured_days=90)
    _check_limits(ev, _settings(), now)
    assert ev.problems == ["no retention mechanism is in force (run `sidecar retention apply`)"]


def test_ilm_policy_read_back_checks() -> None:
    kept, _, problems = check_ilm_policy(ilm_policy(90)["policy"], 90)
    assert kept == 90 and not problems
    naive = ilm_policy(90)["policy"]
    naive["phases"]["delete"]["min_age"] = "90d"  # from creation: the last record of a day gets < 90 days
    assert check_ilm_policy(naive, 90)[0] == 89
    hours = ilm_policy(90)["policy"]
    hours["phases"]["delete"]["min_age"] = f"{91 * 24}h"
    assert check_ilm_policy(hours, 90)[0] == 90
    no_delete = ilm_policy(90)["policy"]
    del no_delete["phases"]["delete"]
    assert check_ilm_policy(no_delete, 90)[0] is None
    bad = ilm_policy(90)["policy"]
    bad["phases"]["delete"]["min_age"] = "3M"
    assert check_ilm_policy(bad, 90)[2]


def test_ism_policy_read_back_checks() -> None:
    kept, _, problems = check_ism_policy(ism_policy(90)["policy"], 90)
    assert kept == 90 and not problems
    by_size = ism_policy(90)["policy"]
    by_size["states"][0]["transitions"][0]["conditions"] = {"min_size": "50gb"}
    kept, _, problems = check_ism_policy(by_size, 90)
    assert kept is None and any("not on index age alone" in p for p in problems)
    immediate = ism_policy(90)["policy"]
    immediate["default_state"] = "delete"
    assert any("default state deletes" in p for p in check_ism_policy(immediate, 90)[2])
    no_delete = ism_policy(90)["policy"]
    no_delete["states"][1]["actions"] = []
    assert check_ism_policy(no_delete, 90)[0] is None
