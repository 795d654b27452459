"""The redact step of the record build on its own: each path redacts, cuts after redacting, and fails closed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.record._genai import cut_strings, string_chars
from sidecar.record._redaction import FIELD_WITHHELD, REDACTION_FAILED, RecordRedaction, redact_messages
from sidecar.record.switches import Switches
from sidecar.redact import RedactionError, Redactor

MAIL = "jane.doe@example.com"
AWS = "AKIAIOSFODNN7EXAMPL3"


def redaction(limit: int = 1000) -> RecordRedaction:
    return RecordRedaction(Redactor(b"k" * 32), limit)


def test_json_content_is_redacted_by_value_and_written_compact() -> None:
    counts: dict[str, int] = {}
    parsed = {"messages": [{"content": f"mail {MAIL}"}], "n": 1}
    out, cut = redaction().content(json.dumps(parsed), parsed, counts)
    assert out is not None and MAIL not in out and not cut
    assert json.loads(out)["n"] == 1 and out.startswith('{"messages":[{"content":"mail <EMAIL:')
    assert counts == {"EMAIL": 1}


def test_content_over_the_limit_is_cut_after_redaction() -> None:
    text = "x" * 95 + " " + AWS + " tail"
    counts: dict[str, int] = {}
    out, cut = redaction(limit=100).content(text, None, counts)
    assert out is not None and cut and len(out) <= 100
    assert "AKIA" not in out and "<AWS_ACCESS_KEY" not in out  # the placeholder is dropped whole, not split


def test_text_content_has_its_json_escapes_undone_before_redaction() -> None:
    text = '{"p": "\\u8c22 ' + MAIL.replace("@", "\\u0040") + '"'  # cut JSON: not parsed
    out, _ = redaction().content(text, None, {})
    assert out is not None and "jane.doe" not in out and "谢" in out


def failing(*args: Any, **kwargs: Any) -> Any:
    raise RedactionError("budget")


def test_every_path_fails_closed_and_counts_the_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    r = redaction()
    for name in ("redact_json", "redact_bounded", "redact_url"):
        monkeypatch.setattr(r.redactor, name, failing)
    counts: dict[str, int] = {}
    notes: list[str] = []
    assert r.content(f"x {MAIL}", None, counts) == (REDACTION_FAILED, False)
    assert r.messages([{"content": MAIL}], counts, notes) == (None, False) and notes == ["messages_withheld"]
    assert r.field(MAIL, 100, counts) == FIELD_WITHHELD and r.text(MAIL, 100, counts) == FIELD_WITHHELD
    with pytest.raises(RedactionError):
        r.url(f"https://x/{MAIL}", counts)
    assert r.failures == 4 and counts == {"REDACTION_FAILED": 2}


def test_short_fields_are_redacted_once_and_counted_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    r = redaction()
    calls: list[str] = []
    real = r.redactor.redact_bounded

    def counting(text: str, limit: int) -> Any:
        calls.append(text)
        return real(text, limit)

    monkeypatch.setattr(r.redactor, "redact_bounded", counting)
    counts: dict[str, int] = {}
    first = r.field(f"model {MAIL}", 256, counts)
    assert r.field(f"model {MAIL}", 256, counts) == first and MAIL not in first
    assert calls == [f"model {MAIL}"] and counts == {"EMAIL": 2}


def test_final_pass_skips_safe_and_built_fields_and_cuts_the_others() -> None:
    doc = {"event.id": f"p-{MAIL}", "url.full": f"https://x/{MAIL}", "gen_ai.request.model": f"{MAIL} " + "m" * 300,
           "gen_ai.request.stop_sequences": [f"s {MAIL}", 3]}
    counts: dict[str, int] = {}
    redaction().final_pass(doc, counts)
    assert doc["event.id"] == f"p-{MAIL}" and doc["url.full"] == f"https://x/{MAIL}"  # not this pass's job
    assert MAIL not in doc["gen_ai.request.model"] and len(doc["gen_ai.request.model"]) <= 256
    assert doc["gen_ai.request.stop_sequences"][0].startswith("s <EMAIL:") and counts == {"EMAIL": 2}


def test_url_loses_its_key_and_is_counted() -> None:
    counts: dict[str, int] = {}
    url = redaction().url("https://x.example/v1/m?key=AIzaSy" + "B" * 33 + "&q=1", counts)
    assert "AIzaSy" not in url and url.endswith("&q=1") and sum(counts.values()) == 1


SPAN = Switches(http_old=False, http_new=True, genai_latest=True, content_on_span=True, content_on_event=False)
OFF = Switches(http_old=False, http_new=True, genai_latest=True, content_on_span=False, content_on_event=False)


def test_messages_go_to_the_record_and_the_span_per_their_switches() -> None:
    def fields() -> dict[str, Any]:
        return {"input_messages": [{"role": "user", "parts": [{"type": "text", "content": MAIL}]}],
                "request_model": "m"}

    f = fields()
    counts, span = redact_messages(f, redaction(), True, OFF, [])
    assert MAIL not in json.dumps(f["input_messages"]) and span is None and counts == {"EMAIL": 1}
    f = fields()
    counts, span = redact_messages(f, redaction(), False, SPAN, [])
    assert "input_messages" not in f and span is not None and MAIL not in json.dumps(span["gen_ai.input.messages"])
    f = fields()
    counts, span = redact_messages(f, redaction(), False, OFF, [])
    assert f == {"request_model": "m"} and span is None and counts == {}


def test_messages_are_cut_to_the_content_budget() -> None:
    f: dict[str, Any] = {"input_messages": [{"role": "user", "parts": [{"type": "text", "content": "y" * 80}]},
                                            {"role": "user", "parts": [{"type": "text", "content": "z" * 80}]}]}
    redact_messages(f, redaction(limit=100), True, OFF, [])
    parts = [m["parts"][0]["content"] for m in f["input_messages"]]
    # every string counts (roles and part types too): 100 - 80 - 4 * len("user") = 4 left for the second text
    assert parts == ["y" * 80, "z" * 4] and f["content_truncated"] is True


_tree = st.recursive(st.none() | st.integers() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=4),
                     max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_tree, st.integers(min_value=0, max_value=120))
def test_messages_are_cut_exactly_when_their_strings_pass_the_budget(value: Any, budget: int) -> None:
    """The messages step counts characters instead of making a cut copy it does not need."""
    assert cut_strings(value, budget)[1] == (string_chars(value) > budget)
    if string_chars(value) <= budget:
        assert cut_strings(value, budget)[0] == value


def test_a_streams_text_redacted_in_its_message_is_not_scanned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = f"Dear Jane, we will write to {MAIL} today; the parcel ships by express delivery " * 3
    r = redaction(limit=1000)
    embedded = json.dumps([answer])  # a string holding JSON: a tree walk reads it as JSON, unlike redact_bounded
    r.tree.redact([{"role": "assistant", "parts": [{"type": "text", "content": answer}, {"text": embedded}]}])
    expected = Redactor(b"k" * 32).redact_bounded(answer, 1000)
    monkeypatch.setattr(r.redactor, "redact_bounded", failing)
    counts: dict[str, int] = {}
    assert r.content(answer, None, counts) == (expected[0], False) and counts == expected[1]
    # not remembered (another text, JSON-looking text, or over the limit): the redactor is asked, and here fails
    for text, limit in ((answer + "!", 1000), (embedded, 1000), (answer, 100)):
        r.limit = limit
        assert r.content(text, None, {})[0] == REDACTION_FAILED
