"""Exactly one record per call, whatever the content: content withheld with a reason, metadata kept."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

import pytest
from capture_factory import builder, capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.record import AuditRecord, build
from sidecar.record.build import REDACTION_FAILED, encode
from sidecar.redact import RedactionError, Redactor

CHAT = "https://api.openai.com/v1/chat/completions"


def written(doc: dict[str, Any]) -> dict[str, Any]:
    """What lands in the spool: strict UTF-8 JSON that the schema accepts."""
    line = encode(doc)

    def refuse(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant}")

    back = json.loads(line.decode("utf-8", errors="strict"), parse_constant=refuse)
    AuditRecord.model_validate(back)
    return back  # type: ignore[no-any-return]


def test_lone_surrogate_escape_still_gives_a_record() -> None:
    body = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi \\udc00 mail a@b.co"}]}'
    doc = written(builder().build(capture(CHAT, body=body), 1))
    assert doc["gen_ai.request.model"] == "gpt-4o" and doc["http.response.status_code"] == 200
    assert "lone_surrogates_replaced" in doc["sidecar.content.note"]
    assert "\ufffd" in doc["sidecar.request.content"] and "a@b.co" not in doc["sidecar.request.content"]


@pytest.mark.parametrize("depth", [900, 5000, 100_000])
def test_deeply_nested_json_gives_a_record_with_content_withheld(depth: int) -> None:
    body = ('{"model": "gpt-4o", "x": ' + "[" * depth + "]" * depth + "}").encode()
    doc = written(builder().build(capture(CHAT, body=body, response=body), 1))
    assert doc["http.response.status_code"] == 200 and doc["gen_ai.provider.name"] == "openai"
    content = doc.get("sidecar.request.content")
    assert content in (None, REDACTION_FAILED) or len(content) <= 16384
    if content is None:
        assert "request_json_too_deep" in doc["sidecar.content.note"]


def test_redactor_failure_withholds_content_not_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RedactionError("rule ran past its budget")

    b = builder()
    monkeypatch.setattr(b.redactor, "redact_json", boom)
    monkeypatch.setattr(b.redactor, "redact_bounded", boom)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "secret a@b.co"}]}).encode()
    doc = written(b.build(capture(CHAT, body=body), 1))
    assert doc["sidecar.request.content"] == REDACTION_FAILED
    assert doc["gen_ai.request.model"] == "[withheld: redaction failed]"  # a field the redactor could not pass
    assert "a@b.co" not in json.dumps(doc)


def test_a_failure_anywhere_in_the_build_falls_back_to_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    b = builder()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError

    monkeypatch.setattr(build, "response_fields", broken)
    doc = written(b.build(capture(CHAT + "?key=AIzaSy" + "B" * 33), 7))
    assert doc["sidecar.content.note"] == "content_withheld:too_deep"
    assert doc["event.id"] == "p0-7" and doc["http.response.status_code"] == 200
    assert "AIzaSy" not in json.dumps(doc) and "sidecar.request.content" not in doc


@pytest.mark.parametrize("response,headers,note", [
    (b"\x00\x01binary", [], "response_binary"),
    (b"not gzip at all", [("content-encoding", "gzip")], "undecodable_gzip"),
    (b"ok \xff\xfe bad utf-8", [], "response_invalid_utf8"),
    (gzip.compress(b'{"id": "x"}'), [("content-encoding", "br")], "unsupported_encoding_br"),
])
def test_undecodable_bodies_give_a_record_with_a_note(response: bytes, headers: list[tuple[str, str]],
                                                      note: str) -> None:
    doc = written(builder().build(capture(CHAT, response=response, response_headers=headers), 1))
    assert note in doc["sidecar.content.note"]


def test_huge_body_is_cut_after_redaction() -> None:
    key = "AKIAIOSFODNN7EXAMPL3"
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 3000 + "\n-----END RSA PRIVATE KEY-----"
    for shift in range(0, 40, 3):  # the key sits across the cut, shifted by what came before
        text = pem + " " + "y" * (16384 - len(pem) - 10 + shift) + " " + key + " tail"
        body = json.dumps({"model": "m", "prompt": text}).encode()
        doc = written(builder().build(capture("https://api.openai.com/v1/completions", body=body,
                                              cap_bytes=len(body) - 5), 1))
        content = doc["sidecar.request.content"]
        assert len(content) <= 16384
        for n in range(4, len(key) + 1):
            assert key[:n] not in content, (shift, n)
        assert "BEGIN RSA" not in content


# ---------------------------------------------------------------------------------- fuzzing

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
_body = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    _json.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda m, v: json.dumps({"model": m, "messages": v, "stop": v, "temperature": v, "max_tokens": v,
                                       "seed": v}).encode(), st.text(max_size=30), _json),
)
_ctype = st.sampled_from(["application/json", "text/event-stream", "application/x-ndjson", "text/plain", ""])
_url = st.sampled_from([CHAT, "https://api.anthropic.com/v1/messages", "http://localhost:11434/api/chat",
                        "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse",
                        "https://x.example/v1/embeddings"])
_B = builder()
FUZZ_EXAMPLES = int(os.environ.get("SIDECAR_FUZZ_EXAMPLES", "3000"))  # raise it for a longer campaign


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(url=_url, body=_body, response=_body, ctype=_ctype, status=st.sampled_from([200, 400, 429, 500, None]),
       small_cap=st.booleans(), encoding=st.sampled_from([None, "gzip", "deflate", "br", "identity"]))
def test_fuzz_every_call_gives_exactly_one_valid_record(url: str, body: bytes, response: bytes, ctype: str,
                                                        status: int | None, small_cap: bool,
                                                        encoding: str | None) -> None:
    headers = [("content-encoding", encoding)] if encoding else []
    cap = capture(url, body=body, response=response, status=status, content_type=ctype,
                  cap_bytes=64 if small_cap else 10 * 1024 * 1024, response_headers=headers)
    doc = written(_B.build(cap, 1))
    assert doc["event.id"] == "p0-1"


def test_fuzz_redactor_on_random_text_never_raises_and_never_grows_past_a_bound() -> None:
    r = Redactor(b"k" * 32)

    @settings(max_examples=2000, deadline=None)
    @given(st.text(max_size=300), st.integers(min_value=1, max_value=200))
    def run(text: str, limit: int) -> None:
        out, _, _ = r.redact_bounded(text, limit)
        assert len(out) <= limit

    run()
