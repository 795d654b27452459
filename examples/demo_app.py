"""A small application that calls model APIs the ways real applications do.

It starts the loopback model server from the test tree, instruments itself with
``sidecar.instrument()`` and makes: openai SDK calls (sync, async, streaming),
anthropic SDK calls, raw httpx against an OpenAI-compatible base URL (as vLLM and
Ollama users do), an Ollama /api/chat stream, and requests against a Gemini
generateContent URL with the key in the query string. Some calls get 400, 403,
429 and 503. Prompts carry secrets and personal data, which must come out masked.
"""

from __future__ import annotations

import asyncio
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "support"))

import sidecar

sidecar.instrument()

import anthropic  # noqa: E402
import httpx  # noqa: E402
import openai  # noqa: E402
import requests  # noqa: E402
from model_server import serve  # noqa: E402

OPENAI_KEY = "sk-proj-" + "Demo0Key1For2The3Loopback4Server5Only6" + "T3BlbkFJ" + "x" * 20
ANTHROPIC_KEY = "sk-ant-api03-" + "demo" * 22 + "-AA"
GOOGLE_KEY = "AIzaSy" + "D3m0K3yF0rTh3L00pb4ckS3rv3r0nly"
PROMPT = ("Customer Alice (alice.smith@example.com, phone 13812345678, ID 11010519491231002X, card "
          "4111 1111 1111 1111) asks about order 20261125-000042. 请联系我13912345678谢谢")


def call(label: str, fn: object) -> None:
    try:
        result = fn()  # type: ignore[operator]
        print(f"  {label}: ok {str(result)[:60]!r}")
    except Exception as exc:  # the demo shows errors reaching the app unchanged
        print(f"  {label}: {type(exc).__name__}")


def main() -> None:
    with serve() as base:
        print(f"loopback model server at {base}")
        oa = openai.OpenAI(base_url=base + "/v1", api_key=OPENAI_KEY, max_retries=0)
        msgs = [{"role": "user", "content": PROMPT}]
        with sidecar.user_context("alice"):
            call("openai chat", lambda: oa.chat.completions.create(model="gpt-4o-mini", messages=msgs)
                 .choices[0].message.content)
            call("openai stream", lambda: "".join(c.choices[0].delta.content or "" for c in oa.chat.completions.create(
                model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True})
                if c.choices))
            call("openai embeddings", lambda: len(oa.embeddings.create(model="text-embedding-3-small",
                                                                      input="hello").data))

        async def async_calls() -> None:
            aoa = openai.AsyncOpenAI(base_url=base + "/v1", api_key=OPENAI_KEY, max_retries=0)
            with sidecar.user_context("bob"):
                r = await aoa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
                print(f"  openai async: ok {r.choices[0].message.content!r}")
                await aoa.close()

        asyncio.run(async_calls())
        for status in (400, 403, 429, 503):
            call(f"openai error-{status}", lambda s=status: oa.chat.completions.create(  # type: ignore[misc]
                model=f"error-{s}", messages=[{"role": "user", "content": "trigger"}]))
        an = anthropic.Anthropic(base_url=base, api_key=ANTHROPIC_KEY, max_retries=0)
        call("anthropic messages", lambda: an.messages.create(
            model="claude-demo", max_tokens=64, messages=[{"role": "user", "content": PROMPT}]).content[0].text)
        call("anthropic stream", lambda: "".join(
            e.delta.text for e in an.messages.create(model="claude-demo", max_tokens=64, stream=True,
                                                     messages=[{"role": "user", "content": "stream please"}])
            if e.type == "content_block_delta" and e.delta.type == "text_delta"))
        call("anthropic 429", lambda: an.messages.create(model="error-429", max_tokens=8,
                                                          messages=[{"role": "user", "content": "x"}]))
        # vLLM / Ollama users: raw httpx against an OpenAI-compatible base URL, a header for the caller.
        call("httpx vllm", lambda: httpx.post(base + "/v1/chat/completions", headers={"x-user-id": "carol"},
                                              json={"model": "meta-llama/Llama-3.1-8B-Instruct",
                                                    "messages": [{"role": "user", "content": PROMPT}]}).status_code)
        call("httpx ollama stream", lambda: len(httpx.post(base + "/api/chat", json={
            "model": "qwen2.5:7b", "messages": [{"role": "user", "content": "why is the sky blue"}]}).text))
        # Gemini with the key in the query string (the seed guide's "mode 2"): the key must not be stored.
        gem = f"{base}/v1beta/models/gemini-1.5-flash:generateContent?key={GOOGLE_KEY}"
        call("requests gemini", lambda: requests.post(gem, json={"contents": [{"parts": [{"text": PROMPT}]}]},
                                                      timeout=30).status_code)
        call("requests gemini 503", lambda: requests.post(
            f"{base}/v1beta/models/error-503:generateContent?key={GOOGLE_KEY}",
            json={"contents": [{"parts": [{"text": "x"}]}]}, timeout=30).raise_for_status())
        call("requests non-model", lambda: requests.get(base + "/v1/models", timeout=30).status_code)
    sidecar.uninstrument()  # flushes and seals the spool segment


if __name__ == "__main__":
    main()
