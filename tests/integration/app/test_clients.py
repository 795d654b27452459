"""Real SDKs and HTTP clients over real sockets against the loopback model server."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
import requests
from sidecar_testing import Instrumented

OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4" + "T3BlbkFJ" + "q" * 20
ANTHROPIC_KEY = "sk-ant-api03-" + "Z" * 93
GOOGLE_KEY = "AIzaSy" + "B" * 33
SECRET_PROMPT = "mail bob@example.org, phone 13812345678, key sk-live-" + "x" * 30


def only(records: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(records) == 1, [r.get("url.path") for r in records]
    return records[0]


def test_openai_sync_chat(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0.2,
        max_tokens=50,
        seed=7,
        messages=[{"role": "user", "content": SECRET_PROMPT}],
    )
    assert reply.choices[0].message.content.startswith("Echo:")
    r = only(instrumented.records())
    assert r["gen_ai.provider.name"] == "openai"
    assert r["gen_ai.operation.name"] == "chat"
    assert r["gen_ai.request.model"] == "gpt-4o-mini"
    assert r["gen_ai.request.temperature"] == 0.2
    assert r["gen_ai.request.max_tokens"] == 50
    assert r["gen_ai.request.seed"] == 7
    assert r["gen_ai.response.id"] == "chatcmpl-1"
    assert r["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert r["gen_ai.response.finish_reasons"] == ["stop"]
    assert r["gen_ai.usage.input_tokens"] == 12
    assert r["gen_ai.usage.cache_read.input_tokens"] == 4
    assert r["http.response.status_code"] == 200
    assert r["sidecar.http.client"] == "httpx2"
    assert r["sidecar.credential.location"] == "header"
    assert len(r["sidecar.credential.fingerprint"]) == 8
    assert r["event.duration"] > 0
    # content captured, redacted
    assert "<EMAIL:" in r["sidecar.request.content"] and "bob@example.org" not in r["sidecar.request.content"]
    assert "13812345678" not in r["sidecar.response.content"]
    assert r["sidecar.redaction.counts"]["EMAIL"] == 2
    # span: GenAI name and attributes, ended once, linked from the record
    spans = [s for s in instrumented.spans.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == 1
    span = spans[0]
    assert span.attributes["gen_ai.usage.output_tokens"] == r["gen_ai.usage.output_tokens"]
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert r["trace.id"] == format(span.context.trace_id, "032x")
    assert r["span.id"] == format(span.context.span_id, "016x")
    # metrics
    labels = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat", "status_code": "200", "error_type": ""}
    assert instrumented.metric("llm_requests_total", labels) == 1
    assert (
        instrumented.metric(
            "gen_ai_client_token_usage_count",
            {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat", "token_type": "input"},
        )
        == 1
    )


def test_openai_stream_usage_and_ttfc(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "one two three"}],
    )
    chunks = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(chunks) == "Echo: one two three"  # every chunk reached the application
    r = only(instrumented.records())
    assert r["gen_ai.request.stream"] is True
    assert r["sidecar.stream.outcome"] == "completed"
    assert r["gen_ai.usage.output_tokens"] == 4
    assert r["gen_ai.response.finish_reasons"] == ["stop"]
    assert r["sidecar.response.content"] == "Echo: one two three"
    assert 0 < r["gen_ai.response.time_to_first_chunk"] <= r["event.duration"] / 1e9
    assert len([s for s in instrumented.spans.get_finished_spans() if s.name.startswith("chat")]) == 1


def test_openai_async_and_async_stream(instrumented: Instrumented, model_url: str) -> None:
    async def main() -> str:
        client = openai.AsyncOpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
        r1 = await client.chat.completions.create(model="gpt-async", messages=[{"role": "user", "content": "a"}])
        stream = await client.chat.completions.create(
            model="gpt-async-stream", stream=True, messages=[{"role": "user", "content": "b c"}]
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return (r1.choices[0].message.content or "") + "|" + text

    assert asyncio.run(main()) == "Echo: a|Echo: b c"
    records = {r["gen_ai.request.model"]: r for r in instrumented.records()}
    assert records["gpt-async"]["gen_ai.usage.output_tokens"] == 2
    assert records["gpt-async-stream"]["sidecar.stream.outcome"] == "completed"
    assert records["gpt-async-stream"]["sidecar.response.content"] == "Echo: b c"


@pytest.mark.parametrize(
    "status,exc",
    [
        (400, openai.BadRequestError),
        (403, openai.PermissionDeniedError),
        (429, openai.RateLimitError),
        (503, openai.InternalServerError),
    ],
)
def test_openai_error_codes(instrumented: Instrumented, model_url: str, status: int, exc: type) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    with pytest.raises(exc):  # the application sees the SDK's own exception, unchanged
        client.chat.completions.create(model=f"error-{status}", messages=[{"role": "user", "content": "x"}])
    r = only(instrumented.records())
    assert r["http.response.status_code"] == status
    assert r["error.type"] == str(status)
    assert r["event.outcome"] == "failure"
    assert r["error.code"]
    assert r["error.message"]
    if status in (429, 503):
        assert r["sidecar.response.retry_after"] == 1.0
    span = [s for s in instrumented.spans.get_finished_spans() if s.name == f"chat error-{status}"]
    assert len(span) == 1 and span[0].status.status_code.name == "ERROR"
    assert span[0].attributes["error.type"] == str(status)


def test_openai_retries_are_separate_records(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=1)
    with pytest.raises(openai.RateLimitError):
        client.with_options(timeout=10).chat.completions.create(
            model="error-429", messages=[{"role": "user", "content": "x"}]
        )
    records = instrumented.records()
    assert [r["http.response.status_code"] for r in records] == [429, 429]
    assert len({r["event.id"] for r in records}) == 2


def test_openai_other_operations(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi")
    client.responses.create(model="gpt-5", input="hello")
    ops = {r["gen_ai.request.model"]: r for r in instrumented.records()}
    assert ops["text-embedding-3-small"]["gen_ai.operation.name"] == "embeddings"
    assert ops["text-embedding-3-small"]["gen_ai.usage.input_tokens"] == 5
    assert ops["gpt-3.5-turbo-instruct"]["gen_ai.operation.name"] == "text_completion"
    assert ops["gpt-5"]["gen_ai.response.finish_reasons"] == ["completed"]
    assert ops["gpt-5"]["gen_ai.usage.output_tokens"] == 3


def test_azure_openai(instrumented: Instrumented, model_url: str) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=model_url, api_key="0123456789abcdef0123456789abcdef", api_version="2024-10-21", max_retries=0
    )
    client.chat.completions.create(model="my-gpt4o-deployment", messages=[{"role": "user", "content": "hi"}])
    r = only(instrumented.records())
    assert r["gen_ai.provider.name"] == "azure.ai.openai"
    assert r["gen_ai.request.model"] == "my-gpt4o-deployment"
    assert "api-version=2024-10-21" in r["url.full"]
    assert r["sidecar.credential.location"] == "header"  # the api-key header


def test_anthropic_messages_and_stream(instrumented: Instrumented, model_url: str) -> None:
    client = anthropic.Anthropic(base_url=model_url, api_key=ANTHROPIC_KEY, max_retries=0)
    msg = client.messages.create(
        model="claude-test",
        max_tokens=20,
        stop_sequences=["END"],
        extra_body={"top_k": 5},
        messages=[{"role": "user", "content": "hello"}],
        metadata={"user_id": "user-42"},
    )
    assert msg.content[0].text == "Echo: hello"
    with client.messages.stream(
        model="claude-test-stream", max_tokens=20, messages=[{"role": "user", "content": "x y"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.strip() == "Echo: x y"
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="error-429", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    records = {r["gen_ai.request.model"]: r for r in instrumented.records()}
    plain, streamed, limited = records["claude-test"], records["claude-test-stream"], records["error-429"]
    assert plain["gen_ai.provider.name"] == "anthropic"
    assert plain["gen_ai.request.top_k"] == 5 and plain["gen_ai.request.stop_sequences"] == ["END"]
    assert plain["gen_ai.usage.cache_creation.input_tokens"] == 3
    assert plain["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert plain["user.id"] == "user-42"  # from metadata.user_id
    assert streamed["gen_ai.usage.input_tokens"] == 15
    assert streamed["gen_ai.usage.output_tokens"] == 3
    assert streamed["gen_ai.usage.cache_read.input_tokens"] == 2
    assert streamed["gen_ai.response.id"] == "msg_s1"
    assert streamed["sidecar.stream.outcome"] == "completed"
    assert limited["error.code"] == "rate_limit_error"


def test_gemini_requests_with_key_in_query(instrumented: Instrumented, model_url: str) -> None:
    url = f"{model_url}/v1beta/models/gemini-1.5-pro:generateContent?key={GOOGLE_KEY}"
    resp = requests.post(
        url,
        json={
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"temperature": 0.5, "maxOutputTokens": 99},
        },
        timeout=10,
    )
    assert resp.status_code == 200
    r = only(instrumented.records())
    assert r["gen_ai.provider.name"] == "gcp.gemini"
    assert r["gen_ai.operation.name"] == "generate_content"
    assert r["gen_ai.request.model"] == "gemini-1.5-pro"
    assert r["gen_ai.request.max_tokens"] == 99
    assert r["gen_ai.usage.output_tokens"] == 5
    assert r["gen_ai.response.finish_reasons"] == ["STOP"]
    assert r["sidecar.credential.location"] == "query"
    assert GOOGLE_KEY not in r["url.full"]
    assert r["sidecar.http.client"] == "requests"


def test_gemini_stream_httpx_and_requests(instrumented: Instrumented, model_url: str) -> None:
    url = f"{model_url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": "stream this"}]}]}
    with httpx.stream("POST", url, json=body, headers={"x-goog-api-key": GOOGLE_KEY}) as resp:
        n = sum(1 for line in resp.iter_lines() if line.startswith("data:"))
    assert n == 3
    with requests.post(url, json=body, stream=True, timeout=10) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert len(lines) == 3
    records = instrumented.records()
    assert len(records) == 2
    for r in records:
        assert r["gen_ai.request.stream"] is True
        assert r["gen_ai.usage.input_tokens"] == 9
        assert r["sidecar.response.content"].strip() == "Echo: stream this"
        assert r["sidecar.stream.outcome"] == "completed"


def test_palm_generate_text(instrumented: Instrumented, model_url: str) -> None:
    resp = httpx.post(
        f"{model_url}/v1beta3/models/text-bison-001:generateText",
        json={
            "prompt": {"text": "解释量子计算"},
            "temperature": 0.7,
            "maxOutputTokens": 2048,
            "safetySettings": [{"category": "HARM_CATEGORY_DEROGATORY", "threshold": 2}],
        },
    )
    assert resp.status_code == 200
    r = only(instrumented.records())
    assert r["sidecar.api_format"] == "palm"
    assert r["gen_ai.request.model"] == "text-bison-001"
    assert r["gen_ai.request.temperature"] == 0.7
    assert r["gen_ai.request.max_tokens"] == 2048
    assert "解释量子计算" in r["sidecar.request.content"]


def test_ollama_native_stream_and_openai_path(instrumented: Instrumented, model_url: str) -> None:
    with httpx.stream(
        "POST", model_url + "/api/chat", json={"model": "llama3.2", "messages": [{"role": "user", "content": "why"}]}
    ) as resp:
        parts = list(resp.iter_lines())
    assert len(parts) == 3
    httpx.post(model_url + "/api/generate", json={"model": "llama3.2", "prompt": "p", "stream": False})
    httpx.post(model_url + "/api/chat", json={"not": "a model call"})  # generic path, no model: ignored
    records = instrumented.records()
    assert len(records) == 2
    chat, gen = records
    assert chat["gen_ai.provider.name"] == "ollama" and chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.usage.input_tokens"] == 11 and chat["gen_ai.usage.output_tokens"] == 2
    assert chat["sidecar.response.content"].strip() == "Echo: why"
    assert gen["gen_ai.operation.name"] == "text_completion" and gen["gen_ai.request.stream"] is False


@pytest.mark.sidecar(model_hosts="127.0.0.1=vllm")
def test_model_hosts_names_the_provider(instrumented: Instrumented, model_url: str) -> None:
    """vLLM / DeepSeek / Qwen behind an OpenAI-compatible path: SIDECAR_MODEL_HOSTS names the provider."""
    client = openai.OpenAI(base_url=model_url + "/compatible-mode/v1", api_key="sk-" + "d" * 32, max_retries=0)
    client.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])
    httpx.post(model_url + "/v2/whatever", json={"x": 1})  # listed host, unknown path: still recorded
    records = instrumented.records()
    assert [r["gen_ai.provider.name"] for r in records] == ["vllm", "vllm"]
    assert records[1]["sidecar.api_format"] == "unknown" and records[1]["url.path"] == "/v2/whatever"


@pytest.mark.sidecar(exclude_hosts="127.0.0.1")
def test_exclude_hosts(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert instrumented.records() == []


def test_non_model_calls_untouched(instrumented: Instrumented, model_url: str) -> None:
    assert requests.get(model_url + "/v1/models", timeout=10).status_code == 200
    assert httpx.get(model_url + "/v1/models").status_code == 200
    assert httpx.post(model_url + "/v1/unknown-endpoint", json={"model": "m"}).status_code == 200
    assert instrumented.records() == []


def test_httpx2_sync_and_async_clients(instrumented: Instrumented, model_url: str) -> None:
    with httpx2.Client() as c:
        assert (
            c.post(
                model_url + "/v1/chat/completions", json={"model": "h2", "messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 200
        )

    async def go() -> int:
        async with httpx2.AsyncClient() as c:
            r = await c.post(
                model_url + "/v1/chat/completions",
                json={"model": "h2-async", "messages": [{"role": "user", "content": "x"}]},
            )
            return r.status_code

    assert asyncio.run(go()) == 200
    assert sorted(r["gen_ai.request.model"] for r in instrumented.records()) == ["h2", "h2-async"]


def test_early_closed_stream(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "a b c d e f"}]
    )
    first = next(iter(stream))
    assert first.choices
    stream.close()
    r = only(instrumented.records())
    assert r["sidecar.stream.outcome"] == "closed_early"
    spans = [s for s in instrumented.spans.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == 1  # ended exactly once


def test_broken_stream(instrumented: Instrumented, model_url: str) -> None:
    client = openai.OpenAI(base_url=model_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="broken-stream", stream=True, messages=[{"role": "user", "content": "a b c d e f"}]
    )
    with pytest.raises(Exception) as info:  # the transport's own error reaches the application unchanged
        for _ in stream:
            pass
    assert "sidecar" not in type(info.value).__module__
    r = only(instrumented.records())
    assert r["sidecar.stream.outcome"] == "error"
    assert r["error.type"] and r["event.outcome"] == "failure"
    assert len([s for s in instrumented.spans.get_finished_spans() if s.name == "chat broken-stream"]) == 1


def test_abandoned_stream(instrumented: Instrumented, model_url: str) -> None:
    def leave_it() -> None:
        resp = httpx.Client().send(
            httpx.Client().build_request(
                "POST",
                model_url + "/v1/chat/completions",
                json={"model": "abandoned", "stream": True, "messages": [{"role": "user", "content": "x"}]},
            ),
            stream=True,
        )
        assert resp.status_code == 200

    leave_it()
    gc.collect()
    r = only(instrumented.records())
    assert r["sidecar.stream.outcome"] in ("abandoned", "closed_early")
    assert len([s for s in instrumented.spans.get_finished_spans() if s.name == "chat abandoned"]) == 1


def test_connection_refused_is_recorded(instrumented: Instrumented) -> None:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=OPENAI_KEY, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    r = only(instrumented.records())
    assert "http.response.status_code" not in r
    assert r["error.type"].endswith("ConnectError")
    spans = [s for s in instrumented.spans.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == 1 and spans[0].status.status_code.name == "ERROR"
