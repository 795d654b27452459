"""The advice observer (fed shipped batches in `sidecar run`) and `sidecar advise` (stored records) give the
same findings for the same records, whatever the batches and their order; the observer stays bounded and
never raises into the shipper."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from sidecar.daemon.advise import AdviceMetrics, AdviceObserver, Limits, advise

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc).timestamp()


def stamp(seconds_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_ago, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Few values per field, so groups repeat, rules fire and examples compete (None: the field is absent).
VALUES: dict[str, list[Any]] = {
    "service.name": ["checkout", "search"],
    "gen_ai.provider.name": ["openai", "anthropic"],
    "sidecar.credential.location": ["header", "query"],
    "url.scheme": ["http", "https"],
    "server.address": ["api.example.com", "127.0.0.1", ""],
    "sidecar.client.timeout_set": [True, False],
    "sidecar.client.timeout": [10.0, 600.0, "600"],
    "http.request.body.bytes": [100, 9 * 1024 * 1024, 11 * 1024 * 1024],
    "gen_ai.request.stream": [True, False],
    "event.duration": [10**9, 45 * 10**9],
    "sidecar.connection.reused": [True, False, False],
    "sidecar.retry.group": ["g1", "g2", "g3"],
    "http.response.status_code": [200, 200, 429, 503, 400],
    "sidecar.retry.delay": [None, 0.05, 1.0, 12.0],
    "sidecar.response.retry_after": [None, 1.0, 10.0],
    "http.request.resend_count": [0, 1],
    "sidecar.cache.hit": [False, False, True],
}
record_fields = st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in VALUES.items()})


def random_fields(rnd: random.Random) -> dict[str, Any]:
    return {k: rnd.choice(v) for k, v in VALUES.items() if rnd.random() < 0.5}


records = st.lists(st.tuples(st.floats(0, 3500), record_fields), min_size=1, max_size=60)


def build(items: list[tuple[float, dict[str, Any]]]) -> list[dict[str, Any]]:
    # Timestamps on whole milliseconds, some shared by several records (ties broken by id).
    return [{"event.id": f"r-{i:03d}", "@timestamp": stamp(round(ago, -2) / 10), **fields}
            for i, (ago, fields) in enumerate(items)]


def observer(**kw: Any) -> AdviceObserver:
    return AdviceObserver(Limits(), clock=lambda: NOW, **kw)


@settings(max_examples=300, deadline=None)
@given(records, st.randoms(use_true_random=False))
def test_observer_and_cli_agree(items: list[tuple[float, dict[str, Any]]], rnd: random.Random) -> None:
    docs = build(items)
    cli = advise(sorted(docs, key=lambda d: (d["@timestamp"], d["event.id"])))  # as the store returns them
    shipped = docs[:]
    rnd.shuffle(shipped)  # spool order differs from store order: several producers, several segments
    obs = observer()
    while shipped:
        n = rnd.randint(1, 10)
        obs.observe(shipped[:n])
        shipped = shipped[n:]
    got = obs.report()
    assert [f.to_json() for f in got.findings] == [f.to_json() for f in cli.findings]
    assert got.records == cli.records == len(docs)
    assert obs.errors == 0 and obs.late == 0


def test_the_rules_fire_in_the_generated_records() -> None:
    """The agreement above is not vacuous: the generator's records break every rule somewhere."""
    rnd = random.Random(7)
    fired: set[str] = set()
    for _ in range(200):
        items = [(rnd.uniform(0, 3500), random_fields(rnd)) for _ in range(40)]
        fired |= {f.rule for f in advise(build(items)).findings}
    assert fired == {"key_in_query", "plain_http", "retry_storm", "no_timeout", "long_timeout", "large_request",
                     "near_size_limit", "no_connection_reuse", "long_unstreamed", "repeated_prompt"}


def test_old_records_are_late_and_windows_expire() -> None:
    clock = [NOW]
    obs = AdviceObserver(Limits(), clock=lambda: clock[0])
    obs.observe([{"event.id": "old", "@timestamp": stamp(4000), "sidecar.credential.location": "query"},
                 {"event.id": "new", "@timestamp": stamp(60), "sidecar.credential.location": "query"}])
    assert obs.late == 1
    assert [(f.rule, f.examples) for f in obs.report().findings] == [("key_in_query", ["new"])]
    clock[0] = NOW + 3600
    assert obs.report().findings == [] and obs.windows == {}


def test_retry_groups_are_bounded() -> None:
    obs = observer(max_attempts=10)
    obs.observe([{"event.id": f"r-{i}", "@timestamp": stamp(i), "sidecar.retry.group": f"g{i}",
                  "sidecar.credential.location": "query"} for i in range(50)])
    assert sum(len(a) for t in obs.windows.values() for a in t.groups.values()) == 10
    assert obs.dropped == 40
    assert obs.report().findings[0].count == 50  # the other rules still count every record


def test_a_bad_record_is_counted_and_skipped_never_raised() -> None:
    registry = CollectorRegistry()
    obs = observer(metrics=AdviceMetrics(registry))
    good = {"event.id": "ok", "@timestamp": stamp(10), "sidecar.credential.location": "query"}
    obs.observe([cast(dict[str, Any], None), cast(dict[str, Any], ["not", "a", "record"]), good])
    assert obs.errors == 2
    assert registry.get_sample_value("sidecar_advice_errors_total") == 2
    assert [f.examples for f in obs.report().findings] == [["ok"]]
    obs.publish()
    assert registry.get_sample_value("sidecar_advice_findings", {
        "rule": "key_in_query", "severity": "error", "service": "unknown", "provider": "unknown"}) == 1


def test_findings_are_published_from_a_thread_of_their_own() -> None:
    registry = CollectorRegistry()
    obs = observer(metrics=AdviceMetrics(registry))
    stop = threading.Event()
    thread = obs.publish_every(0.01, stop)
    try:
        assert thread.is_alive() and thread is not threading.current_thread()
        obs.observe([{"event.id": "k", "@timestamp": stamp(5), "sidecar.credential.location": "query"}])
        labels = {"rule": "key_in_query", "severity": "error", "service": "unknown", "provider": "unknown"}
        for _ in range(1000):  # waits for the publishing thread's next round (not a timing assertion)
            if registry.get_sample_value("sidecar_advice_findings", labels) == 1:
                break
            stop.wait(0.01)
        assert registry.get_sample_value("sidecar_advice_findings", labels) == 1
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
