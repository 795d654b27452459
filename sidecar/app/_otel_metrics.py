"""GenAI client metrics through OpenTelemetry's MeterProvider, with the conventions' names, units
and bucket advice. Instruments come from the global meter provider: no-ops until the application
configures one, then real (the API's proxy meter hands them over)."""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics

from sidecar.telemetry import DURATION_BUCKETS, ModelLabels

# The conventions' advice: token usage 1, 4, 16 ... 67108864; durations 0.01 s doubling to 81.92 s.
TOKEN_BOUNDARIES = [float(4**i) for i in range(14)]
DURATION_BOUNDARIES = [b for b in DURATION_BUCKETS if b <= 81.92]


class OtelMetrics:
    def __init__(self, max_models: int = 50) -> None:
        meter = metrics.get_meter("llm-audit-sidecar")
        self._model = ModelLabels(max_models)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BOUNDARIES)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BOUNDARIES)
        self.ttfc = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time to the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=DURATION_BOUNDARIES)
        self.cost = meter.create_counter(
            "sidecar.gen_ai.client.cost", unit="USD", description="Price of model calls in US dollars.")

    def observe(self, doc: dict[str, Any]) -> None:
        if doc.get("sidecar.cache.hit"):
            return
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": doc.get("gen_ai.operation.name") or "chat",
            "gen_ai.provider.name": doc.get("gen_ai.provider.name") or "unknown",
        }
        for key in ("gen_ai.request.model", "gen_ai.response.model"):
            if doc.get(key):
                attrs[key] = self._model(doc[key])
        for key in ("server.address", "server.port", "error.type"):
            if doc.get(key) is not None:
                attrs[key] = doc[key]
        duration = doc.get("event.duration")
        if isinstance(duration, int):
            self.duration.record(duration / 1e9, attrs)
        ok = {k: v for k, v in attrs.items() if k != "error.type"}
        for key, kind in (("gen_ai.usage.input_tokens", "input"), ("gen_ai.usage.output_tokens", "output")):
            if isinstance(doc.get(key), int):
                self.tokens.record(doc[key], {**ok, "gen_ai.token.type": kind})
        ttfc = doc.get("gen_ai.response.time_to_first_chunk")
        if isinstance(ttfc, float) and doc.get("gen_ai.request.stream"):
            self.ttfc.record(ttfc, ok)
        cost = doc.get("sidecar.cost.usd")
        if isinstance(cost, float) and cost > 0:
            self.cost.add(cost, ok)
