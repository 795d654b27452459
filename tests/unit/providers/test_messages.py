"""Structured GenAI messages from every provider family, whole and streamed, and adversarial bodies."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.providers import StreamSummary, iter_lines, iter_sse_data
from sidecar.providers._media import blob_part, split_data_url, strip_inline_media
from sidecar.providers._messages import request_messages
from sidecar.providers._output import StreamMessages, response_messages

ARGS = {"city": "Paris"}


def digest(raw: bytes) -> str:
    return f"d{len(raw)}"


def test_gemini_request_and_response() -> None:
    img = base64.b64encode(b"\xff\xd8" + b"j" * 100).decode()
    body = {"systemInstruction": {"parts": [{"text": "Be short."}]},
            "contents": [{"role": "user", "parts": [{"text": "What?"}, {"inlineData": {"mimeType": "image/jpeg",
                                                                                        "data": img}}]},
                         {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": ARGS}}]},
                         {"role": "user", "parts": [{"functionResponse": {"name": "weather",
                                                                          "response": {"t": 14}}}]}],
            "tools": [{"functionDeclarations": [{"name": "weather", "parameters": {"type": "object"}}]},
                      {"googleSearch": {}}]}
    out = request_messages("gemini", "generate_content", body, digest)
    assert out["system_instructions"] == [{"type": "text", "content": "Be short."}]
    msgs = out["input_messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert msgs[0]["parts"][1] == {"type": "blob", "modality": "image", "mime_type": "image/jpeg", "size": 102,
                                   "hmac": "d102"}
    assert msgs[1]["parts"] == [{"type": "tool_call", "name": "weather", "arguments": ARGS}]
    assert msgs[2]["parts"] == [{"type": "tool_call_response", "id": "weather", "response": {"t": 14}}]
    assert out["tool_definitions"] == [{"type": "function", "name": "weather", "parameters": {"type": "object"}},
                                       {"type": "googleSearch", "name": "googleSearch"}]
    resp = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hm", "thought": True},
                                                                   {"functionCall": {"name": "weather",
                                                                                     "args": ARGS}}]},
                            "finishReason": "STOP"}]}
    assert response_messages("gemini", resp) == [{"role": "assistant", "finish_reason": "STOP", "parts": [
        {"type": "reasoning", "content": "hm"}, {"type": "tool_call", "name": "weather", "arguments": ARGS}]}]


def test_gemini_stream_assembles_text_and_calls() -> None:
    chunks = [{"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "index": 0}]},
              {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "index": 0}]},
              {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": ARGS}}]},
                               "finishReason": "STOP", "index": 0}]}]
    s = StreamSummary("gemini", 10_000)
    s.feed(iter_sse_data("".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks)))
    assert s.output.messages() == [{"role": "assistant", "finish_reason": "STOP", "parts": [
        {"type": "text", "content": "Hello"}, {"type": "tool_call", "name": "f", "arguments": ARGS}]}]


def test_ollama_chat_generate_and_stream() -> None:
    img = base64.b64encode(b"png" * 10).decode()
    body = {"model": "llama3", "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "look", "images": [img]},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": ARGS}}]},
        {"role": "tool", "content": "ok", "tool_name": "f"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d"}}]}
    out = request_messages("ollama", "chat", body, digest)
    assert [m["role"] for m in out["input_messages"]] == ["system", "user", "assistant", "tool"]
    assert out["input_messages"][1]["parts"][1] == {"type": "blob", "modality": "image", "size": 30, "hmac": "d30"}
    assert out["input_messages"][2]["parts"] == [{"type": "tool_call", "name": "f", "arguments": ARGS}]
    assert out["input_messages"][3]["parts"] == [{"type": "tool_call_response", "id": "f", "response": "ok"}]
    gen = request_messages("ollama", "chat", {"model": "m", "prompt": "p", "system": "s"}, digest)
    assert gen == {"input_messages": [{"role": "user", "parts": [{"type": "text", "content": "p"}]}],
                   "system_instructions": [{"type": "text", "content": "s"}]}
    lines = [{"message": {"role": "assistant", "content": "a"}}, {"message": {"content": "b"}},
             {"message": {"content": "", "tool_calls": [{"function": {"name": "f", "arguments": ARGS}}]}},
             {"done": True, "done_reason": "stop", "message": {"content": ""}}]
    s = StreamSummary("ollama", 1000)
    s.feed(iter_lines("\n".join(json.dumps(x) for x in lines)))
    assert s.output.messages() == [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "text", "content": "ab"}, {"type": "tool_call", "name": "f", "arguments": ARGS}]}]


def _sse(events: list[dict[str, Any]]) -> str:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def test_openai_parallel_tool_calls_streamed_interleaved() -> None:
    def delta(i: int, **fn: Any) -> dict[str, Any]:
        call: dict[str, Any] = {"index": i, "function": fn}
        if "name" in fn:
            call["id"] = f"call_{i}"
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}

    events = [delta(0, name="a", arguments=""), delta(1, name="b", arguments='{"x"'), delta(0, arguments='{"y":'),
              delta(1, arguments=": 1}"), delta(0, arguments=" 2}"),
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    s = StreamSummary("openai", 1000)
    s.feed(iter_sse_data(_sse(events)))
    assert s.output.messages() == [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
        {"type": "tool_call", "name": "a", "id": "call_0", "arguments": {"y": 2}},
        {"type": "tool_call", "name": "b", "id": "call_1", "arguments": {"x": 1}}]}]


def test_openai_cut_tool_arguments_are_kept_as_text() -> None:
    events = [{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c", "function": {
        "name": "f", "arguments": '{"city": "Par'}}]}}]}]
    s = StreamSummary("openai", 1000)
    s.feed(iter_sse_data(_sse(events)))
    (msg,) = s.output.messages()
    assert msg["parts"][0]["arguments"] == '{"city": "Par'  # a broken stream: the text as received
    assert msg["finish_reason"] == "tool_call"


def test_openai_responses_stream_with_and_without_the_final_event() -> None:
    events = [{"type": "response.output_item.added", "output_index": 0,
               "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}},
              {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"city":'},
              {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": ' "Paris"}'}]
    s = StreamSummary("openai", 1000)
    s.feed(iter_sse_data(_sse(events)))
    assert s.output.messages()[0]["parts"] == [{"type": "tool_call", "name": "f", "id": "call_1",
                                                "arguments": ARGS}]
    final = {"type": "response.completed", "response": {"object": "response", "status": "completed", "output": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}]}}
    s.feed(iter_sse_data(_sse([final])))
    assert s.output.messages() == [{"role": "assistant", "finish_reason": "completed",
                                    "parts": [{"type": "text", "content": "done"}]}]


def test_anthropic_stream_with_thinking_text_and_tool() -> None:
    events = [{"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
              {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
              {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}},
              {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t",
                                                                            "name": "f", "input": {}}},
              {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                                    "partial_json": '{"city": "Paris"}'}},
              {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}]
    s = StreamSummary("anthropic", 1000)
    s.feed(iter_sse_data(_sse(events)))
    assert s.output.messages() == [{"role": "assistant", "finish_reason": "tool_use", "parts": [
        {"type": "reasoning", "content": "hmm"}, {"type": "text", "content": "ok"},
        {"type": "tool_call", "name": "f", "id": "t", "arguments": ARGS}]}]


def test_embeddings_and_unknown_formats_have_no_messages() -> None:
    assert request_messages("openai", "embeddings", {"model": "m", "input": ["a"]}, digest) == {}
    assert request_messages("unknown", "chat", {"messages": [{"role": "user", "content": "a"}]}, digest) == {}
    assert response_messages("openai", {"error": {"message": "x"}}) == []


def test_responses_conversation_fields() -> None:
    assert request_messages("openai", "chat", {"input": "a", "conversation": {"id": "conv_1"}},
                            digest)["conversation_id"] == "conv_1"
    assert request_messages("openai", "chat", {"input": "a", "conversation": "conv_2"},
                            digest)["conversation_id"] == "conv_2"
    assert request_messages("openai", "chat", {"input": "a", "previous_response_id": "resp_3"},
                            digest)["conversation_id"] == "resp_3"


def test_media_helpers() -> None:
    assert split_data_url("data:image/png;base64,AAAA") == ("image/png", "AAAA")
    assert split_data_url("data:;base64,AAAA") == (None, "AAAA")
    assert split_data_url("https://x/data:image/png;base64,AAAA") is None
    part = blob_part("!!not base64!!", "audio/wav", digest)
    assert part["modality"] == "audio" and part["size"] > 0
    long_b64 = base64.b64encode(bytes(range(250)) * 12).decode()
    body = {"a": "short", "b": {"data": long_b64, "media_type": "application/pdf"}, "c": [long_b64],
            "d": "x" * 5000}
    out = strip_inline_media(body, digest)
    assert out["a"] == "short" and out["d"] == "x" * 5000  # long text that is not base64 stays
    assert out["b"]["data"] == "<MEDIA:application/pdf:3000B:d3000>"
    assert out["c"] == ["<MEDIA:file:3000B:d3000>"]
    hex_digest = "0123456789abcdef" * 100  # a long hex string is text, not media
    assert strip_inline_media([hex_digest], digest) == [hex_digest]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["role", "content", "type", "text", "parts", "tool_calls", "function", "arguments",
                         "messages", "input", "contents", "system", "tools", "delta", "choices", "index",
                         "candidates", "message", "source", "data", "image_url", "url", "name", "id",
                         "content_block", "partial_json", "functionCall", "inlineData", "images", "output"]),
        children, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(fmt=st.sampled_from(["openai", "anthropic", "gemini", "ollama", "palm"]), body=json_values)
def test_odd_bodies_never_raise_and_give_the_shapes(fmt: str, body: Any) -> None:
    out = request_messages(fmt, "chat", body, digest)
    for m in out.get("input_messages", []):
        assert isinstance(m["role"], str) and isinstance(m["parts"], list)
        assert all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in m["parts"])
    for m in response_messages(fmt, body):
        assert isinstance(m["finish_reason"], str) and isinstance(m["parts"], list)
    s = StreamMessages(fmt)
    if isinstance(body, dict):
        s.feed(body)
    for m in s.messages():
        assert isinstance(m["finish_reason"], str)
        json.dumps(m)
