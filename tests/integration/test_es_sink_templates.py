"""Index templates derived from the record schema, read back from a real Elasticsearch."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sidecar.record import field_types
from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.ship.templates import audit_template, nest, template_names


def _field(properties: dict[str, Any], dotted: str) -> dict[str, Any]:
    node: dict[str, Any] = {"properties": properties}
    for part in dotted.split("."):
        assert "properties" in node, f"{dotted}: {part} has no sub-fields"
        node = node["properties"][part]
    return node


def _assert_schema_mapping(properties: dict[str, Any]) -> None:
    types = field_types()
    assert len(types) > 40
    for name, kind in types.items():
        got = _field(properties, name)
        if kind == "text":
            assert got["type"] == "text", name
            assert got["fields"]["keyword"] == {"type": "keyword", "ignore_above": 1024}, name
        elif kind == "object":
            assert got.get("type", "object") == "object" and got.get("dynamic") in (True, "true"), name
        elif kind == "json":  # structured messages: kept in _source, not indexed key by key
            assert got == {"type": "object", "enabled": False}, name
        elif kind == "keyword":
            assert got == {"type": "keyword", "ignore_above": 1024}, name
        else:
            assert got == {"type": kind}, name


def test_open_installs_templates_derived_from_the_schema(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any
) -> None:
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix)
    assert sink.healthy() is False  # reachable, but no template yet
    sink.open()
    sink.open()  # idempotent
    assert sink.healthy() is True

    names = template_names(es_prefix)
    res = es.request("GET", f"/_index_template/{names['audit']}")
    tpl = res["index_templates"][0]["index_template"]
    assert tpl["index_patterns"] == [f"{es_prefix}-2*"]
    mappings = tpl["template"]["mappings"]
    assert mappings["dynamic"] in (False, "false")
    _assert_schema_mapping(mappings["properties"])
    # Default replicas follow the cluster's size: none on one node (green), one from two nodes on.
    assert tpl["template"]["settings"]["index"]["auto_expand_replicas"] == "0-1"
    assert "number_of_replicas" not in tpl["template"]["settings"]["index"]

    # The index created by the first write really has that mapping; unknown fields are kept
    # in _source but not mapped; redaction counts become longs.
    sink.write(docs_factory(3), threading.Event())
    index = f"{es_prefix}-2026.03.14"
    got = es.request("GET", f"/{index}/_mapping")[index]["mappings"]
    _assert_schema_mapping(got["properties"])
    assert _field(got["properties"], "sidecar.redaction.counts.email") == {"type": "long"}
    assert got["_meta"]["managed_by"] == "llm-audit-sidecar"


def test_each_index_family_gets_its_own_template(elasticsearch_url: str, es: Any, es_prefix: str) -> None:
    ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix).open()
    names = template_names(es_prefix)
    expect = {
        f"{es_prefix}-2026.03.14": names["audit"],
        f"{es_prefix}-deadletter-2026.03.14": names["deadletter"],
        f"{es_prefix}-anomalies-2026.03.14": names["anomalies"],
    }
    for index, template in expect.items():
        sim = es.request("POST", f"/_index_template/_simulate_index/{index}")
        assert not sim.get("overlapping"), sim.get("overlapping")
        es.request("PUT", f"/{index}")
        meta = es.request("GET", f"/{index}/_mapping")[index]["mappings"]
        props = meta["properties"]
        if template == names["audit"]:
            assert "gen_ai" in props and "original" not in props.get("sidecar", {}).get("properties", {})
        elif template == names["deadletter"]:
            assert _field(props, "sidecar.original") == {"type": "object", "enabled": False}
            assert _field(props, "error.reason")["type"] == "text"
            assert "gen_ai" not in props
        else:
            assert _field(props, "sidecar.anomaly.score") == {"type": "double"}
            assert _field(props, "sidecar.anomaly.kind")["type"] == "keyword"
            assert _field(props, "http.response.status_code") == {"type": "long"}
            assert _field(props, "gen_ai.request.model")["type"] == "keyword"
            assert _field(props, "message") == {"type": "text"}


def test_templates_of_two_prefixes_coexist(elasticsearch_url: str, es: Any, es_prefix: str) -> None:
    """``llm-audit`` and ``llm-audit-staging`` on one cluster: patterns must not overlap."""
    ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix).open()
    ElasticsearchSink(elasticsearch_url, index_prefix=f"{es_prefix}-staging").open()
    sim = es.request("POST", f"/_index_template/_simulate_index/{es_prefix}-staging-2026.03.14")
    assert not sim.get("overlapping")


def test_retention_policy_and_replicas_in_the_template() -> None:
    # ILM is not in the test distribution: checked by structure.
    tpl = audit_template("llm-audit", retention_policy="llm-audit-90d", number_of_replicas=1)
    settings = tpl["template"]["settings"]
    assert settings["index.lifecycle.name"] == "llm-audit-90d"
    assert settings["index.number_of_replicas"] == 1
    assert "index.lifecycle.name" not in audit_template("llm-audit")["template"]["settings"]


def test_nest_rejects_a_field_that_is_also_a_parent() -> None:
    assert nest({"a.b": {"type": "long"}, "a.c": {"type": "long"}}) == {
        "a": {"properties": {"b": {"type": "long"}, "c": {"type": "long"}}}
    }
    with pytest.raises(ValueError):
        nest({"a.b": {"type": "long"}, "a.b.c": {"type": "long"}})
    with pytest.raises(ValueError):
        nest({"a.b.c": {"type": "long"}, "a.b": {"type": "long"}})
