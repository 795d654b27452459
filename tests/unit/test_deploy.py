"""The Dockerfile, Kubernetes and compose examples name only things the code really has."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from typing import Any

import yaml

from sidecar._config import Settings
from sidecar.cli import HEALTH_PATHS

REPO = pathlib.Path(__file__).resolve().parents[2]
SETTINGS = {f"SIDECAR_{name.upper()}" for name in Settings.model_fields}
DEFAULT_PORT = int(str(Settings.model_fields["listen"].default).rsplit(":", 1)[1])


def dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_names_real_settings_command_port_and_health_path() -> None:
    instructions = dockerfile()
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD"}
    assert {word for word, _ in instructions} <= known
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for word, rest in instructions if word == "ENV")))
    assert {k for k in env if k.startswith("SIDECAR_")} <= SETTINGS
    entry = json.loads(next(rest for word, rest in instructions if word == "ENTRYPOINT"))
    cmd = json.loads(next(rest for word, rest in instructions if word == "CMD"))
    scripts = re.search(r"\[project\.scripts\]\n(\w+) = ", (REPO / "pyproject.toml").read_text())
    assert scripts and entry == [scripts.group(1)] and cmd == ["run"]
    assert int(next(rest for word, rest in instructions if word == "EXPOSE")) == DEFAULT_PORT
    assert env["SIDECAR_LISTEN"].endswith(f":{DEFAULT_PORT}")
    volumes = json.loads(next(rest for word, rest in instructions if word == "VOLUME"))
    assert env["SIDECAR_SPOOL_DIR"] in volumes and env["SIDECAR_STATE_DIR"] in volumes
    health = next(rest for word, rest in instructions if word == "HEALTHCHECK")
    path = re.search(rf"127\.0\.0\.1:{DEFAULT_PORT}(/[a-z/]+)", health)
    assert path and path.group(1) in HEALTH_PATHS
    # The command the image runs works from an install of this package.
    bindir = pathlib.Path(sys.executable).parent
    out = subprocess.run([str(bindir / entry[0]), *cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--once" in out.stdout


def _env_names(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


def test_kubernetes_pod() -> None:
    pod = yaml.safe_load((REPO / "deploy" / "kubernetes" / "pod.yaml").read_text())
    (sidecar,) = pod["spec"]["initContainers"]
    (app,) = pod["spec"]["containers"]
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar
    assert sidecar["args"] == ["run"]
    assert _env_names(sidecar) <= SETTINGS and _env_names(app) <= SETTINGS
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    app_env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["SIDECAR_SPOOL_DIR"] == app_env["SIDECAR_SPOOL_DIR"]
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    app_mounts = {m["name"]: m["mountPath"] for m in app["volumeMounts"]}
    assert mounts["spool"] == app_mounts["spool"] == env["SIDECAR_SPOOL_DIR"]
    port = int(env["SIDECAR_LISTEN"].rsplit(":", 1)[1])
    assert sidecar["ports"][0]["containerPort"] == port == int(pod["metadata"]["annotations"]["prometheus.io/port"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert sidecar[probe]["httpGet"]["path"] in HEALTH_PATHS
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    # Both containers share one HMAC key so pseudonyms match and digests can be signed.
    secret = {e["name"]: e.get("valueFrom") for e in sidecar["env"]}["SIDECAR_HMAC_KEY"]
    assert secret == {e["name"]: e.get("valueFrom") for e in app["env"]}["SIDECAR_HMAC_KEY"]


def test_compose_stack() -> None:
    folder = REPO / "deploy" / "compose"
    compose = yaml.safe_load((folder / "compose.yaml").read_text())
    services = compose["services"]
    assert {"app", "sidecar", "elasticsearch", "kibana", "prometheus", "grafana"} <= set(services)
    for svc in services.values():
        assert {k for k in svc.get("environment", {}) if k.startswith("SIDECAR_")} <= SETTINGS
    sidecar, app = services["sidecar"], services["app"]
    assert sidecar["environment"]["SIDECAR_SPOOL_DIR"] == app["environment"]["SIDECAR_SPOOL_DIR"]
    assert sidecar["environment"]["SIDECAR_HMAC_KEY"] == app["environment"]["SIDECAR_HMAC_KEY"]
    es_host = re.match(r"https?://([^:/]+):(\d+)", sidecar["environment"]["SIDECAR_ELASTICSEARCH_URL"])
    assert es_host and es_host.group(1) in services
    port = int(sidecar["environment"]["SIDECAR_LISTEN"].rsplit(":", 1)[1])
    assert f"{port}:{port}" in sidecar["ports"]
    prom = yaml.safe_load((folder / "prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"sidecar:{port}" in targets
    # Every file the stack mounts exists, and the rule files it loads are the ones it mounts.
    mounted = {}
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source, _, rest = volume.partition(":")
            if source.startswith("."):
                assert (folder / source).exists(), source
                mounted[rest.split(":")[0]] = source
    assert set(prom["rule_files"]) <= set(mounted)
    for name in ("app", "sidecar"):
        assert (folder / services[name]["build"]["context"]).resolve() == REPO
