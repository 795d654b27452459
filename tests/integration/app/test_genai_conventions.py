"""The OpenTelemetry GenAI conventions with the real openai and anthropic SDKs over loopback sockets:
structured messages (tool calls streamed and not, system prompts, tool results, images), conversation
ids, cost, and OpenTelemetry's own switches. Assertions read the raw spool bytes and exported spans."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import openai
import pytest
from sidecar_testing import HMAC_KEY, Instrumented

import sidecar

OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4" + "T3BlbkFJ" + "q" * 20
ANTHROPIC_KEY = "sk-ant-api03-" + "Z" * 93
TOOL_ARGS = {"city": "Paris", "unit": "celsius"}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Weather of a city",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "data" / "otel-genai-schemas"
CONTENT_VARS = ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "OTEL_SEMCONV_STABILITY_OPT_IN")


@pytest.fixture(autouse=True)
def _no_otel_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONTENT_VARS:
        monkeypatch.delenv(name, raising=False)


def raw_records(inst: Instrumented) -> list[tuple[bytes, dict[str, Any]]]:
    """(spool line as written, parsed) for every record, read from the files' bytes."""
    assert sidecar.flush(10)
    out = []
    for path in sorted(inst.spool.glob("*.jsonl")) + sorted(inst.spool.glob("*.open")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                out.append((line, json.loads(line)))
    return out


def only(inst: Instrumented) -> tuple[bytes, dict[str, Any]]:
    recs = raw_records(inst)
    assert len(recs) == 1, [r.get("url.path") for _, r in recs]
    return recs[0]


def reinstrument(inst: Instrumented, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                 **options: Any) -> None:
    """Instrument again with OpenTelemetry variables set (they are read at instrument())."""
    sidecar.uninstrument()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sidecar.instrument(registry=inst.registry, spool_dir=inst.spool, hmac_key=HMAC_KEY, **options)


def oa(model_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)


def an(model_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=model_url, api_key=ANTHROPIC_KEY, max_retries=0)


def parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for m in messages for p in m["parts"]]


