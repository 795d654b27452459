"""The identity, retry-grouping, outcome/timing and document steps of the record build, each on its own."""

from __future__ import annotations

import json
import math

import pytest
from capture_factory import capture

from sidecar.config import AppSettings, load_settings
from sidecar.record._document import document, encode, with_counts
from sidecar.record._identity import identity_fields
from sidecar.record._outcome import call_metadata, drop_cached_usage, error_type, outcome_fields, time_to_first_chunk
from sidecar.record._retry import RETRY_WINDOW_NS, RetryGroups

CHAT = "https://api.openai.com/v1/chat/completions"
KEY = "sk-proj-" + "a" * 40


def fingerprint(value: str) -> str:
    return f"fp({len(value)})"


# -- identity -------------------------------------------------------------------------------------


def test_user_and_conversation_by_precedence_context_header_body() -> None:
    s = load_settings(AppSettings, user_header="x-user", conversation_header="x-conv", hmac_key="k" * 32)
    cap = capture(CHAT, headers=[("x-user", "from-header"), ("x-conv", "conv-header")])
    assert identity_fields(cap, s, "from-body", "conv-body", fingerprint) == {
        "user_id": "from-header", "conversation_id": "conv-header"}
    cap.user_id, cap.conversation_id = "from-context", "conv-context"
    got = identity_fields(cap, s, "from-body", "conv-body", fingerprint)
    assert (got["user_id"], got["conversation_id"]) == ("from-context", "conv-context")
    plain = load_settings(AppSettings, hmac_key="k" * 32)  # no headers configured: the body's own fields
    got = identity_fields(capture(CHAT, headers=[("x-user", "h")]), plain, "from-body", "conv-body", fingerprint)
    assert (got["user_id"], got["conversation_id"]) == ("from-body", "conv-body")


@pytest.mark.parametrize("url,headers,location", [
    (CHAT, [("authorization", f"Bearer {KEY}")], "header"),
    (CHAT, [("x-api-key", KEY)], "header"),
    (f"https://generativelanguage.googleapis.com/v1beta/models/g:generateContent?alt=json&key={KEY}", [], "query"),
])
def test_the_key_is_fingerprinted_never_kept(url: str, headers: list[tuple[str, str]], location: str) -> None:
    settings = load_settings(AppSettings, hmac_key="k" * 32)
    got = identity_fields(capture(url, headers=headers), settings, None, None, fingerprint)
    assert got["credential_fingerprint"] == f"fp({len(KEY)})" and got["credential_location"] == location
    assert KEY not in json.dumps(got)


def test_no_key_no_fingerprint() -> None:
    got = identity_fields(capture(CHAT), load_settings(AppSettings, hmac_key="k" * 32), None, None, fingerprint)
    assert "credential_fingerprint" not in got and got["user_id"] is None


# -- retry grouping ---------------------------------------------------------------------------------


def test_attempts_of_one_request_share_a_group_and_get_their_delay() -> None:
    groups = RetryGroups(lambda data: data.decode()[:60])
    first = groups.group("POST", "api.x", "/v1/chat", b'{"a": 1}')
    assert first == groups.group("POST", "api.x", "/v1/chat", b'{"a": 1}')
    assert first != groups.group("POST", "api.x", "/v1/chat", b'{"a": 2}')
    assert first != groups.group("POST", "api.y", "/v1/chat", b'{"a": 1}')
    t = 10**18
    assert groups.attempt(first, t, 2 * 10**9) is None  # a first attempt has no delay
    assert groups.attempt(first, t + 3 * 10**9, 10**9) == 1.0  # started 1 s after the first one ended
    assert groups.attempt(first, t + 4 * 10**9 - 1, 0) is None  # overlaps the previous attempt
    assert groups.attempt(first, t + 4 * 10**9 + RETRY_WINDOW_NS, 0) is None  # too late: a new request
    assert groups.attempt("other", t, 0) is None


def test_the_group_reads_a_bounded_part_of_the_body() -> None:
    seen: list[int] = []
    groups = RetryGroups(lambda data: str(seen.append(len(data))))
    groups.group("POST", "h", "/p", b"x" * 1_000_000)
    assert seen[0] < 70_000


# -- outcome and timing -----------------------------------------------------------------------------


class BrokenPipeline(ConnectionError):
    pass


