"""The Grafana dashboard: provisionable, every PromQL expression parses (promtool), and every metric it
names is one the sidecar really exports (a live `/metrics` of `sidecar run` after the demo app)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from sidecar_testing import stop_process

REPO = pathlib.Path(__file__).resolve().parents[2]
GRAFANA = REPO / "dashboards" / "grafana"
DASHBOARD = GRAFANA / "llm-audit.json"
RECORDING = REPO / "dashboards" / "prometheus" / "recording-rules.yml"
BIN = pathlib.Path(sys.executable).parent
# Grafana's built-in variables, replaced by what Grafana would send for a 6h range.
BUILTINS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "6h"}
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}  # series Prometheus makes itself

FUNCTIONS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan", "le",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exposition_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "counter":
                names.add(name + "_total" if not name.endswith("_total") else name)
            if kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def live_metrics(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo application's calls, shipped by a real `sidecar run`, read from its /metrics."""
    root = tmp_path_factory.mktemp("grafana-live")
    port = free_port()
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(root / "spool"), SIDECAR_STATE_DIR=str(root / "state"),
               SIDECAR_SERVICE_NAME="demo-app", SIDECAR_LISTEN=f"127.0.0.1:{port}", SIDECAR_POLL_SECONDS="0.2")
    env.pop("SIDECAR_ELASTICSEARCH_URL", None)
    app = subprocess.run([sys.executable, str(REPO / "examples" / "demo_app.py")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert app.returncode == 0, app.stderr
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    text = resp.read().decode()
                shipped = re.search(r"^sidecar_shipped_records_total\{[^}]*\} (\S+)$", text, re.M)
                if shipped and float(shipped.group(1)) > 0:
                    return text
            except OSError:
                pass
            assert time.monotonic() < deadline, "sidecar run did not ship the demo records in time"
            time.sleep(0.3)
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def exported(live_metrics: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Metric name -> where it comes from.

    The sidecar's live /metrics; plus, where it is not (yet) there: the application's own registry
    (the app-only pipeline counters, served with SIDECAR_METRICS_PORT) and the anomaly detector's
    families, registered on a registry by the same code `sidecar run` uses."""
    from sidecar.daemon.anomaly import AnomalyDetector
    from sidecar.telemetry import Metrics

    names = dict.fromkeys(exposition_names(live_metrics), "sidecar /metrics")
    app = CollectorRegistry()
    Metrics(app)
    for name in exposition_names(generate_latest(app).decode()):
        names.setdefault(name, "application registry")
    detector = CollectorRegistry()
    AnomalyDetector(tmp_path_factory.mktemp("det") / "state.json", detector)
    for name in exposition_names(generate_latest(detector).decode()):
        names.setdefault(name, "anomaly detector")
    return names


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every query: panel targets, variable queries, annotations."""
    out = []
    for panel in panels(dash):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            assert m, f"variable {var['name']}: {query}"
            out.append((f"variable {var['name']}", m.group(1)))
    for ann in dash["annotations"]["list"]:
        if ann.get("expr"):
            out.append((f"annotation {ann['name']}", ann["expr"]))
    return out


def substitute(expr: str, dash: dict[str, Any]) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    for var in dash["templating"]["list"]:
        expr = expr.replace("${" + var["name"] + "}", ".*").replace("$" + var["name"], ".*")
    assert "$" not in expr, f"unknown variable left in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads (strings, label matchers, grouping lists, durations and
    function calls removed; what is left of the identifiers are metric names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        following = text[m.end():].lstrip()
        if following.startswith("(") or word in FUNCTIONS_AND_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word) or (m.start() > 0 and text[m.start() - 1].isdigit()):
            continue
        names.add(word)
    return names


def recording_rules() -> dict[str, list[str]]:
    rules: dict[str, list[str]] = {}
    for group in yaml.safe_load(RECORDING.read_text())["groups"]:
        for rule in group["rules"]:
            rules.setdefault(rule["record"], []).append(rule["expr"])
    return rules


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package (apt-get install prometheus)")
    return path


# ------------------------------------------------------------------------------------------------


def test_dashboard_is_provisionable() -> None:
    dash = dashboard()
    assert "__inputs" not in dash and "__requires" not in dash, "import-only sections break file provisioning"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"service", "provider", "model"} <= variables.keys()
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dash):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    titles = " | ".join(p["title"].lower() for p in panels(dash))
    for needed in ("request rate", "error ratio by status code", "anomaly score", "p50 / p95 / p99",
                   "time to first chunk", "tokens", "cost", "spool lag", "dead letters", "dropped"):
        assert needed in titles, needed
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "llm-audit.yml").read_text())
    assert provider["apiVersion"] == 1 and provider["providers"][0]["type"] == "file"
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "llm-audit-prometheus.yml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"


