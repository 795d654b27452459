"""Retention on a real Elasticsearch (the test distribution has no ILM and no data streams, so the
sidecar's enforcer is what runs here; the ILM / ISM bodies are tested by structure in tests/unit)."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from typing import Any

import pytest

from sidecar.config import ShipperSettings
from sidecar.retention import enforce, retention_apply, retention_verify
from sidecar.retention._cluster import Client, detect
from sidecar.retention._policies import data_stream_template, index_template, meta_index

N = 90


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _name(prefix: str, age: int, kind: str = "") -> str:
    day = _today() - dt.timedelta(days=age)
    return f"{prefix}-{kind + '-' if kind else ''}{day:%Y.%m.%d}"


def _create(es: Any, index: str, docs: int = 1) -> None:
    es.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    for i in range(docs):
        es.request("POST", f"/{index}/_doc?refresh=true", {"@timestamp": "2000-01-01T00:00:00Z", "n": i},
                   ok=(201,))


def _settings(url: str, prefix: str, **kw: Any) -> ShipperSettings:
    return ShipperSettings(elasticsearch_url=url, index_prefix=prefix, **kw)


def _run(fn: Any, settings: ShipperSettings, **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    rc = fn(settings, out=out, **kw)
    return rc, out.getvalue()


@pytest.fixture
def layout(es: Any, es_prefix: str) -> dict[str, list[str]]:
    """Indices dated on both sides of the limit; returns the names expected gone and kept."""
    p = es_prefix
    gone = [
        _name(p, 400), _name(p, 120), _name(p, N + 2),  # N + 2 days old: the first day deleted
        _name(p, 100, "deadletter"), _name(p, N + 2, "anomalies"), _name(p, N + 2, "digests"),
    ]
    kept = [
        _name(p, N + 1),  # the clock-skew day: past N days, but kept
        _name(p, N),  # just inside the limit
        _name(p, 30), _name(p, 0),
        _name(p, N + 1, "deadletter"), _name(p, 1, "deadletter"),
        _name(p, N, "anomalies"), _name(p, 5, "anomalies"), _name(p, N + 1, "digests"),
        f"{p}-2020.13.45",  # not a date: never touched
        f"{p}-notes",
    ]
    for i, index in enumerate(gone + kept):
        _create(es, index, docs=1 + i % 2)
    return {"gone": gone, "kept": kept}


def test_detects_the_test_server(elasticsearch_url: str) -> None:
    info = detect(Client(elasticsearch_url))
    assert info.distribution == "elasticsearch" and info.version and info.version.startswith("8.")
    assert not info.ilm and not info.serverless and info.mode == "enforcer"


def test_apply_deletes_exactly_the_old_indices(
    es: Any, es_prefix: str, elasticsearch_url: str, layout: dict[str, list[str]]
) -> None:
    settings = _settings(elasticsearch_url, es_prefix)
    rc, out = _run(retention_apply, settings)
    assert rc == 0, out
    assert sorted(es.indices(f"{es_prefix}-*")) == sorted([*layout["kept"], meta_index(es_prefix)])
    for name in layout["gone"]:
        assert f"deleted {name}" in out
    assert "ILM not available" in out and "enforcer" in out
    marker = es.request("GET", f"/{meta_index(es_prefix)}/_doc/retention")["_source"]
    assert marker["retention_days"] == N and marker["mechanism"] == "enforcer"

    rc, out = _run(retention_verify, settings)
    assert rc == 0, out
    oldest = _name(es_prefix, N + 1)
    assert f"oldest {oldest}" in out and f"newest {_name(es_prefix, 0)}" in out
    assert "age limit in force: 90 days" in out and "result: OK" in out

    # Idempotent: a second pass deletes nothing.
    rc, out = _run(retention_apply, settings)
    assert rc == 0 and "deleted 0 partitions" in out


def test_verify_fails_when_an_old_index_comes_back(es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    settings = _settings(elasticsearch_url, es_prefix)
    _create(es, _name(es_prefix, 10))
    assert _run(retention_apply, settings)[0] == 0
    assert _run(retention_verify, settings)[0] == 0
    old = _name(es_prefix, 200, "anomalies")
    _create(es, old)
    rc, out = _run(retention_verify, settings)
    assert rc == 1 and old in out and "past the 90-day limit" in out
    assert _run(retention_apply, settings)[0] == 0
    assert old not in es.indices(f"{es_prefix}-*")
    assert _run(retention_verify, settings)[0] == 0


def test_verify_fails_when_the_limit_in_force_is_shorter(es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    settings = _settings(elasticsearch_url, es_prefix)
    assert _run(retention_apply, settings)[0] == 0
    # Someone ran the enforcer with a 30-day override somewhere: verify reads the limit in force.
    es.request("POST", f"/{meta_index(es_prefix)}/_update/retention?refresh=true",
               {"doc": {"retention_days": 30}})
    rc, out = _run(retention_verify, settings)
    assert rc == 1
    assert "less than SIDECAR_RETENTION_DAYS=90" in out and "below 90 days" in out
    # With the override and a 30-day setting, the same state verifies.
    short = _settings(elasticsearch_url, es_prefix, retention_days=30, allow_short_retention=True)
    assert _run(retention_verify, short)[0] == 0


def test_short_override_deletes_at_the_shorter_limit(es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    young, old = _name(es_prefix, 31), _name(es_prefix, 32)
    _create(es, young)
    _create(es, old)
    short = _settings(elasticsearch_url, es_prefix, retention_days=30, allow_short_retention=True)
    rc, out = _run(retention_apply, short)
    assert rc == 0 and "below 90" in out
    assert es.indices(f"{es_prefix}-2*") == [young]
    rc, out = _run(retention_verify, _settings(elasticsearch_url, es_prefix))
    assert rc == 1 and "30 days" in out


def test_verify_without_apply_fails(es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    _create(es, _name(es_prefix, 3))
    rc, out = _run(retention_verify, _settings(elasticsearch_url, es_prefix))
    assert rc == 1 and "no enforcer limit recorded" in out


def test_dry_run_changes_nothing(es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    old = _name(es_prefix, 150)
    _create(es, old)
    rc, out = _run(retention_apply, _settings(elasticsearch_url, es_prefix), dry_run=True)
    assert rc == 0 and f"would delete {old}" in out
    assert es.indices(f"{es_prefix}-*") == [old]  # no marker index either


def test_enforce_entry_point(es: Any, es_prefix: str, elasticsearch_url: str) -> None:
    old, young = _name(es_prefix, N + 2, "deadletter"), _name(es_prefix, N + 1, "deadletter")
    _create(es, old)
    _create(es, young)
    report = enforce(_settings(elasticsearch_url, es_prefix))
    assert report.ok and [p.name for p in report.deleted] == [old] and [p.name for p in report.kept] == [young]
    marker = es.request("GET", f"/{meta_index(es_prefix)}/_doc/retention")["_source"]
    assert marker["retention_days"] == N and marker["last_deleted"] == [old]


def test_unreachable_cluster_is_a_failure_not_a_crash() -> None:
    settings = ShipperSettings(elasticsearch_url="http://127.0.0.1:9", index_prefix="nowhere")
    rc, out = _run(retention_apply, settings)
    assert rc == 1 and "error:" in out
    rc, out = _run(retention_verify, settings)
    assert rc == 1 and "error:" in out


def test_templates_against_the_real_validator(es: Any, es_prefix: str) -> None:
    """The server validates what it knows: the data stream lifecycle template is accepted as is; the
    ILM-attached template is refused only for the ILM setting this distribution lacks."""
    ds = data_stream_template(N, prefix=es_prefix)
    es.request("PUT", f"/_index_template/{es_prefix}-stream", ds)
    got = es.request("GET", f"/_index_template/{es_prefix}-stream")["index_templates"][0]["index_template"]
    assert got["template"]["lifecycle"]["data_retention"] == f"{N}d" and got["data_stream"] is not None

    tpl = index_template(N, prefix=es_prefix)
    res = es.http.request("PUT", f"{es.url}/_index_template/{es_prefix}-audit", body=json.dumps(tpl).encode(),
                          headers={"Content-Type": "application/json"})
    assert res.status == 400 and b"unknown setting [index.lifecycle.name]" in res.data
    del tpl["template"]["settings"]["index.lifecycle.name"]
    es.request("PUT", f"/_index_template/{es_prefix}-audit", tpl)


def test_enforcer_speed_on_many_indices(es: Any, es_prefix: str, elasticsearch_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # 40 indices on each side of the cut-off; each index creation is a cluster state update (the slow
    # part of this test), so not more.
    old = [_name(es_prefix, N + 2 + i) for i in range(40)]
    young = [_name(es_prefix, i) for i in range(40)]
    for index in old + young:
        es.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    started = time.perf_counter()
    report = enforce(_settings(elasticsearch_url, es_prefix))
    elapsed = time.perf_counter() - started
    assert report.ok and len(report.deleted) == 40 and len(report.kept) == 40
    assert sorted(es.indices(f"{es_prefix}-2*")) == sorted(young)
    with capsys.disabled():
        print(f"\n[retention] enforcer: 80 indices listed, 40 deleted in {elapsed:.2f}s")
