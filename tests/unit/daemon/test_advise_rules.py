"""Rules that real traffic here cannot exercise (no non-loopback host, no 30 s generation)."""

from __future__ import annotations

from sidecar.daemon.advise import advise


def doc(i: int, **fields: object) -> dict[str, object]:
    return {"event.id": f"p-{i}", "@timestamp": f"2026-11-25T10:00:{i:02d}.000000Z", "service.name": "svc",
            "gen_ai.provider.name": "openai", **fields}


def test_plain_http_only_off_the_machine() -> None:
    report = advise([doc(1, **{"url.scheme": "http", "server.address": "api.example.com"}),
                     doc(2, **{"url.scheme": "http", "server.address": "127.0.0.1"}),
                     doc(3, **{"url.scheme": "https", "server.address": "api.openai.com"})])
    assert [(f.rule, f.examples) for f in report.findings] == [("plain_http", ["p-1"])]
    assert report.has_errors


def test_long_unstreamed_and_long_timeouts() -> None:
    report = advise([doc(1, **{"gen_ai.request.stream": False, "event.duration": 45 * 10**9}),
                     doc(2, **{"gen_ai.request.stream": True, "event.duration": 45 * 10**9}),
                     doc(3, **{"sidecar.client.timeout_set": True, "sidecar.client.timeout": 600.0}),
                     doc(4, **{"http.request.body.bytes": 9 * 1024 * 1024})])
    assert sorted(f.rule for f in report.findings) == ["long_timeout", "long_unstreamed", "near_size_limit"]
    assert not report.has_errors


def test_retry_after_must_be_honoured() -> None:
    report = advise([doc(1, **{"sidecar.retry.group": "g", "http.response.status_code": 429,
                               "sidecar.response.retry_after": 10.0}),
                     doc(2, **{"sidecar.retry.group": "g", "http.response.status_code": 429,
                               "sidecar.retry.delay": 2.0, "sidecar.response.retry_after": 10.0}),
                     doc(3, **{"sidecar.retry.group": "g", "http.response.status_code": 200,
                               "sidecar.retry.delay": 10.5})])
    assert [(f.rule, f.examples) for f in report.findings] == [("retry_storm", ["p-2"])]


def test_token_spend_by_caller_excludes_cache_hits() -> None:
    report = advise([doc(1, **{"user.id": "alice", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}),
                     doc(2, **{"user.id": "bob", "gen_ai.usage.input_tokens": 100}),
                     doc(3, **{"user.id": "alice", "sidecar.cache.hit": True, "gen_ai.usage.input_tokens": 999})])
    assert report.spend == [("bob", 100), ("alice", 15)]