def test_every_expression_parses_with_promtool(tmp_path: pathlib.Path) -> None:
    dash = dashboard()
    exprs = expressions(dash)
    assert len(exprs) > 30
    rules = {"groups": [{"name": "grafana-dashboard", "rules": [
        {"record": f"grafana:expr_{n}", "expr": substitute(expr, dash)} for n, (_, expr) in enumerate(exprs)]}]}
    path = tmp_path / "grafana-exprs.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    out = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        where = {f"grafana:expr_{n}": w for n, (w, _) in enumerate(exprs)}
        report = out.stdout + out.stderr
        for name, w in where.items():
            report = report.replace(f'"{name}"', f'"{name}" ({w})')
        pytest.fail(report)


def test_every_metric_is_exported(exported: dict[str, str]) -> None:
    dash = dashboard()
    rules = recording_rules()
    checked: set[str] = set()

    def resolve(name: str, where: str) -> None:
        if name in checked:
            return
        checked.add(name)
        if name in rules:
            for expr in rules[name]:
                for source in metric_names(expr) - {name}:
                    resolve(source, f"recording rule {name}")
            if not any(metric_names(e) for e in rules[name]):  # a constant, e.g. the price table
                return
            return
        assert name in exported or name in PROMETHEUS_OWN, f"{where}: {name} is not exported by the sidecar"

    used = set()
    for where, expr in expressions(dash):
        names = metric_names(substitute(expr, dash))
        assert names, f"{where}: no metric found in {expr}"
        used |= names
        for name in names:
            resolve(name, where)
    assert "llm_requests_total" in used and "sidecar_anomaly_score" in used
    live = sorted(n for n in checked if exported.get(n) == "sidecar /metrics")
    other = sorted(f"{n} ({exported[n]})" for n in checked if n in exported and exported[n] != "sidecar /metrics")
    print(f"\ndashboard metrics from the live sidecar /metrics: {len(live)}; from elsewhere: {other}")


def test_metric_name_extraction() -> None:
    expr = ('sum by (le, provider) (rate(gen_ai_client_operation_duration_seconds_bucket{model=~".*"}[1m])) / '
            'ignoring (status_code) group_left () provider_model:llm_requests:rate5m > 0.05 and on (model) '
            'time() - sidecar_last_delivery_timestamp_seconds offset 5m')
    assert metric_names(expr) == {"gen_ai_client_operation_duration_seconds_bucket",
                                  "provider_model:llm_requests:rate5m", "sidecar_last_delivery_timestamp_seconds"}


# ------------------------------------------------------------------ import form, $service, Kibana links

IMPORT_FORM = GRAFANA / "llm-audit.import.json"
SAMPLE = {"${service:regex}": "checkout", "${provider:regex}": "(openai|anthropic)", "${model:regex}": ".*",
          "${__from:date:iso}": "2026-03-14T10:00:00.000Z", "${__to:date:iso}": "2026-03-14T16:00:00.000Z",
          "${kibana}": "https://kibana.example:5601", "${index_prefix}": "llm-audit"}


def test_import_form_has_inputs_and_is_generated_from_the_provisionable_file() -> None:
    from sidecar.dashboards.install import grafana_import_form

    form = json.loads(IMPORT_FORM.read_text())
    assert form == grafana_import_form(dashboard()), "regenerate grafana/llm-audit.import.json"
    inputs = {i["name"]: i for i in form["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource" and inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    used = set(re.findall(r"\$\{((?:DS|VAR)_[A-Z_]+)\}", IMPORT_FORM.read_text()))
    assert used == set(inputs), "every ${DS_/VAR_} placeholder is declared in __inputs and used"
    required = {r["id"] for r in form["__requires"] if r["type"] == "panel"}
    assert required == {p["type"] for p in panels(form) if p["type"] != "row"}
    # The provisioning provider loads only the provisionable file (the import form has the same uid).
    compose = yaml.safe_load((REPO / "deploy" / "compose" / "compose.yaml").read_text())
    mounts = [v for v in compose["services"]["grafana"]["volumes"] if "llm-audit" in v.split(":")[1]]
    assert all(v.split(":")[0].endswith("grafana/llm-audit.json") for v in mounts), mounts


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric, label matchers) for every series selector in an expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: m.group(0).replace("{", "<").replace("}", ">"), expr)
    out = []
    for name in metric_names(substitute(expr, dashboard())):
        for m in re.finditer(rf"(?<![\w:]){re.escape(name)}(\{{[^}}]*\}})?(?!\s*\()", text):
            out.append((name, m.group(1) or ""))
    return out


