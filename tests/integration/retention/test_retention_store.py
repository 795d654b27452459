"""Retention on the embedded store (a real SQLite file written by the real SqliteStore)."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar.config import ShipperSettings
from sidecar.retention import enforce, retention_apply, retention_verify
from sidecar.ship.sqlite import SqliteStore

N = 90


def _day(age: int) -> str:
    return f"{dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=age):%Y.%m.%d}"


def _settings(tmp_path: Path, **kw: Any) -> ShipperSettings:
    return ShipperSettings(spool_dir=tmp_path / "spool", store_path=tmp_path / "audit.db", **kw)


def _run(fn: Any, settings: ShipperSettings, **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    rc = fn(settings, out=out, **kw)
    return rc, out.getvalue()


def _fill(path: Path, docs_factory: Any, ages: list[int], per_day: int = 3) -> SqliteStore:
    store = SqliteStore(path)
    store.open()
    for age in ages:
        store.write(docs_factory(per_day, day=_day(age), producer=f"p{age}"), threading.Event())
    return store


def _days(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {d: c for d, c in conn.execute("SELECT day, count(*) FROM records GROUP BY day")}


def test_apply_and_verify_on_the_store(tmp_path: Path, docs_factory: Any) -> None:
    settings = _settings(tmp_path)
    gone, kept = [400, 120, N + 2], [N + 1, N, 10, 0]
    store = _fill(settings.embedded_store_path, docs_factory, gone + kept)
    old_dl = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=N + 3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with sqlite3.connect(settings.embedded_store_path) as conn:
        conn.execute("INSERT INTO deadletters (ts, reason, raw) VALUES (?, 'x', x'00')", (old_dl,))
    store.dead_letter(b"young", "y")
    store.close()

    rc, out = _run(retention_apply, settings)
    assert rc == 0, out
    assert sorted(_days(settings.embedded_store_path)) == sorted(_day(a) for a in kept)
    assert all(c == 3 for c in _days(settings.embedded_store_path).values())  # whole days, untouched
    for age in gone:
        assert f"deleted records/{_day(age)} (3 docs)" in out
    assert "deleted deadletters/" in out
    with sqlite3.connect(settings.embedded_store_path) as conn:
        assert [r[0] for r in conn.execute("SELECT reason FROM deadletters")] == ["y"]
        assert conn.execute("SELECT value FROM meta WHERE key='retention_days'").fetchone() == ("90",)

    rc, out = _run(retention_verify, settings)
    assert rc == 0, out
    assert f"oldest records/{_day(N + 1)} (3 docs)" in out and "result: OK" in out

    # An old day written again (a late producer) makes verify fail until the enforcer runs.
    _fill(settings.embedded_store_path, docs_factory, [N + 5]).close()
    rc, out = _run(retention_verify, settings)
    assert rc == 1 and f"records/{_day(N + 5)}" in out
    report = enforce(settings)
    assert [p.name for p in report.deleted] == [f"records/{_day(N + 5)}"]
    assert _run(retention_verify, settings)[0] == 0


def test_verify_reads_the_limit_in_force(tmp_path: Path, docs_factory: Any) -> None:
    settings = _settings(tmp_path)
    _fill(settings.embedded_store_path, docs_factory, [5]).close()
    rc, out = _run(retention_verify, settings)
    assert rc == 1 and "meta.retention_days missing" in out
    assert _run(retention_apply, settings)[0] == 0
    with sqlite3.connect(settings.embedded_store_path) as conn:
        conn.execute("UPDATE meta SET value = '30' WHERE key = 'retention_days'")
    rc, out = _run(retention_verify, settings)
    assert rc == 1 and "less than SIDECAR_RETENTION_DAYS=90" in out and "below 90 days" in out


def test_missing_store_and_dry_run(tmp_path: Path, docs_factory: Any) -> None:
    settings = _settings(tmp_path)
    rc, out = _run(retention_verify, settings)
    assert rc == 1 and "does not exist" in out
    rc, out = _run(retention_apply, settings, dry_run=True)
    assert rc == 0 and not settings.embedded_store_path.exists()
    _fill(settings.embedded_store_path, docs_factory, [200, 1]).close()
    rc, out = _run(retention_apply, settings, dry_run=True)
    assert rc == 0 and f"would delete records/{_day(200)}" in out
    assert sorted(_days(settings.embedded_store_path)) == sorted([_day(200), _day(1)])


def test_enforcer_speed_on_a_large_store(tmp_path: Path, docs_factory: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path)
    per_day, ages = 1000, list(range(0, 200, 2))  # 100 days x 1000 records, 55 days past the limit
    started = time.perf_counter()
    _fill(settings.embedded_store_path, docs_factory, ages, per_day=per_day).close()
    fill = time.perf_counter() - started
    report = enforce(settings)
    expired_days = [a for a in ages if a >= N + 2]
    assert report.ok and len(report.deleted) == len(expired_days)
    assert sum(_days(settings.embedded_store_path).values()) == per_day * (len(ages) - len(expired_days))
    with capsys.disabled():
        print(f"\n[retention] embedded store: {per_day * len(ages)} records in {len(ages)} days (filled in "
              f"{fill:.1f}s); enforcer deleted {per_day * len(expired_days)} records / {len(expired_days)} days "
              f"in {report.seconds:.2f}s")


def test_digest_days_follow_the_same_rule(tmp_path: Path, docs_factory: Any) -> None:
    settings = _settings(tmp_path)
    _fill(settings.embedded_store_path, docs_factory, [N + 2, N + 1]).close()
    with sqlite3.connect(settings.embedded_store_path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS digests (id TEXT PRIMARY KEY, producer TEXT NOT NULL, "
                     "ts TEXT NOT NULL, day TEXT NOT NULL, doc TEXT NOT NULL)")
        for age in (N + 2, N + 1):
            conn.execute("INSERT INTO digests VALUES (?, 'p', 'x', ?, '{}')", (f"d{age}", _day(age)))
    report = enforce(settings)
    assert sorted(p.name for p in report.deleted) == sorted([f"records/{_day(N + 2)}", f"digests/{_day(N + 2)}"])
    with sqlite3.connect(settings.embedded_store_path) as conn:
        assert [r[0] for r in conn.execute("SELECT day FROM digests")] == [_day(N + 1)]
