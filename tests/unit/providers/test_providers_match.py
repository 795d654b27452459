from __future__ import annotations

import pytest

from sidecar.providers import EndpointMatcher, parse_host_rules

M = EndpointMatcher()


@pytest.mark.parametrize("host,path,provider,fmt,op,model", [
    ("api.openai.com", "/v1/chat/completions", "openai", "openai", "chat", None),
    ("api.openai.com", "/v1/completions", "openai", "openai", "text_completion", None),
    ("api.openai.com", "/v1/embeddings", "openai", "openai", "embeddings", None),
    ("api.openai.com", "/v1/responses", "openai", "openai", "chat", None),
    ("res.openai.azure.com", "/openai/deployments/gpt4o-prod/chat/completions", "azure.ai.openai", "openai", "chat",
     "gpt4o-prod"),
    ("api.anthropic.com", "/v1/messages", "anthropic", "anthropic", "chat", None),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-1.5-pro:generateContent", "gcp.gemini", "gemini",
     "generate_content", "gemini-1.5-pro"),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "gcp.gemini",
     "gemini", "generate_content", "gemini-2.0-flash"),
    ("generativelanguage.googleapis.com", "/v1beta3/models/text-bison-001:generateText", "gcp.gemini", "palm",
     "text_completion", "text-bison-001"),
    ("us-central1-aiplatform.googleapis.com",
     "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-pro:generateContent", "gcp.vertex_ai",
     "gemini", "generate_content", "gemini-pro"),
    ("api.deepseek.com", "/chat/completions", "deepseek", "openai", "chat", None),
    ("dashscope.aliyuncs.com", "/compatible-mode/v1/chat/completions", "qwen", "openai", "chat", None),
    ("localhost", "/v1/chat/completions", "openai", "openai", "chat", None),  # vLLM, gateways, Ollama's compat path
    ("10.0.0.5", "/api/chat", "ollama", "ollama", "chat", None),
    ("10.0.0.5", "/api/generate", "ollama", "ollama", "text_completion", None),
])
def test_known_shapes(host: str, path: str, provider: str, fmt: str, op: str, model: str | None) -> None:
    ep = M.match("POST", host, 443, path)
    assert ep is not None
    assert (ep.provider, ep.api_format, ep.operation, ep.path_model) == (provider, fmt, op, model)


@pytest.mark.parametrize("method,host,path", [
    ("GET", "api.openai.com", "/v1/models"),
    ("POST", "example.com", "/api/v2/orders"),
    ("POST", "example.com", "/messages"),
    ("POST", "generativelanguage.googleapis.com", "/v1beta/models/gemini-pro:countTokens"),
])
def test_not_model_calls(method: str, host: str, path: str) -> None:
    assert M.match(method, host, 443, path) is None


def test_generic_paths_are_weak_until_the_body_confirms() -> None:
    ep = M.match("POST", "10.0.0.5", 11434, "/api/chat")
    assert ep is not None and ep.weak
    assert not M.match("POST", "api.openai.com", 443, "/v1/chat/completions").weak  # type: ignore[union-attr]


def test_model_hosts_and_excludes() -> None:
    m = EndpointMatcher(parse_host_rules("llm.internal:8000=vllm, gw.corp", with_provider=True),
                        parse_host_rules("api.openai.com", with_provider=False))
    listed = m.match("POST", "llm.internal", 8000, "/v1/chat/completions")
    assert listed is not None and listed.provider == "vllm"
    unknown_path = m.match("POST", "gw.corp", 443, "/custom/infer")
    assert unknown_path is not None and unknown_path.api_format == "unknown" and unknown_path.operation is None
    assert m.match("POST", "llm.internal", 9000, "/custom") is None  # other port: not listed
    assert m.match("POST", "api.openai.com", 443, "/v1/chat/completions") is None  # excluded


@pytest.mark.parametrize("bad", ["host:99999", "a b", "h=Bad Name", "x:y:z"])
def test_bad_host_rules(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_host_rules(bad, with_provider=True)
