"""The Kibana saved objects (NDJSON), checked offline: Kibana itself is not available here (no registry
this project reaches ships a runnable Kibana server), so these tests check the file by structure:
every line parses, nested JSON strings parse, every reference resolves, every field used exists in the
Elasticsearch index template the sidecar installs, and migration versions are not newer than the
oldest Kibana version the README claims."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import pytest

from sidecar.ship._templates import anomaly_template, audit_index_pattern, audit_template

REPO = pathlib.Path(__file__).resolve().parents[2]
NDJSON = REPO / "dashboards" / "kibana" / "llm-audit.ndjson"
OLDEST_KIBANA = (8, 0, 0)  # dashboards/README.md: "Kibana 8.0 or newer"
NESTED = ("visState", "uiStateJSON", "panelsJSON", "optionsJSON", "fieldFormatMap", "fields")


def objects() -> list[dict[str, Any]]:
    lines = [line for line in NDJSON.read_text().splitlines() if line.strip()]
    out = []
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            pytest.fail(f"line {n}: {exc}")
        assert isinstance(obj, dict) and {"type", "id", "attributes", "references"} <= obj.keys(), n
        out.append(obj)
    return out


def nested(obj: dict[str, Any], key: str) -> Any:
    value = obj["attributes"][key]
    assert isinstance(value, str), f"{obj['id']}.{key} must be a JSON string"
    return json.loads(value)


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
    return json.loads(meta["searchSourceJSON"]) if "searchSourceJSON" in meta else {}


def mapped_fields(template: dict[str, Any]) -> set[str]:
    out: set[str] = set()

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            full = prefix + name
            if "properties" in spec:
                walk(spec["properties"], full + ".")
            else:
                out.add(full)
                for sub in spec.get("fields", {}):
                    out.add(f"{full}.{sub}")

    walk(template["template"]["mappings"]["properties"], "")
    return out


def kql_fields(query: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", query)
    return set(re.findall(r"([A-Za-z@][\w.@]*)\s*(?::|>=|<=|>|<)", text))


def test_every_line_and_nested_string_parses() -> None:
    objs = objects()
    assert len({(o["type"], o["id"]) for o in objs}) == len(objs), "duplicate objects"
    for obj in objs:
        for key in NESTED:
            if key in obj["attributes"]:
                nested(obj, key)
        search_source(obj)


def test_required_objects_exist() -> None:
    objs = objects()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for obj in objs:
        by_type.setdefault(obj["type"], []).append(obj)
    views = {o["attributes"]["title"]: o for o in by_type["index-pattern"]}
    audit = views[audit_index_pattern("llm-audit")]
    assert audit["attributes"]["timeFieldName"] == "@timestamp"
    searches = {o["attributes"]["title"] for o in by_type["search"]}
    assert {"LLM errors", "Redaction hits"} <= searches
    vis = {o["attributes"]["title"] for o in by_type["visualization"]}
    assert {"LLM calls by status code over time", "Top callers by error"} <= vis
    (dash,) = by_type["dashboard"]
    panel_refs = {r["id"] for r in dash["references"]}
    assert {o["id"] for o in by_type["visualization"] + by_type["search"]} <= panel_refs


def test_every_reference_resolves() -> None:
    objs = objects()
    known = {(o["type"], o["id"]) for o in objs}
    for obj in objs:
        names = set()
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, f"{obj['id']}: dangling reference {ref}"
            names.add(ref["name"])
        source = search_source(obj)
        if "indexRefName" in source:
            assert source["indexRefName"] in names, obj["id"]
        if "savedSearchRefName" in obj["attributes"]:
            assert obj["attributes"]["savedSearchRefName"] in names, obj["id"]
        if obj["type"] == "dashboard":
            panels = nested(obj, "panelsJSON")
            assert {p["panelRefName"] for p in panels} == names
            assert len({p["panelIndex"] for p in panels}) == len(panels)


def test_every_field_exists_in_the_index_template() -> None:
    objs = objects()
    by_id = {(o["type"], o["id"]): o for o in objs}
    templates = {"llm-audit-2*": mapped_fields(audit_template("llm-audit")),
                 "llm-audit-anomalies-*": mapped_fields(anomaly_template("llm-audit"))}

    def data_view(obj: dict[str, Any]) -> str:
        for ref in obj["references"]:
            if ref["type"] == "index-pattern":
                return str(by_id[("index-pattern", ref["id"])]["attributes"]["title"])
            if ref["type"] == "search" and obj["type"] != "dashboard":
                return data_view(by_id[("search", ref["id"])])
        raise AssertionError(f"{obj['id']}: no data view")

    checked = 0
    for obj in objs:
        attrs = obj["attributes"]
        if obj["type"] == "index-pattern":
            assert attrs["timeFieldName"] in templates[attrs["title"]]
            continue
        if obj["type"] not in ("search", "visualization"):
            continue
        mapped = templates[data_view(obj)]
        fields = set(attrs.get("columns", [])) | {s[0] for s in attrs.get("sort", [])}
        fields |= kql_fields(search_source(obj).get("query", {}).get("query", ""))
        if "visState" in attrs:
            fields |= {a["params"]["field"] for a in nested(obj, "visState")["aggs"] if "field" in a["params"]}
        for field in fields:
            assert field in mapped, f"{obj['id']}: field {field} is not in the index template"
            checked += 1
    assert checked > 20


def test_migration_versions_not_newer_than_oldest_claimed() -> None:
    readme = (REPO / "dashboards" / "README.md").read_text()
    assert "Kibana {}.{} or newer".format(*OLDEST_KIBANA[:2]) in readme
    for obj in objects():
        versions = list(obj.get("migrationVersion", {}).values())
        versions += [obj[k] for k in ("coreMigrationVersion", "typeMigrationVersion") if k in obj]
        if obj["type"] == "dashboard":
            versions += [p["version"] for p in nested(obj, "panelsJSON")]
        assert versions, obj["id"]
        for v in versions:
            assert tuple(int(x) for x in v.split(".")) <= OLDEST_KIBANA, f"{obj['id']}: {v}"
