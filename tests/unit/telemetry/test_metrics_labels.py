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
    fresh = ModelLabels(limit=2)  # room left: an over-long name is "other" and takes no slot
    assert fresh("x" * 500) == "other"
    assert (fresh("a"), fresh("b"), fresh("c")) == ("a", "b", "other")


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


def test_model_label_values_are_redacted_normalised_and_never_key_like() -> None:
    from sidecar.telemetry import model_label_value

    assert model_label_value("ft:gpt-4o:<EMAIL:1a2b3c4d>:x") == "redacted"
    assert model_label_value("ft:gpt-4o-mini:acme-corp:support:9abcDEF1") == "ft:gpt-4o-mini"
    assert model_label_value("proj-" + "ab1cd2ef3gh4ij5kl6mn7op8") == "other"  # a key-like run
    assert model_label_value("m" * 65) == "other"
    assert model_label_value("Qwen2.5-72B-Instruct") == "qwen2.5-72b-instruct"
    assert model_label_value("accounts/fireworks/models/llama-v3p1-8b") == "llama-v3p1-8b"


def test_status_and_error_type_labels_are_bounded() -> None:
    from sidecar.telemetry import status_label

    reg = CollectorRegistry()
    m = Metrics(reg)
    for status in (200, 429, 599, 1234, 218, None):
        m.observe_call({"gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "gen_ai.operation.name": "chat",
                        "http.response.status_code": status, "error.type": str(status) if status else None})
    for n in range(80):  # exception class names: at most 50 distinct, then other
        m.observe_call({"gen_ai.provider.name": "Evil Provider <x@y.z>", "gen_ai.request.model": "m",
                        "error.type": f"httpx.Error{n}"})
    samples = [s for fam in reg.collect() for s in fam.samples if s.name == "llm_requests_total"]
    codes = {s.labels["status_code"] for s in samples}
    assert codes <= {"200", "400", "401", "403", "429", "500", "503", "none", "other"}
    assert "599" not in codes and "1234" not in codes and status_label(599) == "other"
    errors = {s.labels["error_type"] for s in samples}
    assert len(errors) <= 50 + 10 and "other" in errors
    assert {s.labels["provider"] for s in samples} <= {"openai", "other"}