# ---------------------------------------------------------------- tool calls


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_call(instrumented: Instrumented, model_url: str, stream: bool) -> None:
    client = oa(model_url)
    msgs: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=[WEATHER_TOOL],
                                                     stream=True, stream_options={"include_usage": True}))
        args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                       for c in chunks if c.choices and c.choices[0].delta.tool_calls)
        assert json.loads(args) == TOOL_ARGS
    else:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=[WEATHER_TOOL])
        assert reply.choices[0].message.tool_calls[0].function.name == "get_weather"
    raw, r = only(instrumented)
    out = r["gen_ai.output.messages"]
    assert out == [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
        {"type": "tool_call", "name": "get_weather", "id": "call_s1" if stream else "call_1",
         "arguments": TOOL_ARGS}]}]
    assert r["gen_ai.input.messages"] == [{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                                          {"role": "user", "parts": [{"type": "text",
                                                                      "content": "Weather in Paris?"}]}]
    assert r["gen_ai.tool.definitions"] == [{"type": "function", "name": "get_weather",
                                             "description": "Weather of a city",
                                             "parameters": WEATHER_TOOL["function"]["parameters"]}]
    assert b'"gen_ai.output.messages":[{"role":"assistant","parts":[{"type":"tool_call"' in raw


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_call_and_system_prompt(instrumented: Instrumented, model_url: str, stream: bool) -> None:
    client = an(model_url)
    kwargs: Any = dict(model="claude-3-5-sonnet-20241022", max_tokens=100, system="You are a weather bot.",
                       tools=[ANTHROPIC_TOOL], messages=[{"role": "user", "content": "Weather in Paris?"}])
    if stream:
        with client.messages.stream(**kwargs) as s:
            final = s.get_final_message()
    else:
        final = client.messages.create(**kwargs)
    assert final.content[1].input == TOOL_ARGS
    raw, r = only(instrumented)
    assert r["gen_ai.system_instructions"] == [{"type": "text", "content": "You are a weather bot."}]
    assert r["gen_ai.output.messages"] == [{"role": "assistant", "finish_reason": "tool_use", "parts": [
        {"type": "text", "content": "Checking."},
        {"type": "tool_call", "name": "get_weather", "id": "toolu_s1" if stream else "toolu_1",
         "arguments": TOOL_ARGS}]}]
    assert r["gen_ai.tool.definitions"][0]["type"] == "function"
    assert r["gen_ai.tool.definitions"][0]["parameters"] == ANTHROPIC_TOOL["input_schema"]
    assert b'"type":"tool_call"' in raw


def test_multi_turn_with_tool_results(instrumented: Instrumented, model_url: str) -> None:
    client = oa(model_url)
    msgs: Any = [
        {"role": "developer", "content": "Answer in one line."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": json.dumps(TOOL_ARGS)}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "rainy, 14 C; ask ops@example.org"},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=[WEATHER_TOOL])
    assert reply.choices[0].finish_reason == "stop"
    raw, r = only(instrumented)
    roles = [m["role"] for m in r["gen_ai.input.messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assert r["gen_ai.input.messages"][2]["parts"] == [{"type": "tool_call", "name": "get_weather", "id": "call_9",
                                                       "arguments": TOOL_ARGS}]
    result = r["gen_ai.input.messages"][3]["parts"][0]
    assert result["type"] == "tool_call_response" and result["id"] == "call_9"
    assert result["response"].startswith("rainy, 14 C; ask <EMAIL:")  # redacted inside the structure
    assert b"ops@example.org" not in raw
    assert r["gen_ai.output.messages"][0]["parts"][0]["type"] == "text"


def test_anthropic_tool_result_turn(instrumented: Instrumented, model_url: str) -> None:
    client = an(model_url)
    client.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=50, tools=[ANTHROPIC_TOOL], messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_7", "name": "get_weather",
                                           "input": TOOL_ARGS}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_7", "content": "rainy"}]},
    ])
    _, r = only(instrumented)
    assert [m["role"] for m in r["gen_ai.input.messages"]] == ["user", "assistant", "tool"]
    assert r["gen_ai.input.messages"][2]["parts"] == [{"type": "tool_call_response", "id": "toolu_7",
                                                       "response": "rainy"}]
    assert r["gen_ai.output.messages"][0]["finish_reason"] == "end_turn"


# ---------------------------------------------------------------- media


def test_inline_image_is_type_size_and_keyed_hash_never_bytes(instrumented: Instrumented, model_url: str) -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 470  # ~120 KB of base64
    b64 = base64.b64encode(image).decode()
    client = oa(model_url)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64}},
        {"type": "image_url", "image_url": {"url": "https://img.example.com/cat.png?sig=abc"}}]}])
    an(model_url).messages.create(model="claude-3-5-sonnet-20241022", max_tokens=10, messages=[
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": b64}}, {"type": "text", "text": "and?"}]}])
    recs = raw_records(instrumented)
    assert len(recs) == 2
    for raw, _ in recs:
        assert b64[:200].encode() not in raw and b64[-200:].encode() not in raw  # never the bytes, anywhere
        assert len(raw) < 16 * 1024  # the image no longer fills the content budget
    blobs = [p for _, r in recs for p in parts(r["gen_ai.input.messages"]) if p["type"] == "blob"]
    assert len(blobs) == 2
    for blob in blobs:
        assert blob["mime_type"] == "image/png" and blob["modality"] == "image" and blob["size"] == len(image)
    assert blobs[0]["hmac"] == blobs[1]["hmac"] and len(blobs[0]["hmac"]) == 32  # same bytes, same keyed hash
    uri = [p for p in parts(recs[0][1]["gen_ai.input.messages"]) if p["type"] == "uri"]
    assert uri == [{"type": "uri", "modality": "image", "uri": "https://img.example.com/cat.png?sig=abc"}]
    # the raw content keeps a marker in place of the image
    assert "<MEDIA:image/png:" in recs[0][1]["sidecar.request.content"]


# ---------------------------------------------------------------- conversation id


@pytest.mark.sidecar(conversation_header="X-Session-Id")
def test_conversation_id_from_context_header_and_body(instrumented: Instrumented, model_url: str) -> None:
    client = oa(model_url)
    with sidecar.conversation_context("thread-42"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}],
                                       extra_headers={"X-Session-Id": "hdr-1"})
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "b"}],
                                   extra_headers={"X-Session-Id": "hdr-1"})
    client.responses.create(model="gpt-4o-mini", input="c", previous_response_id="resp_prev_1")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "d"}])
    recs = [r for _, r in raw_records(instrumented)]
    assert [r.get("gen_ai.conversation.id") for r in recs] == ["thread-42", "hdr-1", "resp_prev_1", None]
    spans = instrumented.spans.get_finished_spans()
    assert {s.attributes.get("gen_ai.conversation.id") for s in spans} >= {"thread-42", "hdr-1", "resp_prev_1"}
    # the Responses API: instructions are system instructions
    client.responses.create(model="gpt-4o-mini", input="e", instructions="Be kind.")
    last = [r for _, r in raw_records(instrumented)][-1]
    assert last["gen_ai.system_instructions"] == [{"type": "text", "content": "Be kind."}]
    assert last["gen_ai.output.messages"][0]["parts"][0] == {"type": "text", "content": "Echo: e"}


