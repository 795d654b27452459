"""Prometheus rules: promtool checks and unit tests, and a real Prometheus scraping a real sidecar.

promtool and prometheus come from Debian's `prometheus` package (make system-deps). The tests fail,
never skip, when they are missing: the rules would otherwise ship untested.
"""

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
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from sidecar_testing import stop_process

import sidecar

REPO = pathlib.Path(__file__).resolve().parents[2]
PROM = REPO / "dashboards" / "prometheus"
RULE_FILES = [PROM / "recording-rules.yml", PROM / "alert-rules.yml"]
UNIT_TESTS = sorted((PROM / "tests").glob("*.yml"))
BIN = pathlib.Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's `prometheus` package (apt-get install prometheus)")
    return path


def run(*args: str, cwd: pathlib.Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alert-rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_check_rules() -> None:
    out = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert out.returncode == 0, out.stdout + out.stderr


def test_check_config() -> None:
    out = run(tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("test_file", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_promtool_unit_tests(test_file: pathlib.Path) -> None:
    out = run(tool("promtool"), "test", "rules", test_file.name, cwd=test_file.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_is_documented_and_tested_both_ways() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    readme = (REPO / "dashboards" / "README.md").read_text()
    for rule in alert_rules():
        name = rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule.get("annotations", {})), name
        assert rule.get("labels", {}).get("severity") in ("critical", "warning"), name
        assert name in fires, f"{name}: no unit test shows it firing"
        assert name in quiet, f"{name}: no unit test shows it quiet"
        assert name in readme, f"{name}: not explained in dashboards/README.md"


# ------------------------------------------------------------------------------------------------
# A real Prometheus (Debian's `prometheus`) scraping a real `sidecar run` while 429s come in.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(what: str, check: Any, timeout: float = 30.0, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}: last {last!r}")


def fast_rules(dest: pathlib.Path) -> list[pathlib.Path]:
    """The shipped rules with group intervals of 1s and `for:` of 0s, so one run takes seconds."""
    out = []
    for path in RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        target = dest / path.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(target)
    return out


@pytest.fixture
def sidecar_process(instrumented: Any, tmp_path: pathlib.Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(instrumented.spool), SIDECAR_LISTEN=f"127.0.0.1:{port}",
               SIDECAR_STATE_DIR=str(tmp_path / "state"), SIDECAR_STORE_PATH=str(tmp_path / "store.db"),
               SIDECAR_POLL_SECONDS="0.2")
    env.pop("SIDECAR_ELASTICSEARCH_URL", None)
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for("sidecar /healthz/live", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/healthz/live", timeout=2).status == 200)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


def scraped_value(prom: str, query: str) -> float | None:
    data = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_real_prometheus_fires_on_a_429_burst(sidecar_process: str, instrumented: Any, model_url: str,
                                              tmp_path: pathlib.Path) -> None:
    binary = tool("prometheus")
    rules = fast_rules(tmp_path)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rules],
        "scrape_configs": [{"job_name": "llm-audit-sidecar", "static_configs": [
            {"targets": [sidecar_process], "labels": {"service": "e2e"}}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    prom = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        wait_for("prometheus ready", lambda: urllib.request.urlopen(f"{prom}/-/ready", timeout=2).status == 200)

        def chat(model: str) -> int:
            return httpx.post(model_url + "/v1/chat/completions", headers={"authorization": "Bearer sk-test-0000"},
                              json={"model": model, "messages": [{"role": "user", "content": "hi"}]}).status_code

        # One call first, so the sidecar creates the model's series (429 pre-initialised at 0) and
        # Prometheus scrapes them before the burst: rate() then sees the burst as an increase.
        assert chat("error-429") == 429
        assert sidecar.flush(10)
        wait_for("first scrape of llm_requests_total", lambda: scraped_value(
            prom, 'sum(llm_requests_total{job="llm-audit-sidecar", status_code="429"})') == 1)
        time.sleep(1.5)
        codes = [chat("error-429") for _ in range(40)]  # the storm: 41 calls, all rate limited
        assert codes.count(429) == 40
        assert sidecar.flush(10)
        wait_for("the burst in Prometheus", lambda: scraped_value(
            prom, 'sum(llm_requests_total{job="llm-audit-sidecar"})') == 41)

        def firing() -> list[dict[str, Any]]:
            alerts = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "LLMRateLimitedHigh"
                    and a["state"] == "firing"]

        alerts = wait_for("LLMRateLimitedHigh firing", firing, timeout=20)
        assert alerts[0]["labels"]["service"] == "e2e"
        assert alerts[0]["labels"]["status_code"] == "429"
        groups = get_json(f"{prom}/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in groups} >= {"llm-audit-requests", "llm-audit-baseline", "llm-audit-error-codes",
                                              "llm-audit-error-budget", "llm-audit-pipeline"}
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
        assert not bad, bad
        assert scraped_value(prom, 'up{job="llm-audit-sidecar"}') == 1
        print(f"\nreal Prometheus: LLMRateLimitedHigh firing {time.monotonic() - started:.1f}s after start")
    finally:
        stop_process(proc)
        if proc.stderr is not None:
            errors = [line for line in proc.stderr.read().splitlines() if re.search(r"level=(error|warn)", line)]
            print("\n".join(errors[-10:]))
