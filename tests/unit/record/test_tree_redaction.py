"""``TreeRedaction``: a JSON tree redacted with each long string scanned once per record, and exactly
what ``Redactor.redact_json`` gives, whatever the tree (secret key names, embedded JSON, stand-in look-alikes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.record._tree import TreeRedaction
from sidecar.redact import Redactor

R = Redactor(b"t" * 32)
PII = ["jane.doe@example.com", "AKIAIOSFODNN7EXAMPL3", "4111 1111 1111 1111", "+1 415 555 0100", "123-45-6789",
       "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"]
_word = st.sampled_from(["word", "the", "\n", " ", "\x00", "\x00\ue000\x00", "{", "}", '"', "[1]", *PII])
_long = st.lists(_word, min_size=1, max_size=80).map(" ".join)
_embedded = st.builds(lambda k, v: json.dumps({k: v}), st.sampled_from(["password", "q", "token", "otp"]), _long)
_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
         | st.just("\x00\ue000\x00") | _long | _embedded | st.text(alphabet="abcXYZ019._-", min_size=16, max_size=300))
_key = st.sampled_from(["content", "text", "password", "api_key", "token", "access_token", "role", "arguments", "x"])
_tree = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_key, inner, max_size=4),
                     max_leaves=14)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(_tree, _tree)
def test_the_same_as_redact_json(first: Any, second: Any) -> None:
    tree = TreeRedaction(R)
    for value in (first, second, first):  # the memo of one record serves the later trees of that record
        assert tree.redact(value) == R.redact_json(value)


def test_a_long_string_shared_by_the_body_and_the_messages_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = "please mail jane.doe@example.com the report " * 10
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
    messages = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    seen: list[Any] = []
    real = R.redact_json

    def counting(value: Any) -> Any:
        seen.append(value)
        return real(value)

    redactor = Redactor(b"t" * 32)
    monkeypatch.setattr(redactor, "redact_json", counting)
    tree = TreeRedaction(redactor)
    out_body, body_counts = tree.redact(body)
    out_messages, message_counts = tree.redact(messages)
    assert [v for v in seen if v == prompt] == [prompt]  # one scan of the prompt, not two
    assert (out_body, body_counts) == R.redact_json(body) and (out_messages, message_counts) == R.redact_json(messages)
    tree.forget()
    tree.redact(messages)
    assert [v for v in seen if v == prompt] == [prompt, prompt]  # a new record scans again


def test_a_long_value_under_a_secret_key_is_masked_from_the_real_value() -> None:
    value = {"password": "correct horse battery staple " * 10, "content": "x " * 100}
    out, counts = TreeRedaction(R).redact(value)
    assert (out, counts) == R.redact_json(value) and out["password"].startswith("<SECRET:")
