"""The decode and provider-parse steps of the record build, each on its own."""

from __future__ import annotations

import gzip
import json

from capture_factory import capture

from sidecar.record._decode import read_request, read_response, response_encoding
from sidecar.record._parse import request_fields, response_fields
from sidecar.record.capture import BodyTee

CHAT = "https://api.openai.com/v1/chat/completions"
GEMINI_STREAM = "https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:streamGenerateContent"


def digest(raw: bytes) -> str:
    return f"d{len(raw)}"


# -- decode -------------------------------------------------------------------------------------


def test_request_json_is_parsed_once_and_kept_with_its_bytes() -> None:
    body = b'{"model": "m", "messages": []}'
    notes: list[str] = []
    got = read_request(capture(CHAT, body=body), notes)
    assert got.parsed == {"model": "m", "messages": []} and got.text == body.decode() and got.raw == body
    assert not got.truncated and notes == []


def test_a_request_over_the_cap_is_not_parsed() -> None:
    body = b'{"model": "m", "messages": []}'
    got = read_request(capture(CHAT, body=body, cap_bytes=10), [])
    assert got.truncated and got.parsed is None and got.raw == body[:10]


def test_a_request_nested_too_deep_is_withheld_with_a_note() -> None:
    notes: list[str] = []
    got = read_request(capture(CHAT, body=b"[" * 100_000 + b"]" * 100_000), notes)
    assert got.text is None and got.parsed is None and notes == ["request_json_too_deep"]


def test_a_streamed_upload_is_read_from_its_tee_and_sizes_the_capture() -> None:
    cap = capture(CHAT, body=None)
    cap.request_tee = BodyTee(8)
    cap.request_tee.add(b'{"model": "long-name"}')
    got = read_request(cap, [])
    assert got.raw == b'{"model"' and got.truncated and cap.request_size == 22 and cap.request_truncated
    assert got.tail == b': "long-name"}'


def test_response_is_decompressed_and_parsed_when_it_is_plain_json() -> None:
    cap = capture(CHAT, response=gzip.compress(b'{"id": "x"}'), response_headers=[("content-encoding", "gzip")])
    got = read_response(cap, response_encoding(cap), 10_000, False, [])
    assert got is not None and got.framing == "json" and got.parsed == {"id": "x"}
    cap.response_decoded = True  # the client undid the encoding already: nothing left to undo
    assert response_encoding(cap) is None


def test_response_framing_follows_content_type_format_and_path() -> None:
    def framing(url: str, ctype: str, body: bytes, stream_requested: bool = False) -> str:
        got = read_response(capture(url, response=body, content_type=ctype), None, 10_000, stream_requested, [])
        assert got is not None
        return got.framing

    assert framing(CHAT, "text/event-stream", b'data: {"a": 1}') == "sse"
    assert framing(CHAT, "application/x-ndjson", b'{"a": 1}') == "ndjson"
    assert framing("http://localhost:11434/api/chat", "application/json", b'{"a": 1}', True) == "ndjson"
    assert framing("http://localhost:11434/api/chat", "application/json", b'{"a": 1}', False) == "json"
    assert framing(GEMINI_STREAM, "application/json", b' [{"a": 1}]') == "array"
    assert framing(CHAT, "application/json", b' [{"a": 1}]') == "json"


def test_a_stream_is_not_parsed_as_json_and_binary_has_no_text() -> None:
    got = read_response(capture(CHAT, response=b'{"a": 1}', content_type="text/event-stream"), None, 100, False, [])
    assert got is not None and got.parsed is None
    notes: list[str] = []
    got = read_response(capture(CHAT, response=b"\x00\x01\x02"), None, 100, False, notes)
    assert got is not None and got.framing == "none" and got.text is None and notes == ["response_binary"]


def test_a_response_over_the_cap_keeps_its_tail_unparsed() -> None:
    body = b'{"id": "x", "pad": "' + b"y" * 100 + b'"}'
    got = read_response(capture(CHAT, response=body, cap_bytes=20), None, 10_000, False, [])
    assert got is not None and got.truncated and got.parsed is None and got.text == body[:20].decode()
    assert got.tail_text == body[20:].decode()


