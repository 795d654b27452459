"""Prometheus metrics: GenAI client families plus the pipeline's own counters.

The same families and labels are produced by the application (from its calls) and
by the sidecar (from the records it ships), so dashboards work from either. Labels
come only from bounded sets: provider, normalised model (capped in number),
operation, status code, error type. Never a user, a key, a prompt or a URL.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

# OpenTelemetry GenAI advice: 0.01 s doubling to 81.92 s, plus long generations.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
                    120.0, 300.0, 600.0)
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1, 4, 16 ... 67108864
CALL_LABELS = ("provider", "model", "operation", "status_code", "error_type")
PREINIT_CODES = ("200", "400", "401", "403", "429", "500", "503")

_MODEL_CLEAN = re.compile(r"[^a-z0-9._:/-]")
# A model name is words and version numbers; a long run of mixed letters and digits is a key, an id
# or a hash (a fine-tuned model's suffix), never a label.
_TOKEN_LIKE = re.compile(r"(?=[a-z0-9]{0,63}[0-9])(?=[a-z0-9]{0,63}[a-z])[a-z0-9]{20,}")
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]{0,39}:[0-9a-f]{8}>")
MAX_LABEL_CHARS = 64
#: Status codes kept as label values; any other is "other".
KNOWN_STATUS_CODES = frozenset((
    "200", "201", "202", "204", "206", "301", "302", "304", "307", "308", "400", "401", "402", "403", "404", "405",
    "408", "409", "410", "413", "415", "422", "424", "429", "451", "499", "500", "501", "502", "503", "504", "529",
))  # fmt: skip
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")


def model_label_value(model: str) -> str:
    """The label form of a (redacted) model name: lower case, safe characters, at most 64 characters.

    A name holding a placeholder becomes ``redacted``; a fine-tuned name (``ft:base:org:suffix:id``)
    its base (``ft:base``); a name with a key-like run, or too long, ``other``."""
    if _PLACEHOLDER.search(model):
        return "redacted"
    name = _MODEL_CLEAN.sub("_", model.strip().lower())
    if name.startswith("ft:"):
        name = "ft:" + name[3:].split(":", 1)[0]
    elif name.startswith("accounts/") and "/models/" in name:  # Fireworks-style account paths
        name = name.split("/models/", 1)[1]
    if not name or len(name) > MAX_LABEL_CHARS or _TOKEN_LIKE.search(name):
        return "other"
    return name


def status_label(status: Any) -> str:
    if status is None:
        return "none"
    code = str(status)
    return code if code in KNOWN_STATUS_CODES else "other"


_WORD = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
_RULE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,39}")


def provider_label(value: Any) -> str:
    """Provider and operation: names from the endpoint table or the operator's host rules."""
    if not value:
        return "unknown"
    return value if isinstance(value, str) and _WORD.fullmatch(value) else "other"


class BoundedLabels:
    """Admits at most ``limit`` distinct label values; any further one becomes ``other``, so a label fed
    by callers cannot grow a metric without bound."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, name: str) -> str:
        if name in self._seen:
            return name
        with self._lock:
            if len(self._seen) >= self._limit:
                return "other"
            self._seen.add(name)
        return name


class ModelLabels(BoundedLabels):
    """Normalises (redacted) model names and caps how many distinct ones become label values."""

    def __call__(self, model: str | None) -> str:
        if not model:
            return "unknown"
        name = model_label_value(model)
        if name in ("other", "redacted"):
            return name
        return self.admit(name)


class ErrorTypeLabels(BoundedLabels):
    """``error.type`` as a label: a known status code, or an exception's class name (capped in number)."""

    def __init__(self, limit: int = 50) -> None:
        super().__init__(limit)

    def __call__(self, error_type: str | None) -> str:
        if not error_type:
            return ""
        if error_type.isdigit():
            return status_label(error_type)
        name = error_type.rsplit(".", 1)[-1]
        if not _CLASS_NAME.fullmatch(name):
            return "other"
        return self.admit(name)


