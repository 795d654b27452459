"""The Kibana saved objects, checked offline against Kibana 8's export form: Kibana itself is not available
here (no registry this project reaches ships a runnable Kibana server).

Checked: the shipped NDJSON is the generator's output; every object has the 8.x export keys
(`coreMigrationVersion`, `typeMigrationVersion`, no legacy `migrationVersion`) with versions no newer than
the oldest Kibana the README claims; visualizations are Lens; every nested JSON string parses; every
reference resolves; every field used (columns, sort, KQL, Lens columns, time field) exists in the index
template of the indices its data view matches, with a type the operation can use; the data views follow
the index prefix."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import pytest

from sidecar.dashboards.kibana import (
    CORE_MIGRATION_VERSION,
    OLDEST_KIBANA,
    RECORDS,
    TYPE_MIGRATION_VERSION,
    saved_objects,
    to_ndjson,
)
from sidecar.ship.templates import anomaly_template, audit_template, deadletter_template

REPO = pathlib.Path(__file__).resolve().parents[2]
NDJSON = REPO / "dashboards" / "kibana" / "llm-audit.ndjson"
EXPORT_KEYS = {"attributes", "coreMigrationVersion", "id", "managed", "references", "type", "typeMigrationVersion"}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def objects() -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(NDJSON.read_text().splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            pytest.fail(f"line {n}: {exc}")
        assert isinstance(obj, dict), n
        out.append(obj)
    return out


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["attributes"].get("kibanaSavedObjectMeta", {})
    return json.loads(meta["searchSourceJSON"]) if "searchSourceJSON" in meta else {}


def field_types(template: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            full = prefix + name
            if "properties" in spec:
                walk(spec["properties"], full + ".")
            else:
                out[full] = spec.get("type", "object")
                for sub, subspec in spec.get("fields", {}).items():
                    out[f"{full}.{sub}"] = subspec["type"]

    walk(template["template"]["mappings"]["properties"], "")
    return out


def kql_fields(query: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", query)
    return set(re.findall(r"([A-Za-z@][\w.@]*)\s*(?::|>=|<=|>|<)", text))


def templates(prefix: str) -> dict[str, dict[str, str]]:
    return {f"{prefix}-2*": field_types(audit_template(prefix)),
            f"{prefix}-anomalies-*": field_types(anomaly_template(prefix)),
            f"{prefix}-deadletter-*": field_types(deadletter_template(prefix))}


def test_the_shipped_file_is_the_generators_output() -> None:
    assert NDJSON.read_bytes() == to_ndjson(saved_objects("llm-audit")), \
        ("dashboards/kibana/llm-audit.ndjson is stale: "
         "python -m sidecar.dashboards.kibana > dashboards/kibana/llm-audit.ndjson")


def test_export_form_of_kibana_8() -> None:
    objs = objects()
    assert len({(o["type"], o["id"]) for o in objs}) == len(objs), "duplicate objects"
    for obj in objs:
        assert set(obj) == EXPORT_KEYS, f"{obj['id']}: {set(obj) ^ EXPORT_KEYS}"
        assert "migrationVersion" not in obj
        assert obj["type"] in TYPE_MIGRATION_VERSION, f"{obj['id']}: {obj['type']} (legacy visualizations are out)"
        assert obj["coreMigrationVersion"] == CORE_MIGRATION_VERSION
        assert version(obj["typeMigrationVersion"]) <= version(OLDEST_KIBANA), obj["id"]
        assert obj["managed"] is False
        for key in ("fieldAttrs", "fieldFormatMap", "fields", "runtimeFieldMap", "sourceFilters", "typeMeta",
                    "panelsJSON", "optionsJSON"):
            if key in obj["attributes"]:
                json.loads(obj["attributes"][key])
        search_source(obj)
    readme = (REPO / "dashboards" / "README.md").read_text()
    assert "Kibana {}.{} or newer".format(*version(OLDEST_KIBANA)[:2]) in readme


def test_lens_state_is_form_based_and_each_layer_names_its_data_view() -> None:
    lenses = [o for o in objects() if o["type"] == "lens"]
    assert len(lenses) >= 5
    for lens in lenses:
        state = lens["attributes"]["state"]
        assert lens["attributes"]["visualizationType"] in ("lnsXY", "lnsDatatable", "lnsMetric", "lnsPie")
        layers = state["datasourceStates"]["formBased"]["layers"]
        refs = {r["name"] for r in lens["references"]}
        for layer_id, layer in layers.items():
            assert f"indexpattern-datasource-layer-{layer_id}" in refs, lens["id"]
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"]), lens["id"]
            bucketed = [layer["columns"][c]["isBucketed"] for c in layer["columnOrder"]]
            assert bucketed == sorted(bucketed, reverse=True), f"{lens['id']}: buckets before metrics"
            for column in layer["columns"].values():
                order = column.get("params", {}).get("orderBy", {})
                assert order.get("type") != "column" or order["columnId"] in layer["columns"], lens["id"]
        vis = state["visualization"]
        accessors = ({c["columnId"] for c in vis["columns"]} if "columns" in vis else
                     {a for layer in vis["layers"] for a in
                      [*layer["accessors"], layer.get("xAccessor"), layer.get("splitAccessor")] if a})
        assert accessors <= {c for layer in layers.values() for c in layer["columns"]}, lens["id"]


def test_every_reference_resolves_and_the_dashboard_links_every_search_and_lens() -> None:
    objs = objects()
    known = {(o["type"], o["id"]) for o in objs}
    for obj in objs:
        names = {r["name"] for r in obj["references"]}
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, f"{obj['id']}: dangling reference {ref}"
        source = search_source(obj)
        if "indexRefName" in source:
            assert source["indexRefName"] in names, obj["id"]
    (dash,) = [o for o in objs if o["type"] == "dashboard"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    assert {f"{p['panelIndex']}:{p['panelRefName']}" for p in panels} == {r["name"] for r in dash["references"]}
    assert len({p["panelIndex"] for p in panels}) == len(panels)
    for p in panels:
        assert p["gridData"]["i"] == p["panelIndex"] and p["gridData"]["x"] + p["gridData"]["w"] <= 48
        assert version(p["version"]) <= version(OLDEST_KIBANA)
    linked = {r["id"] for r in dash["references"]}
    assert {o["id"] for o in objs if o["type"] in ("search", "lens")} == linked


def test_the_searches_an_auditor_needs() -> None:
    objs = objects()
    views = {o["id"]: o["attributes"]["title"] for o in objs if o["type"] == "index-pattern"}
    searches = {}
    for o in objs:
        if o["type"] == "search":
            (ref,) = o["references"]
            searches[o["attributes"]["title"]] = (views[ref["id"]], o["attributes"]["sort"][0][0], o)
    assert searches["LLM calls by user"][:2] == ("llm-audit-2*", "user.id")
    assert searches["LLM calls by API key"][:2] == ("llm-audit-2*", "sidecar.credential.fingerprint")
    assert searches["LLM calls by status code"][:2] == ("llm-audit-2*", "http.response.status_code")
    assert searches["LLM calls by model"][:2] == ("llm-audit-2*", "gen_ai.request.model")
    assert searches["LLM anomalies"][0] == "llm-audit-anomalies-*"
    assert searches["LLM dead letters"][0] == "llm-audit-deadletter-*"
    assert {"LLM errors", "Redaction hits"} <= set(searches)


def test_every_field_exists_in_the_index_template_with_a_usable_type() -> None:
    objs = objects()
    mapped = templates("llm-audit")
    views = {o["id"]: o["attributes"]["title"] for o in objs if o["type"] == "index-pattern"}
    for title in views.values():
        assert title in mapped, f"data view {title} matches no index the sidecar writes"
    checked = 0
    for obj in objs:
        attrs = obj["attributes"]
        if obj["type"] == "index-pattern":
            assert mapped[attrs["title"]][attrs["timeFieldName"]] == "date"
            for field in json.loads(attrs["fieldFormatMap"]):
                assert field in mapped[attrs["title"]]
            continue
        if obj["type"] == "dashboard":
            continue
        view = {r["name"]: views[r["id"]] for r in obj["references"] if r["type"] == "index-pattern"}
        if obj["type"] == "search":
            fields = mapped[view["kibanaSavedObjectMeta.searchSourceJSON.index"]]
            used = set(attrs["columns"]) | {s[0] for s in attrs["sort"]}
            used |= kql_fields(search_source(obj)["query"]["query"])
            for field in used:
                assert field in fields, f"{obj['id']}: {field} is not in the index template"
                checked += 1
            for field, _ in attrs["sort"]:
                assert fields[field] in ("keyword", "long", "double", "date", "boolean"), f"{obj['id']}: sort {field}"
            continue
        state = attrs["state"]
        for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
            fields = mapped[view[f"indexpattern-datasource-layer-{layer_id}"]]
            for field in kql_fields(state["query"]["query"]):
                assert field in fields, f"{obj['id']}: query field {field}"
                checked += 1
            for column in layer["columns"].values():
                field, op = column["sourceField"], column["operationType"]
                if field == RECORDS:
                    assert op == "count"
                    continue
                assert field in fields, f"{obj['id']}: {field} is not in the index template"
                kind = fields[field]
                wanted = {"date_histogram": {"date"}, "sum": {"long", "double"}, "terms": {"keyword", "long"}}[op]
                assert kind in wanted, f"{obj['id']}: {op} on {field} ({kind})"
                assert column["dataType"] == {"date": "date", "keyword": "string"}.get(kind, "number")
                checked += 1
    assert checked > 60


@pytest.mark.parametrize("prefix", ["acme-prod", "x", "team_a.llm"])
def test_another_prefix_gets_its_own_data_views_and_ids(prefix: str) -> None:
    objs = saved_objects(prefix)
    titles = {o["attributes"]["title"] for o in objs if o["type"] == "index-pattern"}
    assert titles == set(templates(prefix))
    assert all(o["id"].startswith(prefix + "-") for o in objs)
    default_ids = {o["id"] for o in saved_objects("llm-audit")}
    assert not default_ids & {o["id"] for o in objs}, "two prefixes in one Kibana must not overwrite each other"
    text = to_ndjson(objs).decode()
    assert "llm-audit-2*" not in text
