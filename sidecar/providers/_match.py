"""Which calls are model calls: host rules and path shapes.

Known path shapes are recognised on any host (self-hosted servers and gateways
reuse them); ``SIDECAR_MODEL_HOSTS`` adds hosts whose every call is recorded and
may name their provider; ``SIDECAR_EXCLUDE_HOSTS`` turns hosts off.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass

# host suffix -> gen_ai.provider.name (OpenTelemetry GenAI values where one exists)
_HOST_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.openai"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("api.deepseek.com", "deepseek"),
    ("dashscope.aliyuncs.com", "qwen"),
    ("dashscope-intl.aliyuncs.com", "qwen"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.groq.com", "groq"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.cohere.com", "cohere"),
    ("openrouter.ai", "openrouter"),
    ("api.together.xyz", "together_ai"),
)

# Default provider when only the wire format is known (an unknown host speaking it).
_FORMAT_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "palm": "gcp.gemini",
                    "ollama": "ollama"}

_GEMINI = re.compile(r"/models/(?P<model>[^/:?]{1,200}):(?P<method>[A-Za-z]{1,40})$")
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/(?P<model>[^/]{1,200})/")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the URL alone says about a call."""

    provider: str
    api_format: str  # openai | anthropic | gemini | palm | ollama | unknown
    operation: str | None  # chat | text_completion | embeddings | generate_content | None (unknown path)
    path_model: str | None = None  # model or deployment named in the path
    path_stream: bool = False  # the path itself asks for a stream (Gemini streamGenerateContent)
    weak: bool = False  # a generic path: confirm from the request body before recording


def _path_shape(path: str) -> tuple[str, str | None, str | None, bool, bool] | None:
    """(api_format, operation, path_model, path_stream, weak) for a known path shape."""
    p = path.rstrip("/")
    if p.endswith("/chat/completions"):
        m = _AZURE_DEPLOYMENT.search(p)
        return "openai", "chat", m.group("model") if m else None, False, False
    if p.endswith("/embeddings") and (p.endswith("/v1/embeddings") or "/deployments/" in p or p == "/embeddings"):
        m = _AZURE_DEPLOYMENT.search(p)
        return "openai", "embeddings", m.group("model") if m else None, False, False
    if p.endswith("/completions") and (p.endswith("/v1/completions") or "/deployments/" in p or
                                       p.endswith("/beta/completions") or p == "/completions"):
        m = _AZURE_DEPLOYMENT.search(p)
        return "openai", "text_completion", m.group("model") if m else None, False, False
    if p.endswith("/v1/responses") or p.endswith("/openai/responses"):
        return "openai", "chat", None, False, False
    if p.endswith("/v1/messages"):
        return "anthropic", "chat", None, False, False
    if ":" in p:
        m = _GEMINI.search(p)
        if m:
            method = m.group("method")
            model = m.group("model")
            if method == "generateContent":
                return "gemini", "generate_content", model, False, False
            if method == "streamGenerateContent":
                return "gemini", "generate_content", model, True, False
            if method in ("embedContent", "batchEmbedContents"):
                return "gemini", "embeddings", model, False, False
            if method == "generateText":
                return "palm", "text_completion", model, False, False
            if method == "generateMessage":
                return "palm", "chat", model, False, False
            if method in ("countTokens", "countMessageTokens", "countTextTokens"):
                return None
    if p.endswith("/api/chat"):
        return "ollama", "chat", None, False, True
    if p.endswith("/api/generate"):
        return "ollama", "text_completion", None, False, True
    if p.endswith("/api/embed") or p.endswith("/api/embeddings"):
        return "ollama", "embeddings", None, False, True
    return None


@dataclass(frozen=True, slots=True)
class HostRule:
    host: str
    port: int | None
    provider: str | None

    def matches(self, host: str, port: int | None) -> bool:
        return host == self.host and (self.port is None or self.port == port)


def canonical_path(path: str) -> str:
    """The path as a server routes it: percent-decoded (``chat%2Fcompletions``, ``gemini-pro%3Agenerate``),
    dot segments resolved, repeated slashes and trailing slashes or blanks dropped. Clients differ in what
    they decode before we see the path; matching on this form means no spelling of a model endpoint keeps a
    call out of the audit trail (matching more than a server would is harmless: the call is recorded)."""
    decoded = urllib.parse.unquote(path.split("?", 1)[0])
    resolved = posixpath.normpath(re.sub("/+", "/", "/" + decoded.strip()))
    return resolved.rstrip("/ \t") or "/"


def parse_host_rules(spec: str, *, with_provider: bool) -> tuple[HostRule, ...]:
    """``host[:port][=provider]`` items separated by commas."""
    rules = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        provider = None
        if "=" in item:
            if not with_provider:
                raise ValueError(f"{item!r}: '=provider' is not allowed here")
            item, provider = (x.strip() for x in item.split("=", 1))
            if not re.fullmatch(r"[a-z0-9_.]{1,40}", provider):
                raise ValueError(f"provider name {provider!r} must be lowercase letters, digits, '_' or '.'")
        host, _, port_s = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        if not port_s:
            host = item
        if not re.fullmatch(r"[A-Za-z0-9_.*-]{1,253}", host):
            raise ValueError(f"{item!r} is not a host name")
        port = None
        if port_s:
            if not port_s.isdigit() or not 0 < int(port_s) < 65536:
                raise ValueError(f"{item!r}: bad port")
            port = int(port_s)
        rules.append(HostRule(host.lower(), port, provider))
    return tuple(rules)


class EndpointMatcher:
    """Decides, from method and URL only, whether a call is a model call. Cheap: runs on every HTTP call."""

    def __init__(self, model_hosts: tuple[HostRule, ...] = (), exclude_hosts: tuple[HostRule, ...] = ()) -> None:
        self._model_hosts = model_hosts
        self._exclude = exclude_hosts

    def match(self, method: str, host: str, port: int | None, path: str) -> Endpoint | None:
        host = host.lower()
        for rule in self._exclude:
            if rule.matches(host, port):
                return None
        listed = next((r for r in self._model_hosts if r.matches(host, port)), None)
        shape = _path_shape(canonical_path(path)) if method == "POST" else None
        if shape is None and listed is None:
            return None
        provider = listed.provider if listed and listed.provider else _host_provider(host)
        if shape is None:
            return Endpoint(provider=provider or "unknown", api_format="unknown", operation=None)
        api_format, operation, model, stream, weak = shape
        if provider is None:
            provider = ("azure.ai.openai" if "/openai/deployments/" in canonical_path(path)
                        else _FORMAT_PROVIDER[api_format])
        elif provider == "azure.ai.openai" or listed is not None:
            weak = False
        return Endpoint(provider, api_format, operation, model, stream, weak and listed is None)


def _host_provider(host: str) -> str | None:
    for suffix, name in _HOST_PROVIDERS:
        # exact host, a subdomain, or a regional prefix (us-central1-aiplatform.googleapis.com)
        if host == suffix or (suffix.startswith(".") and host.endswith(suffix)) or host.endswith("." + suffix) \
                or host.endswith("-" + suffix):
            return name
    return None
