from __future__ import annotations

from prometheus_client import CollectorRegistry

from sidecar.telemetry import Metrics, ModelLabels


def test_model_labels_are_normalised_and_capped() -> None:
    labels = ModelLabels(limit=2)
    assert labels("GPT-4o Mini") == "gpt-4o_mini"
    assert labels("meta-llama/Llama-3.1-8B") == "meta-llama/llama-3.1-8b"
    assert labels("third") == "other"
    assert labels("gpt-4o mini") == "gpt-4o_mini"  # already seen: kept
    assert labels(None) == "unknown"
    assert len(labels("x" * 500)) <= 64 or labels("x" * 500) == "other"


def test_error_codes_are_preinitialised_and_labels_bounded() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg)
    m.observe_call({"gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "gen_ai.operation.name": "chat",
                    "http.response.status_code": 200, "event.duration": 1_000_000, "user.id": "alice",
                    "error.type": None})
    sample = {"provider": "openai", "model": "m", "operation": "chat"}
    assert reg.get_sample_value("llm_requests_total", {**sample, "status_code": "429", "error_type": "429"}) == 0
    assert reg.get_sample_value("llm_requests_total", {**sample, "status_code": "200", "error_type": ""}) == 1
    exposition = b"".join(
        f"{s.name}{s.labels}".encode() for fam in reg.collect() for s in fam.samples)
    assert b"alice" not in exposition  # never a user in a label