def test_error_type_names_the_exception_then_the_status_then_the_stream() -> None:
    cap = capture(CHAT, status=None)
    cap.exception = BrokenPipeline()
    assert error_type(cap) == f"{__name__.split('.')[0]}.BrokenPipeline"  # the top-level package only
    cap.exception = TimeoutError()
    assert error_type(cap) == "TimeoutError"  # builtins are not prefixed
    assert error_type(capture(CHAT, status=429)) == "429"
    cap = capture(CHAT, status=200)
    assert error_type(cap) is None
    cap.stream_outcome = "error"
    assert error_type(cap) == "stream_error"


def test_call_metadata() -> None:
    cap = capture("HTTP://api.openai.com/v1/chat/completions", status=500)
    cap.start_ns, cap.start_perf, cap.end_perf = 1_700_000_000_123_456_000, 5.0, 5.25
    m = call_metadata(cap, 7, "prod", "svc")
    assert (m["event_id"], m["sequence"], m["service_name"]) == ("prod-7", 7, "svc")
    assert m["timestamp"] == "2023-11-14T22:13:20.123456Z" and m["event_duration"] == 250_000_000
    assert (m["event_outcome"], m["error_type"], m["url_scheme"]) == ("failure", "500", "http")
    cap.url = "gopher://x/"
    assert call_metadata(cap, 1, "p", "s")["url_scheme"] == "other"


def test_a_stream_closed_after_its_finish_reason_completed() -> None:
    cap = capture(CHAT)
    cap.streamed, cap.stream_outcome = True, "closed_early"
    assert outcome_fields(cap, {"response_finish_reasons": ["stop"]}, None)["stream_outcome"] == "completed"
    assert outcome_fields(cap, {}, None)["stream_outcome"] == "closed_early"
    cap.streamed = False
    assert outcome_fields(cap, {}, "gzip")["stream_outcome"] is None
    assert outcome_fields(cap, {}, "gzip")["response_content_encoding"] == "gzip"


def test_time_to_first_chunk_for_streams_only() -> None:
    cap = capture(CHAT)
    assert cap.response is not None
    cap.start_perf, cap.response.first_at = 10.0, 10.1234567
    assert time_to_first_chunk(cap, False) is None
    assert time_to_first_chunk(cap, True) == 0.123457
    cap.streamed = True
    assert time_to_first_chunk(cap, False) == 0.123457
    cap.response.first_at = None
    assert time_to_first_chunk(cap, True) is None


def test_a_cached_answer_has_no_usage() -> None:
    fields = {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 1, "response_model": "m"}
    cap = capture(CHAT)
    drop_cached_usage(cap, fields)
    assert fields["input_tokens"] == 3
    cap.cache_hit = True
    drop_cached_usage(cap, fields)
    assert fields == {"response_model": "m"}


# -- document and spool line -------------------------------------------------------------------------


def test_document_uses_schema_names_and_order_and_drops_none() -> None:
    doc = document(response_content="c", event_id="p-1", timestamp="t", user_id=None, status_code=200)
    assert list(doc) == ["event.id", "@timestamp", "sidecar.schema_version", "http.response.status_code",
                         "sidecar.response.content"]
    with pytest.raises(TypeError):
        document(event_id="p-1", not_a_field=1)


def test_redaction_counts_sit_in_their_place_or_are_left_out() -> None:
    counts: dict[str, int] = {}
    doc = document(response_content="c", event_id="p-1", timestamp="t", redaction_counts=counts, redaction_total=0)
    counts.update(EMAIL=2, PHONE=1)  # filled after the document is made (the final pass redacts its fields)
    doc = with_counts(doc, counts)
    assert list(doc)[-3:] == ["sidecar.redaction.counts", "sidecar.redaction.total", "sidecar.response.content"]
    assert doc["sidecar.redaction.total"] == 3 and doc["sidecar.redaction.counts"] == {"EMAIL": 2, "PHONE": 1}
    empty = with_counts(document(event_id="p-1", timestamp="t", redaction_counts={}, redaction_total=0), {})
    assert list(empty) == ["event.id", "@timestamp", "sidecar.schema_version"]


def test_encode_writes_strict_json() -> None:
    line = encode(document(event_id="p-1", timestamp="t", request_temperature=math.nan, client_timeout=math.inf,
                           request_top_p=0.5, response_content="a \ud800 b"))
    back = json.loads(line.decode("utf-8", errors="strict"))
    assert "gen_ai.request.temperature" not in back and "sidecar.client.timeout" not in back
    assert back["gen_ai.request.top_p"] == 0.5 and back["sidecar.response.content"] == "a \ufffd b"
    assert back["sidecar.content.note"] == "lone_surrogates_replaced"