def test_service_is_honoured_in_every_panel_and_annotation() -> None:
    dash = dashboard()
    constants = {name for name, exprs in recording_rules().items() if not any(metric_names(e) for e in exprs)}
    checked = 0
    for where, expr in expressions(dash):
        if where.startswith("variable"):
            continue
        for name, matchers in selectors(expr):
            if name in constants:  # the price table has no service label: it is joined on model
                continue
            assert 'service=~"$service"' in matchers, f"{where}: {name}{matchers} ignores $service"
            checked += 1
    anomaly = [p for p in panels(dash) if "anomal" in p["title"].lower() and p["type"] != "row"]
    assert len(anomaly) >= 3 and all('service=~"$service"' in t["expr"] for p in anomaly for t in p["targets"])
    assert checked > 40


def rison(text: str) -> Any:
    """A small decoder for the rison Kibana puts in its URLs: (k:v,...), !(list), 'string' with ! escapes."""
    pos = 0

    def value() -> Any:
        nonlocal pos
        if text[pos] == "(":
            pos += 1
            obj = {}
            while text[pos] != ")":
                key = atom()
                assert text[pos] == ":", text[pos:]
                pos += 1
                obj[key] = value()
                if text[pos] == ",":
                    pos += 1
            pos += 1
            return obj
        if text[pos] == "'":
            pos += 1
            out = []
            while text[pos] != "'":
                if text[pos] == "!":
                    pos += 1
                out.append(text[pos])
                pos += 1
            pos += 1
            return "".join(out)
        return atom()

    def atom() -> str:
        nonlocal pos
        m = re.compile(r"[^(),:'!]+").match(text, pos)
        assert m, f"rison: unexpected {text[pos:pos + 20]!r}"
        pos = m.end()
        return m.group(0)

    result = value()
    assert pos == len(text), f"rison: trailing {text[pos:]!r}"
    return result


def test_error_and_anomaly_panels_link_to_kibana_discover_with_time_and_filters() -> None:
    import urllib.parse

    from sidecar.dashboards.kibana import saved_objects
    from sidecar.ship.templates import anomaly_template, audit_template

    dash = dashboard()
    searches = {o["id"]: o for o in saved_objects("llm-audit") if o["type"] == "search"}
    def flat(props: dict[str, Any], prefix: str = "") -> set[str]:
        return {n for k, v in props.items() for n in (flat(v["properties"], f"{prefix}{k}.") if "properties" in v
                                                     else {f"{prefix}{k}"})}

    fields = {kind: flat(template("llm-audit")["template"]["mappings"]["properties"])
              for kind, template in (("errors", audit_template), ("anomalies", anomaly_template))}
    linked = 0
    for panel in panels(dash):
        title = panel["title"].lower()
        wants = any(w in title for w in ("error", "anomal", "dead letter", "z-score", "code share", "burn"))
        links = panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
        if panel["type"] == "row" or not wants:
            continue
        assert links, f"panel {panel['title']!r} has no link to the matching records"
        for link in links:
            url = link["url"]
            for name, value in SAMPLE.items():
                url = url.replace(name, value)
            assert "$" not in url, url
            parts = urllib.parse.urlsplit(url)
            assert parts.scheme == "https" and parts.path == "/app/discover"
            route, _, query = parts.fragment.partition("?")
            search_id = route.removeprefix("/view/")
            assert search_id in searches, f"{panel['title']}: no saved search {search_id}"
            params = dict(urllib.parse.parse_qsl(query))
            time = rison(params["_g"])["time"]
            assert time == {"from": SAMPLE["${__from:date:iso}"], "to": SAMPLE["${__to:date:iso}"]}
            if "deadletter" in search_id:
                continue
            state = rison(params["_a"])["query"]
            assert state["language"] == "lucene"
            used = set(re.findall(r"([a-z_.@]+):", state["query"]))
            kind = "anomalies" if "anomal" in search_id else "errors"
            assert used <= fields[kind], f"{panel['title']}: {used - fields[kind]} not in the index template"
            expected = {"gen_ai.provider.name", "gen_ai.request.model"}
            expected |= {"service.name", "http.response.status_code", "error.type"} if kind == "errors" else set()
            assert expected <= used, (panel["title"], used)
            assert "checkout" in state["query"] or kind == "anomalies"
            linked += 1
    assert linked >= 7
