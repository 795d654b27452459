from __future__ import annotations

import json

from sidecar.providers import StreamSummary, iter_sse_data, parse_error, parse_request, parse_response


def test_openai_request_fields() -> None:
    f = parse_request("openai", {"model": "gpt-4o", "max_completion_tokens": 9, "temperature": 0, "top_p": 0.5,
                                 "stop": "END", "seed": 1, "stream": True, "user": "u1", "presence_penalty": True})
    assert f == {"request_model": "gpt-4o", "request_max_tokens": 9, "request_temperature": 0.0,
                 "request_top_p": 0.5, "request_stop_sequences": ["END"], "request_seed": 1, "request_stream": True,
                 "body_user": "u1"}  # a bool is not a penalty


def test_gemini_and_ollama_request_fields() -> None:
    g = parse_request("gemini", {"generationConfig": {"maxOutputTokens": 5, "topK": 3, "stopSequences": ["x"]}})
    assert g == {"request_max_tokens": 5, "request_top_k": 3.0, "request_stop_sequences": ["x"]}
    o = parse_request("ollama", {"model": "llama3", "options": {"num_predict": 7, "temperature": 0.1}})
    assert o["request_stream"] is True and o["request_max_tokens"] == 7  # Ollama streams by default


def test_odd_shapes_give_fewer_fields_not_errors() -> None:
    assert parse_request("openai", ["not", "an", "object"]) == {}
    assert parse_request("openai", {"model": 5, "temperature": "hot"}) == {"request_stream": False}
    assert parse_response("anthropic", {"usage": "none", "content": 3}) == {}
    assert parse_error("openai", {"error": None}) == {}


def test_error_bodies() -> None:
    assert parse_error("openai", {"error": {"message": "m", "type": "t", "code": "rate_limit_exceeded"}}) == {
        "error_code": "rate_limit_exceeded", "error_message": "m"}
    assert parse_error("anthropic", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}) == {
        "error_code": "overloaded_error", "error_message": "busy"}
    assert parse_error("gemini", {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q"}})[
        "error_code"] == "429"
    assert parse_error("ollama", {"error": "model not found"}) == {"error_message": "model not found"}


def test_sse_parsing_handles_multiline_data_and_crlf() -> None:
    text = "event: a\r\ndata: {\"x\":\r\ndata: 1}\r\n\r\ndata: [DONE]\r\n\r\n"
    assert list(iter_sse_data(text)) == ['{"x":\n1}', "[DONE]"]


def test_openai_stream_summary() -> None:
    s = StreamSummary("openai", max_chars=5)
    events = [{"id": "c1", "model": "m", "choices": [{"delta": {"content": "hello "}}]},
              {"id": "c1", "model": "m", "choices": [{"delta": {"content": "world"}, "finish_reason": "stop"}]},
              {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}]
    s.feed([json.dumps(e) for e in events] + ["[DONE]", "not json"])
    assert s.fields["response_finish_reasons"] == ["stop"]
    assert s.fields["input_tokens"] == 3 and s.fields["output_tokens"] == 2
    assert s.text() == "hello" and s.truncated  # capped at max_chars


def test_anthropic_stream_summary() -> None:
    s = StreamSummary("anthropic", max_chars=100)
    s.feed(json.dumps(e) for e in [
        {"type": "message_start", "message": {"id": "msg", "model": "c", "usage": {"input_tokens": 10}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 4}},
    ])
    assert s.fields == {"response_id": "msg", "response_model": "c", "input_tokens": 10,
                        "response_finish_reasons": ["max_tokens"], "output_tokens": 4}
    assert s.text() == "hi"


def test_gemini_json_array_stream() -> None:
    s = StreamSummary("gemini", max_chars=100)
    s.feed([json.dumps([{"candidates": [{"content": {"parts": [{"text": "a"}]}}]},
                        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
                         "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2}}])])
    assert s.text() == "ab" and s.fields["output_tokens"] == 2 and s.fields["response_finish_reasons"] == ["STOP"]