# ---------------------------------------------------------------- cost


def test_cost_for_a_known_model(instrumented: Instrumented, model_url: str) -> None:
    oa(model_url).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}])
    _, r = only(instrumented)
    # the server reports 12 prompt tokens, 4 of them cached, and N output tokens; gpt-4o-mini's list price:
    # $0.15 / M input, $0.075 / M cached input, $0.60 / M output
    n = r["gen_ai.usage.output_tokens"]
    expected = (8 * 0.15 + 4 * 0.075 + n * 0.60) / 1e6
    assert r["sidecar.cost.usd"] == pytest.approx(expected, rel=1e-6)
    assert r["sidecar.cost.cache_read_usd"] == pytest.approx(4 * 0.075 / 1e6, rel=1e-6)
    assert r["sidecar.cost.output_usd"] == pytest.approx(n * 0.60 / 1e6, rel=1e-6)
    assert r["sidecar.cost.source"].startswith("genai-prices ")
    labels = {"service_name": "unknown_service", "provider": "openai", "model": "gpt-4o-mini"}
    assert instrumented.metric("gen_ai_client_cost_usd_total", labels) == pytest.approx(expected, rel=1e-6)
    span = next(s for s in instrumented.spans.get_finished_spans() if s.name == "chat gpt-4o-mini")
    assert span.attributes["sidecar.cost.usd"] == pytest.approx(expected, rel=1e-6)


def test_unknown_model_gets_no_cost_and_a_count(instrumented: Instrumented, model_url: str) -> None:
    oa(model_url).chat.completions.create(model="house-model-7b", messages=[{"role": "user", "content": "hi"}])
    raw, r = only(instrumented)
    assert b"sidecar.cost" not in raw
    assert r["gen_ai.usage.input_tokens"] == 12
    assert instrumented.metric("sidecar_cost_unknown_model_total",
                               {"provider": "openai", "model": "house-model-7b"}) == 1


def test_prices_file_prices_a_self_hosted_model(tmp_path: pathlib.Path, instrumented: Instrumented,
                                                monkeypatch: pytest.MonkeyPatch, model_url: str) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": [{"provider": "openai", "model": "house-model-*", "input": 1.0,
                                              "output": 2.0, "cache_read": 0.5},
                                             {"model": "gpt-4o-mini", "input": 0, "output": 0}]}))
    reinstrument(instrumented, monkeypatch, {}, prices_file=prices)
    oa(model_url).chat.completions.create(model="house-model-7b", messages=[{"role": "user", "content": "hi"}])
    oa(model_url).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (_, a), (_, b) = raw_records(instrumented)
    n = a["gen_ai.usage.output_tokens"]
    assert a["sidecar.cost.usd"] == pytest.approx((8 * 1.0 + 4 * 0.5 + n * 2.0) / 1e6)
    assert a["sidecar.cost.source"] == "prices_file"
    assert b["sidecar.cost.usd"] == 0 and b["sidecar.cost.source"] == "prices_file"  # negotiated: free


