"""The Kibana saved objects, built for one index prefix, in Kibana 8's export form.

``sidecar dashboards install`` sends these for the configured ``SIDECAR_INDEX_PREFIX``, so the data
views always match the indices the sidecar writes. ``dashboards/kibana/llm-audit.ndjson`` is this
module's output for the default prefix (``python -m sidecar.dashboards.kibana > dashboards/kibana/llm-audit.ndjson``;
a test keeps them equal).

Form: one object per line with ``coreMigrationVersion`` and ``typeMigrationVersion`` (no legacy
``migrationVersion``), Lens visualizations (``lens``, form-based layers) and a dashboard whose panels
name their objects through ``references``. The versions are those of Kibana 8.9, the oldest release
that accepts every object here (Lens state 8.9.0); newer releases migrate them on import.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from sidecar.ship.templates import audit_index_pattern

OLDEST_KIBANA = "8.9.0"
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.9.0", "dashboard": "8.9.0"}
RECORDS = "___records___"  # Lens's source field for a document count

_AUDIT_COLUMNS = ["service.name", "user.id", "sidecar.credential.fingerprint", "gen_ai.provider.name",
                  "gen_ai.request.model", "http.response.status_code", "error.type", "event.duration",
                  "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "sidecar.redaction.total"]

# (id suffix, title, description, KQL, columns, sort field): the searches an auditor starts from.
_SEARCHES: list[tuple[str, str, str, str, list[str], str]] = [
    ("errors", "LLM errors", "Model calls that failed: HTTP 4xx/5xx or no response (error.type set).",
     "http.response.status_code >= 400 or error.type : *", _AUDIT_COLUMNS, "@timestamp"),
    ("by-user", "LLM calls by user", "Every call with a known caller, grouped by user id; add user.id : \"...\".",
     "user.id : *", _AUDIT_COLUMNS, "user.id"),
    ("by-key", "LLM calls by API key", "Calls by API-key fingerprint (an HMAC of the key, never the key).",
     "sidecar.credential.fingerprint : *", _AUDIT_COLUMNS, "sidecar.credential.fingerprint"),
    ("by-status", "LLM calls by status code", "Every call, grouped by HTTP status code.",
     "http.response.status_code : * or error.type : *", _AUDIT_COLUMNS, "http.response.status_code"),
    ("by-model", "LLM calls by model", "Every call, grouped by requested model.",
     "gen_ai.request.model : *", _AUDIT_COLUMNS, "gen_ai.request.model"),
    ("redactions", "Redaction hits", "Calls whose content had secrets or personal data masked.",
     "sidecar.redaction.total > 0", _AUDIT_COLUMNS, "@timestamp"),
]
_SIDE_SEARCHES: list[tuple[str, str, str, str, str, list[str]]] = [
    ("anomalies", "anomalies", "LLM anomalies", "Anomalies flagged by the sidecar's detector.", "",
     ["sidecar.anomaly.kind", "gen_ai.provider.name", "gen_ai.request.model", "http.response.status_code",
      "sidecar.credential.fingerprint", "sidecar.anomaly.score", "message"]),
    ("deadletter", "deadletter", "LLM dead letters", "Records the cluster refused for good, with its reason.", "",
     ["sidecar.original_index", "sidecar.original_id", "sidecar.item_status", "error.type", "error.reason"]),
]


def _object(kind: str, oid: str, attributes: dict[str, Any], references: list[dict[str, str]]) -> dict[str, Any]:
    return {"attributes": attributes, "coreMigrationVersion": CORE_MIGRATION_VERSION, "id": oid, "managed": False,
            "references": references, "type": kind, "typeMigrationVersion": TYPE_MIGRATION_VERSION[kind]}


def _data_view(oid: str, title: str, name: str, formats: dict[str, Any] | None = None) -> dict[str, Any]:
    return _object("index-pattern", oid, {
        "fieldAttrs": "{}", "fieldFormatMap": json.dumps(formats or {}), "fields": "[]",
        "name": name, "runtimeFieldMap": "{}", "sourceFilters": "[]", "timeFieldName": "@timestamp",
        "title": title, "typeMeta": "{}"}, [])


def _search(oid: str, view: str, title: str, description: str, kql: str, columns: list[str],
            sort: str) -> dict[str, Any]:
    source = {"query": {"query": kql, "language": "kuery"}, "filter": [],
              "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    sorting = [[sort, "asc" if sort != "@timestamp" else "desc"]] + ([["@timestamp", "desc"]] if sort != "@timestamp"
                                                                     else [])
    return _object("search", oid, {
        "columns": columns, "description": description, "grid": {}, "hideChart": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)}, "sort": sorting, "title": title},
        [{"id": view, "name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern"}])


def _count() -> dict[str, Any]:
    return {"dataType": "number", "isBucketed": False, "label": "Calls", "operationType": "count",
            "params": {"emptyAsNull": True}, "scale": "ratio", "sourceField": RECORDS}


def _sum(field: str, label: str) -> dict[str, Any]:
    return {"dataType": "number", "isBucketed": False, "label": label, "operationType": "sum",
            "params": {"emptyAsNull": True}, "scale": "ratio", "sourceField": field}


def _terms(field: str, label: str, order_by: str, size: int = 10, number: bool = False) -> dict[str, Any]:
    return {"dataType": "number" if number else "string", "isBucketed": True, "label": label,
            "operationType": "terms", "scale": "ordinal", "sourceField": field,
            "params": {"missingBucket": False, "orderBy": {"columnId": order_by, "type": "column"},
                       "orderDirection": "desc", "otherBucket": True, "parentFormat": {"id": "terms"}, "size": size}}


def _time() -> dict[str, Any]:
    return {"dataType": "date", "isBucketed": True, "label": "@timestamp", "operationType": "date_histogram",
            "params": {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"}, "scale": "interval",
            "sourceField": "@timestamp"}


def _lens(oid: str, view: str, title: str, kql: str, columns: dict[str, dict[str, Any]],
          visualization_type: str, visualization: dict[str, Any]) -> dict[str, Any]:
    layer = "layer1"
    state = {
        "adHocDataViews": {},
        "datasourceStates": {"formBased": {"layers": {layer: {
            "columnOrder": list(columns), "columns": columns, "incompleteColumns": {}}}}},
        "filters": [], "internalReferences": [], "query": {"language": "kuery", "query": kql},
        "visualization": {**visualization, "layerId": layer} if visualization_type == "lnsDatatable"
        else {**visualization, "layers": [{**visualization["layers"][0], "layerId": layer}]},
    }
    return _object("lens", oid, {"description": "", "state": state, "title": title,
                                 "visualizationType": visualization_type},
                   [{"id": view, "name": f"indexpattern-datasource-layer-{layer}", "type": "index-pattern"}])


def _xy(series: str, accessors: list[str], x: str, split: str | None) -> dict[str, Any]:
    layer: dict[str, Any] = {"accessors": accessors, "layerType": "data", "position": "top", "seriesType": series,
                             "showGridlines": False, "xAccessor": x}
    if split:
        layer["splitAccessor"] = split
    return {"layers": [layer], "legend": {"isVisible": True, "position": "right"}, "preferredSeriesType": series,
            "valueLabels": "hide"}


def _table(columns: list[str]) -> dict[str, Any]:
    return {"columns": [{"columnId": c} for c in columns], "layerType": "data"}


def _visualizations(p: str, records: str, anomalies: str) -> list[dict[str, Any]]:
    return [
        _lens(f"{p}-calls-by-status", records, "LLM calls by status code over time", "",
              {"time": _time(), "code": _terms("http.response.status_code", "Status code", "calls", number=True),
               "calls": _count()}, "lnsXY", _xy("bar_stacked", ["calls"], "time", "code")),
        _lens(f"{p}-top-callers-by-error", records, "Top callers by error",
              "http.response.status_code >= 400 or error.type : *",
              {"user": _terms("user.id", "User", "calls", 20), "service": _terms("service.name", "Service", "calls"),
               "code": _terms("http.response.status_code", "Status code", "calls", number=True), "calls": _count()},
              "lnsDatatable", _table(["user", "service", "code", "calls"])),
        _lens(f"{p}-failed-by-key", records, "Failed calls by API key", "http.response.status_code : (401 or 403)",
              {"key": _terms("sidecar.credential.fingerprint", "API key fingerprint", "calls", 20),
               "calls": _count()}, "lnsXY", _xy("bar_horizontal", ["calls"], "key", None)),
        _lens(f"{p}-tokens-by-model", records, "Tokens by model", "",
              {"model": _terms("gen_ai.request.model", "Model", "input"),
               "input": _sum("gen_ai.usage.input_tokens", "Input tokens"),
               "output": _sum("gen_ai.usage.output_tokens", "Output tokens")},
              "lnsXY", _xy("bar_stacked", ["input", "output"], "model", None)),
        _lens(f"{p}-spend-by-model", records, "Spend (USD) by model over time", "sidecar.cost.usd : *",
              {"time": _time(), "model": _terms("gen_ai.request.model", "Model", "spend"),
               "spend": _sum("sidecar.cost.usd", "Spend (USD)")},
              "lnsXY", _xy("bar_stacked", ["spend"], "time", "model")),
        _lens(f"{p}-spend-by-service-user", records, "Spend (USD) by service, user and model", "sidecar.cost.usd : *",
              {"service": _terms("service.name", "Service", "spend"), "user": _terms("user.id", "User", "spend", 20),
               "model": _terms("gen_ai.request.model", "Model", "spend"),
               "spend": _sum("sidecar.cost.usd", "Spend (USD)"), "calls": _count()},
              "lnsDatatable", _table(["service", "user", "model", "spend", "calls"])),
        _lens(f"{p}-anomalies-by-kind", anomalies, "Anomalies by kind over time", "",
              {"time": _time(), "kind": _terms("sidecar.anomaly.kind", "Kind", "calls"), "calls": _count()},
              "lnsXY", _xy("bar_stacked", ["calls"], "time", "kind")),
    ]


def _dashboard(p: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    layout, references = [], []
    for n, obj in enumerate(panels, 1):
        index = f"p{n}"
        wide = obj["type"] == "search"
        layout.append({"embeddableConfig": {"enhancements": {}}, "panelIndex": index, "panelRefName": f"panel_{index}",
                       "type": obj["type"], "version": OLDEST_KIBANA,
                       "gridData": {"h": 15, "i": index, "w": 48 if wide else 24,
                                    "x": 0 if wide or n % 2 else 24, "y": 15 * (n // 2)}})
        references.append({"id": obj["id"], "name": f"{index}:panel_{index}", "type": obj["type"]})
    return _object("dashboard", f"{p}-dashboard", {
        "description": "Model calls, errors, callers, API keys, tokens, spend, anomalies and dead letters; each saved "
                       "search panel opens in Discover.",
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({"filter": [], "query": {"language": "kuery",
                                                                                          "query": ""}})},
        "optionsJSON": json.dumps({"hidePanelTitles": False, "syncColors": False, "syncCursor": True,
                                   "syncTooltips": False, "useMargins": True}),
        "panelsJSON": json.dumps(layout), "timeRestore": False, "title": "LLM audit", "version": 1}, references)


_COST_FIELDS = ("sidecar.cost.usd", "sidecar.cost.input_usd", "sidecar.cost.output_usd", "sidecar.cost.cache_read_usd",
                "sidecar.cost.cache_write_usd")


def saved_objects(prefix: str = "llm-audit") -> list[dict[str, Any]]:
    """Every object, referenced ones first (the order Kibana exports them in)."""
    records, side = f"{prefix}-records", {role: f"{prefix}-{role}" for role, *_ in _SIDE_SEARCHES}
    objects = [_data_view(records, audit_index_pattern(prefix), f"LLM audit records ({prefix})",
                          {"event.duration": {"id": "duration", "params": {"inputFormat": "nanoseconds",
                                                                            "outputFormat": "asMilliseconds"}},
                           **{f: {"id": "number", "params": {"pattern": "$0,0.[000000]"}} for f in _COST_FIELDS}})]
    objects += [_data_view(side[role], f"{prefix}-{suffix}-*", f"LLM {role} ({prefix})")
                for role, suffix, *_ in _SIDE_SEARCHES]
    searches = [_search(f"{prefix}-{sid}", records, title, text, kql, columns, sort)
                for sid, title, text, kql, columns, sort in _SEARCHES]
    searches += [_search(f"{prefix}-{role}-search", side[role], title, text, kql, columns, "@timestamp")
                 for role, _, title, text, kql, columns in _SIDE_SEARCHES]
    lenses = _visualizations(prefix, records, side["anomalies"])
    return objects + searches + lenses + [_dashboard(prefix, lenses + searches)]


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(o, sort_keys=True, separators=(",", ":")) + "\n" for o in objects).encode()


if __name__ == "__main__":
    sys.stdout.buffer.write(to_ndjson(saved_objects(sys.argv[1] if len(sys.argv) > 1 else "llm-audit")))
