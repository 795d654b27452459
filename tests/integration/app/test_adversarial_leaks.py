"""The adversarial corpus through the real SDKs and raw clients against the loopback model server.

Secrets sit in the prompt (every form of the corpus, English and Chinese), the model name, the
stop sequences, the URL path and query, and a Gemini ``?key=``. With content capture on and off,
no value may appear in the raw spool bytes, in any exported span's name or attributes, or in any
metric label value.
"""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import quote

import anthropic
import httpx
import httpx2
import openai
import pytest
import requests
from adversarial_corpus import Item, corpus, leaks, values
from sidecar_testing import Instrumented

CORPUS = corpus()
_rng = random.Random(7)
VALUES = dict(values(_rng))
EMAIL, AWS, GOOGLE, CARD = VALUES["email"], VALUES["aws_key"], VALUES["google_key"], VALUES["card"]
TENANT = "张三@例子.中国"
MODELS = (f"ft:gpt-4o:{EMAIL}:x1", f"custom-{AWS}", "gpt-4o-mini", f"proj-{GOOGLE.lower()}")
ALL_SECRETS = [(i.value, i) for i in CORPUS] + [(v, None) for v in (EMAIL, AWS, GOOGLE, CARD, TENANT)]


def _body(item: Item, n: int) -> dict[str, Any]:
    return {"model": MODELS[n % len(MODELS)], "stop": [f"password={AWS}", CARD],
            "messages": [{"role": "user", "content": item.text}]}


def _raw(client: str, base: str, item: Item, n: int) -> None:
    url = f"{base}/t/{quote(EMAIL)}/v1/chat/completions?notify={quote(TENANT)}&trace={quote(item.text)}"
    body = _body(item, n)
    if client == "requests":
        requests.post(url, json=body, timeout=10).raise_for_status()
    else:
        module = httpx if client == "httpx" else httpx2
        module.post(url, json=body, timeout=10).raise_for_status()


def _gemini(base: str, item: Item) -> None:
    url = f"{base}/v1beta/models/gemini-pro:generateContent?key={GOOGLE}"
    httpx.post(url, json={"contents": [{"parts": [{"text": item.text}]}]}, timeout=10).raise_for_status()


def _sdk(client: str, base: str, item: Item, n: int) -> None:
    if client == "openai":
        oc = openai.OpenAI(base_url=f"{base}/t/{quote(EMAIL)}/v1", api_key="sk-proj-" + "k" * 40, max_retries=0,
                           default_query={"notify": TENANT})
        body = _body(item, n)
        stream = n % 2 == 1
        reply = oc.chat.completions.create(model=body["model"], stop=body["stop"], messages=body["messages"],
                                           stream=stream)
        if stream:
            for _ in reply:  # type: ignore[union-attr]
                pass
    else:
        ac = anthropic.Anthropic(base_url=f"{base}/t/{quote(EMAIL)}", api_key="sk-ant-api03-" + "Z" * 93,
                                 max_retries=0, default_query={"notify": TENANT})
        ac.messages.create(model=MODELS[n % len(MODELS)], max_tokens=20, stop_sequences=[f"pin: {CARD}"],
                           messages=[{"role": "user", "content": item.text}])


def _exported(instrumented: Instrumented) -> list[str]:
    """Name and attributes of every span the sidecar writes or renames: the HTTP client spans. (The
    anthropic SDK's own ``anthropic.messages.create`` span is that SDK's output, not the sidecar's.)"""
    out: list[str] = []
    for span in instrumented.spans.get_finished_spans():
        scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
        if not scope.startswith("opentelemetry.instrumentation."):
            continue
        out.append(span.name)
        attrs = [span.attributes or {}] + [e.attributes or {} for e in span.events]
        for a in attrs:
            for k, v in a.items():
                out.append(f"{k}={v}")
        if span.status.description:
            out.append(span.status.description)
    return out


def _labels(instrumented: Instrumented) -> set[str]:
    return {v for fam in instrumented.registry.collect() for s in fam.samples for v in s.labels.values()}


def _assert_nothing_leaked(instrumented: Instrumented, calls: int) -> None:
    records = instrumented.records()
    assert len(records) == calls  # exactly one record per call
    raw = b"".join(p.read_bytes() for p in sorted(instrumented.spool.iterdir()) if p.is_file()).decode("utf-8")
    spans = "\n".join(_exported(instrumented))
    labels = _labels(instrumented)
    assert "chat" in spans
    for value, item in ALL_SECRETS:
        assert not leaks(value, raw), (value, item)
        assert not leaks(value, spans), (value, item)
        for label in labels:
            assert not leaks(value, label) and value.lower() not in label, (value, label)
    model_labels = {s.labels["model"] for fam in instrumented.registry.collect() for s in fam.samples
                    if "model" in s.labels}
    assert model_labels <= {"ft:gpt-4o", "redacted", "gpt-4o-mini", "gpt-4o-mini-2024", "gemini-pro", "other",
                            "unknown"}, model_labels
    status_labels = {s.labels["status_code"] for fam in instrumented.registry.collect() for s in fam.samples
                     if "status_code" in s.labels}
    assert status_labels <= {"200", "400", "401", "403", "429", "500", "503", "none", "other"}


@pytest.mark.parametrize("capture", [True, False], ids=["capture_on", "capture_off"])
@pytest.mark.parametrize("client", ["httpx", "httpx2", "requests"])
def test_raw_clients_leak_nothing(instrumented: Instrumented, model_url: str, client: str, capture: bool,
                                  request: pytest.FixtureRequest) -> None:
    import sidecar

    sidecar.uninstrument()
    sidecar.instrument(registry=instrumented.registry, spool_dir=instrumented.spool,
                       hmac_key="adversarial-" + "0" * 32, capture_content=capture)
    for n, item in enumerate(CORPUS):
        _raw(client, model_url, item, n)
    for item in CORPUS[:10]:
        _gemini(model_url, item)
    _assert_nothing_leaked(instrumented, len(CORPUS) + 10)
    if capture:  # the content was kept (redacted), not dropped
        assert sum("sidecar.request.content" in r for r in instrumented.records()) == len(CORPUS) + 10


@pytest.mark.parametrize("capture", [True, False], ids=["capture_on", "capture_off"])
@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_sdks_leak_nothing(instrumented: Instrumented, model_url: str, client: str, capture: bool) -> None:
    import sidecar

    sidecar.uninstrument()
    sidecar.instrument(registry=instrumented.registry, spool_dir=instrumented.spool,
                       hmac_key="adversarial-" + "0" * 32, capture_content=capture)
    items = CORPUS[::2]
    for n, item in enumerate(items):
        _sdk(client, model_url, item, n)
    _assert_nothing_leaked(instrumented, len(items))
    records = instrumented.records()
    assert all(r["http.response.status_code"] == 200 for r in records)
    assert all(json.dumps(r, ensure_ascii=False).count("<") >= 1 for r in records)  # something was masked