def test_a_bad_prices_file_is_a_config_error_naming_the_variable(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text('{"models": [{"model": "x", "input": -1, "output": 1}]}')
    sidecar.uninstrument()
    with pytest.raises(sidecar.ConfigError, match="SIDECAR_PRICES_FILE"):
        sidecar.instrument(spool_dir=tmp_path / "s", prices_file=bad)


# ---------------------------------------------------------------- switches


def _chat_span(inst: Instrumented) -> Any:
    assert sidecar.flush(10)  # the writer thread ends the span with the record
    return next(s for s in inst.spans.get_finished_spans() if s.name.startswith("chat "))


@pytest.mark.parametrize("record_content", [True, False])
@pytest.mark.parametrize("otel_content", ["", "true", "false"])
def test_content_switches_side_by_side(instrumented: Instrumented, monkeypatch: pytest.MonkeyPatch,
                                       model_url: str, record_content: bool, otel_content: str) -> None:
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": otel_content} if otel_content else {}
    reinstrument(instrumented, monkeypatch, env, capture_content=record_content)
    oa(model_url).chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], messages=[
        {"role": "user", "content": "mail bob@example.org"}])
    raw, r = only(instrumented)
    assert ("gen_ai.input.messages" in r) is record_content
    assert ("gen_ai.output.messages" in r) is record_content
    span = _chat_span(instrumented)
    on_span = otel_content == "true"
    assert ("gen_ai.input.messages" in span.attributes) is on_span
    assert ("gen_ai.tool.definitions" in span.attributes) is on_span
    if on_span:
        messages = json.loads(span.attributes["gen_ai.input.messages"])
        assert messages[0]["parts"][0]["content"].startswith("mail <EMAIL:")  # redacted, same shape
        output = json.loads(span.attributes["gen_ai.output.messages"])
        assert output[0]["parts"][0]["type"] == "tool_call"
    assert not span.events or all(e.name != "gen_ai.client.inference.operation.details" for e in span.events)
    assert b"bob@example.org" not in raw


@pytest.mark.parametrize("mode,on_span,on_event", [("SPAN_ONLY", True, False), ("EVENT_ONLY", False, True),
                                                   ("SPAN_AND_EVENT", True, True), ("NO_CONTENT", False, False),
                                                   ("true", False, False)])
