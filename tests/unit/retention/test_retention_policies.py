"""Policy bodies by structure, against the documented schemas (no ILM/ISM server here).

Schemas checked (cited, not copied):
* ILM: "Create or update lifecycle policy API" (PUT _ilm/policy/<id>): ``policy.phases`` with
  ``hot``/``warm``/``cold``/``frozen``/``delete``, each ``min_age`` + ``actions``; optional ``_meta``.
  ``min_age`` counts from index creation when there is no rollover (ILM error-handling docs,
  "How min_age is calculated").
* Data stream lifecycle: "Tutorial: Create a data stream with a lifecycle": an index template with
  ``data_stream: {}`` and ``template.lifecycle.data_retention``, priority above 200.
* OpenSearch ISM: "ISM API / Policies": ``policy.description``, ``default_state``, ``states`` (name,
  actions, transitions with ``state_name`` and ``conditions.min_index_age``), ``ism_template``
  (``index_patterns``, ``priority``).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from sidecar.retention import data_stream_template, ilm_policy, index_template, ism_policy, policy_name
from sidecar.retention._policies import delete_after_days, parse_duration

DAY = 86400.0
ILM_PHASES = {"hot", "warm", "cold", "frozen", "delete"}
INDEX_TEMPLATE_KEYS = {
    "index_patterns", "composed_of", "template", "data_stream", "priority", "version", "_meta",
    "allow_auto_create", "ignore_missing_component_templates", "deprecated",
}
ISM_POLICY_KEYS = {"description", "default_state", "states", "ism_template", "error_notification"}


@pytest.mark.parametrize("days", [90, 91, 365, 3650])
def test_ilm_policy_structure(days: int) -> None:
    body = ilm_policy(days, prefix="llm-audit")
    assert set(body) == {"policy"}
    policy = body["policy"]
    assert set(policy) <= {"phases", "_meta"}
    phases = policy["phases"]
    assert set(phases) <= ILM_PHASES and {"hot", "delete"} <= set(phases)
    for phase in phases.values():
        assert set(phase) <= {"min_age", "actions"}
        assert isinstance(phase["actions"], dict)
    assert phases["delete"]["actions"] == {"delete": {}}
    assert phases["delete"]["min_age"] == f"{days + 1}d"
    # Every record of a daily index (created at the first record of its day) is kept `days` days.
    assert parse_duration(phases["delete"]["min_age"]) - DAY >= days * DAY
    assert parse_duration(phases["hot"]["min_age"]) <= parse_duration(phases["delete"]["min_age"])
    assert policy["_meta"]["retention_days"] == days


def test_index_template_attaches_the_policy() -> None:
    body = index_template(90, prefix="acme")
    assert set(body) <= INDEX_TEMPLATE_KEYS
    assert body["index_patterns"] == ["acme-2*"]
    settings = body["template"]["settings"]
    assert settings["index.lifecycle.name"] == policy_name("acme") == "acme-retention"
    assert body["template"]["mappings"]["properties"]["@timestamp"] == {"type": "date"}
    assert body["_meta"]["retention_days"] == 90
    assert "data_stream" not in body  # daily indices, not a data stream


@pytest.mark.parametrize("days", [90, 400])
def test_data_stream_lifecycle_structure(days: int) -> None:
    body = data_stream_template(days, prefix="llm-audit")
    assert set(body) <= INDEX_TEMPLATE_KEYS
    assert body["data_stream"] == {}
    assert body["priority"] > 200
    assert body["template"]["lifecycle"] == {"data_retention": f"{days}d"}
    # Serverless refuses shard/replica settings: the template carries none.
    assert "settings" not in body["template"]
    assert body["template"]["mappings"]["properties"]["@timestamp"] == {"type": "date"}
    assert not any(fnmatch.fnmatchcase("llm-audit-2026.01.01", p) for p in body["index_patterns"])


def _ism_state(policy: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in policy["states"] if s["name"] == name)


@pytest.mark.parametrize("days", [90, 180])
def test_ism_policy_structure(days: int) -> None:
    body = ism_policy(days, prefix="llm-audit")
    assert set(body) == {"policy"}
    policy = body["policy"]
    assert set(policy) <= ISM_POLICY_KEYS
    names = [s["name"] for s in policy["states"]]
    assert policy["default_state"] in names and len(set(names)) == len(names)
    for state in policy["states"]:
        assert set(state) <= {"name", "actions", "transitions"}
        for t in state["transitions"]:
            assert t["state_name"] in names
            assert set(t["conditions"]) == {"min_index_age"}
    hot, delete = _ism_state(policy, "hot"), _ism_state(policy, "delete")
    assert policy["default_state"] == "hot" and hot["actions"] == []
    assert hot["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": f"{days + 1}d"}}]
    assert delete["actions"] == [{"delete": {}}] and delete["transitions"] == []
    patterns = [p for t in policy["ism_template"] for p in t["index_patterns"]]
    assert all(isinstance(t["priority"], int) for t in policy["ism_template"])
    for name in ("llm-audit-2026.01.01", "llm-audit-deadletter-2026.01.01", "llm-audit-anomalies-2026.01.01",
                 "llm-audit-digests-2026.01.01"):
        assert any(fnmatch.fnmatchcase(name, p) for p in patterns), name
    for other in ("llm-auditx-2026.01.01", "other-2026.01.01", "llm-audit-retention-meta"):
        assert not any(fnmatch.fnmatchcase(other, p) for p in patterns), other


def test_delete_after_is_one_day_more_than_retention() -> None:
    assert delete_after_days(90) == 91


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("91d", 91 * DAY), ("2184h", 2184 * 3600.0), ("90m", 5400.0), ("1s", 1.0), ("0ms", 0.0),
     ("1500ms", 1.5), ("7micros", 7e-6), ("9nanos", 9e-9), ("1.5d", 1.5 * DAY), (" 3d ", 3 * DAY)],
)
def test_parse_duration_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["90", "d", "-1d", "90M", "1y", "1w", "nand", "infd", "", 90, None])
def test_parse_duration_refuses(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