class CallMetrics:
    """The model-call families. The app updates them per call; the sidecar per shipped record."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_models: int = 50) -> None:
        reg = registry if registry is not None else REGISTRY
        self.registry = reg
        self.model_label = ModelLabels(max_models)
        self.error_label = ErrorTypeLabels()
        self.duration = Histogram(
            "gen_ai_client_operation_duration", "GenAI operation duration (to the end of the body).",
            CALL_LABELS, unit="seconds", buckets=DURATION_BUCKETS, registry=reg)
        self.tokens = Histogram(
            "gen_ai_client_token_usage", "Tokens used per call, by gen_ai.token.type.",
            ("provider", "model", "operation", "token_type"), buckets=TOKEN_BUCKETS, registry=reg)
        self.ttfc = Histogram(
            "gen_ai_client_operation_time_to_first_chunk", "Time to the first chunk of a streamed response.",
            ("provider", "model", "operation"), unit="seconds", buckets=DURATION_BUCKETS, registry=reg)
        self.requests = Counter(
            "llm_requests", "Model calls by provider, model, operation, status code and error type.",
            CALL_LABELS, registry=reg)
        self.redactions = Counter("sidecar_redactions", "Values masked, by type.", ("type",), registry=reg)
        self.cache_hits = Counter("llm_cache_hits", "Model calls answered from a client-side cache.",
                                  ("provider", "model", "operation"), registry=reg)
        self.cost = Counter("gen_ai_client_cost_usd", "Price of model calls in US dollars, by service, provider "
                            "and model (prices: genai-prices or SIDECAR_PRICES_FILE).",
                            ("service_name", "provider", "model"), registry=reg)
        self.cost_unknown = Counter("sidecar_cost_unknown_model", "Calls with token usage but no known price "
                                    "(no cost is written for them).", ("provider", "model"), registry=reg)
        self.service_label = ModelLabels(max_models)  # service names: the same normalising and cap
        self._seen_calls: set[tuple[str, str, str]] = set()

    def _preinit(self, provider: str, model: str, operation: str) -> None:
        """Create the error-code series at 0 the first time a (provider, model, operation) is seen,
        so rate() and increase() see the first 429 instead of a series that starts at 1."""
        self._seen_calls.add((provider, model, operation))
        for code in PREINIT_CODES:
            self.requests.labels(provider, model, operation, code, "" if code == "200" else code)

    def observe_call(self, doc: dict[str, Any]) -> None:
        """Update the call families from one record document."""
        provider = provider_label(doc.get("gen_ai.provider.name"))
        model = self.model_label(doc.get("gen_ai.request.model") or doc.get("gen_ai.response.model"))
        operation = provider_label(doc.get("gen_ai.operation.name"))
        status_code = status_label(doc.get("http.response.status_code"))
        error_type = self.error_label(doc.get("error.type"))
        if doc.get("sidecar.cache.hit"):
            self.cache_hits.labels(provider, model, operation).inc()
            return
        if (provider, model, operation) not in self._seen_calls:
            self._preinit(provider, model, operation)
        self.requests.labels(provider, model, operation, status_code, error_type).inc()
        duration = doc.get("event.duration")
        if isinstance(duration, int):
            self.duration.labels(provider, model, operation, status_code, error_type).observe(duration / 1e9)
        for key, kind in (("gen_ai.usage.input_tokens", "input"), ("gen_ai.usage.output_tokens", "output")):
            value = doc.get(key)
            if isinstance(value, int):
                self.tokens.labels(provider, model, operation, kind).observe(value)
        ttfc = doc.get("gen_ai.response.time_to_first_chunk")
        if isinstance(ttfc, float) and doc.get("gen_ai.request.stream"):
            self.ttfc.labels(provider, model, operation).observe(ttfc)
        cost = doc.get("sidecar.cost.usd")
        if isinstance(cost, (int, float)) and cost >= 0:
            self.cost.labels(self.service_label(doc.get("service.name")), provider, model).inc(cost)
        elif isinstance(doc.get("gen_ai.usage.input_tokens"), int) or isinstance(
                doc.get("gen_ai.usage.output_tokens"), int):
            self.cost_unknown.labels(provider, model).inc()
        for kind, count in (doc.get("sidecar.redaction.counts") or {}).items():
            if isinstance(count, int) and _RULE_NAME.fullmatch(kind):  # rule names: a bounded set
                self.redactions.labels(kind).inc(count)


class Metrics(CallMetrics):
    """The application process: call families plus the in-app pipeline's own counters."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_models: int = 50) -> None:
        super().__init__(registry, max_models=max_models)
        reg = self.registry
        self.records_spooled = Counter("sidecar_records_spooled", "Audit records written to the spool.",
                                       registry=reg)
        self.spool_bytes = Counter("sidecar_spool_written_bytes", "Bytes written to the spool.", registry=reg)
        self.spool_write_failures = Counter("sidecar_spool_write_failures", "Spool writes that failed (e.g. disk "
                                            "full); their records are counted as dropped too.", registry=reg)
        self.records_dropped = Counter("sidecar_records_dropped", "Audit records lost before the spool, by reason.",
                                       ("reason",), registry=reg)
        self.internal_errors = Counter("sidecar_internal_errors", "Exceptions caught inside the sidecar, by stage.",
                                       ("stage",), registry=reg)
        self.redaction_failures = Counter("sidecar_redaction_failures", "Contents withheld because redaction "
                                          "failed (fail closed).", registry=reg)
        # Pre-initialise so rate() sees the first increase (REFERENCE: promtool notes).
        for stage in ("capture", "pipeline", "spool"):
            self.internal_errors.labels(stage)
        for reason in ("queue_full", "spool_full", "write_failed", "pipeline_failed"):
            self.records_dropped.labels(reason)