def test_latest_experimental_content_modes(instrumented: Instrumented, monkeypatch: pytest.MonkeyPatch,
                                           model_url: str, mode: str, on_span: bool, on_event: bool) -> None:
    reinstrument(instrumented, monkeypatch, {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                                             "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": mode})
    oa(model_url).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    span = _chat_span(instrumented)
    assert ("gen_ai.input.messages" in span.attributes) is on_span
    events = [e for e in span.events if e.name == "gen_ai.client.inference.operation.details"]
    assert bool(events) is on_event
    if on_event:
        assert json.loads(events[0].attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "hello"


_SPAN_SCRIPT = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import openai, sidecar
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
sidecar.instrument(spool_dir=sys.argv[2], hmac_key="k" * 32)
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-test", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
sidecar.flush(10)
print(json.dumps([dict(s.attributes) for s in spans.get_finished_spans() if s.name.startswith("chat ")]))
"""


@pytest.mark.parametrize("opt_in,old,new", [("", True, False), ("http", False, True), ("http/dup", True, True),
                                            ("gen_ai_latest_experimental", True, False)])
def test_http_names_follow_the_stability_opt_in(tmp_path: pathlib.Path, model_url: str, opt_in: str, old: bool,
                                                new: bool) -> None:
    """A fresh process per value: the HTTP instrumentors read the variable once, at start-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIDECAR_"))}
    if opt_in:
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = opt_in
    proc = subprocess.run([sys.executable, "-c", _SPAN_SCRIPT, model_url, str(tmp_path / "spool")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (attrs,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ("http.status_code" in attrs) is old and ("http.method" in attrs) is old
    assert ("http.response.status_code" in attrs) is new and ("http.request.method" in attrs) is new
    assert attrs["gen_ai.provider.name"] == "openai"  # the GenAI names are the latest in every mode


# ---------------------------------------------------------------- schema


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"gen-ai-{name}.json").read_text())
    return jsonschema.Draft202012Validator(schema)


_STRICT = {"text": "TextPart", "tool_call": "ToolCallRequestPart", "tool_call_response": "ToolCallResponsePart",
           "uri": "UriPart", "file": "FilePart", "reasoning": "ReasoningPart", "blob": "BlobPart"}


def _strict_part(schema: dict[str, Any], part: dict[str, Any]) -> None:
    """A part must match its own definition, not only the catch-all GenericPart. A blob part carries
    size and keyed hash in place of the bytes: its definition is checked without ``content``."""
    definition = dict(schema["$defs"][_STRICT[part["type"]]])
    if part["type"] == "blob":
        definition["required"] = [r for r in definition["required"] if r != "content"]
    jsonschema.validate(part, {**definition, "$defs": schema["$defs"]})


def test_emitted_messages_follow_the_conventions_json_schemas(instrumented: Instrumented, model_url: str) -> None:
    b64 = base64.b64encode(b"GIF89a" + b"\0" * 300).decode()
    client = oa(model_url)
    client.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], messages=[
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "t"},
                                     {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + b64}},
                                     {"type": "image_url", "image_url": {"url": "https://x.example/i.png"}}]}])
    list(client.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], stream=True,
                                        messages=[{"role": "user", "content": "w"}]))
    with an(model_url).messages.stream(model="claude-3-5-sonnet-20241022", max_tokens=9, system="sys",
                                       tools=[ANTHROPIC_TOOL], messages=[{"role": "user", "content": "w"}]) as s:
        s.get_final_message()
    client.responses.create(model="gpt-4o-mini", input="r", instructions="i")
    recs = [r for _, r in raw_records(instrumented)]
    assert len(recs) == 4
    checked = 0
    for field, name in (("gen_ai.input.messages", "input-messages"), ("gen_ai.output.messages", "output-messages"),
                        ("gen_ai.system_instructions", "system-instructions"),
                        ("gen_ai.tool.definitions", "tool-definitions")):
        validator = _validator(name)
        for r in recs:
            if field not in r:
                continue
            validator.validate(r[field])
            checked += 1
            items = r[field] if name == "system-instructions" else (
                parts(r[field]) if name.endswith("messages") else [])
            for part in items:
                _strict_part(validator.schema, part)
            for m in r[field] if name.endswith("messages") else []:
                assert m["role"] in ("system", "user", "assistant", "tool")
    assert checked >= 10
    bad = [{"role": "assistant", "parts": [{"type": "text", "content": "x"}]}]  # no finish_reason
    with pytest.raises(jsonschema.ValidationError):
        _validator("output-messages").validate(bad)


# ---------------------------------------------------------------- OTel metrics


@pytest.fixture(scope="module")
def metric_reader() -> Iterator[Any]:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    yield reader


def test_otel_metrics_use_the_conventions_names_and_buckets(metric_reader: Any, instrumented: Instrumented,
                                                            model_url: str) -> None:
    oa(model_url).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "m"}])
    only(instrumented)
    data = metric_reader.get_metrics_data()
    found = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    usage = found["gen_ai.client.token.usage"]
    assert usage.unit == "{token}"
    points = list(usage.data.data_points)
    kinds = {p.attributes["gen_ai.token.type"] for p in points}
    assert kinds == {"input", "output"}
    assert list(points[0].explicit_bounds)[:4] == [1.0, 4.0, 16.0, 64.0]
    assert points[0].attributes["gen_ai.provider.name"] == "openai"
    assert points[0].attributes["gen_ai.request.model"] == "gpt-4o-mini"
    duration = found["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    bounds = list(next(iter(duration.data.data_points)).explicit_bounds)
    assert bounds[0] == 0.01 and bounds[-1] == 81.92
    assert "sidecar.gen_ai.client.cost" in found