# -- provider parse -------------------------------------------------------------------------------


def test_request_fields_from_the_parsed_body() -> None:
    body = json.dumps({"model": "gpt-4o", "temperature": 0.3, "messages": [{"role": "user", "content": "hi"}]})
    f, text, parsed = request_fields(capture(CHAT).endpoint, read_request(capture(CHAT, body=body.encode()), []),
                                     digest, [])
    assert f["request_model"] == "gpt-4o" and f["request_temperature"] == 0.3
    assert f["input_messages"] == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert text == body and parsed == json.loads(body)


def test_request_fields_salvaged_from_a_body_over_the_cap() -> None:
    body = b'{"model": "claude-x", "stream": true, "messages": [{"content": "' + b"x" * 200 + b'"}]}'
    cap = capture(CHAT, body=body, cap_bytes=50)
    f, _, parsed = request_fields(cap.endpoint, read_request(cap, []), digest, [])
    assert f == {"request_model": "claude-x", "request_stream": True} and parsed is None


def test_inline_media_leaves_the_content_as_a_marker() -> None:
    image = "data:image/png;base64," + "QUJD" * 400
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image}}]}]}).encode()
    cap = capture(CHAT, body=body)
    _, text, parsed = request_fields(cap.endpoint, read_request(cap, []), digest, [])
    assert text is not None and "QUJDQUJD" not in text and "QUJDQUJD" not in json.dumps(parsed)
    assert json.loads(text) == parsed


def test_the_path_names_the_model_and_the_stream() -> None:
    cap = capture(GEMINI_STREAM, body=b'{"contents": []}')
    f, _, _ = request_fields(cap.endpoint, read_request(cap, []), digest, [])
    assert f["request_model"] == "gemini-pro" and f["request_stream"] is True


def test_a_streamed_answer_is_assembled() -> None:
    events = [{"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": w}}]}
              for w in ("He", "llo")]
    events.append({"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    cap = capture(CHAT, response=raw, content_type="text/event-stream")
    f, text, parsed, truncated = response_fields(cap.endpoint, read_response(cap, None, 10_000, True, []), 200,
                                                 10_000, digest, [])
    assert text == "Hello" and parsed is None and not truncated
    assert f["response_finish_reasons"] == ["stop"] and f["response_model"] == "gpt-4o"
    assert f["output_messages"][0]["parts"] == [{"type": "text", "content": "Hello"}]


def test_a_plain_answer_and_an_error_body() -> None:
    answer = {"id": "r1", "model": "gpt-4o-1", "choices": [{"index": 0, "finish_reason": "length",
                                                            "message": {"role": "assistant", "content": "ok"}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    cap = capture(CHAT, response=json.dumps(answer).encode())
    f, text, parsed, _ = response_fields(cap.endpoint, read_response(cap, None, 10_000, False, []), 200, 10_000,
                                         digest, [])
    assert (f["response_id"], f["response_model"], f["input_tokens"], f["output_tokens"]) == ("r1", "gpt-4o-1", 3, 1)
    assert f["response_finish_reasons"] == ["length"] and parsed == answer and text == json.dumps(answer)
    raw = json.dumps({"error": {"message": "bad key", "code": "invalid_api_key"}}).encode()
    cap = capture(CHAT, response=raw)
    failed, _, _, _ = response_fields(cap.endpoint, read_response(cap, None, 10_000, False, []), 401, 10_000,
                                      digest, [])
    assert failed["error_message"] == "bad key" and failed["error_code"] == "invalid_api_key"


def test_no_fields_from_a_body_that_is_not_text() -> None:
    cap = capture(CHAT, response=b"\x00binary")
    assert response_fields(cap.endpoint, read_response(cap, None, 100, False, []), 500, 100, digest, []) == (
        {}, None, None, False)
    assert response_fields(cap.endpoint, None, None, 100, digest, []) == ({}, None, None, False)
