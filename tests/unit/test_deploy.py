"""The Dockerfile, the Kubernetes manifests and the compose stack: offline checks of what a Docker engine or
a cluster would check, plus that they name only what the code really has.

* Kubernetes: validated against the published schemas of several Kubernetes versions (kubernetes-validate,
  strict: unknown fields are errors) and against the rules of the "restricted" Pod Security Standard,
  written out below; each rule is shown to fail on a manifest that breaks it.
* Users: numeric everywhere; the app and the sidecar are different users sharing one group, the one the
  images prepare the spool for.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml

import sidecar
from sidecar.cli import HEALTH_PATHS
from sidecar.config import AppSettings, ShipperSettings, parse_listen

REPO = pathlib.Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
COMPOSE = REPO / "deploy" / "compose"
SETTINGS = {f"SIDECAR_{name.upper()}" for name in {**AppSettings.model_fields, **ShipperSettings.model_fields}}
DEFAULT_PORT = ShipperSettings.model_fields["listen"].default.port
PYPROJECT = (REPO / "pyproject.toml").read_text()
VERSION = sidecar.__version__
# Native sidecars (restartPolicy on an init container) are on by default from 1.29.
KUBERNETES_VERSIONS = ["1.29.0", "1.31.0", "1.33.0", "1.35.0", "1.37.0"]


def dockerfile(path: pathlib.Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    text = path.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def instruction(word: str, path: pathlib.Path = REPO / "Dockerfile") -> str:
    (rest,) = [rest for w, rest in dockerfile(path) if w == word]
    return rest


def image_user(path: pathlib.Path = REPO / "Dockerfile") -> tuple[int, int]:
    m = re.fullmatch(r"(\d+):(\d+)", instruction("USER", path))
    assert m, f"{path.name}: USER must be numeric uid:gid so runAsNonRoot can verify it"
    return int(m.group(1)), int(m.group(2))


def spool_layout(path: pathlib.Path) -> tuple[str, str]:
    """(owner uid:gid, mode) the image gives /spool."""
    run = " ".join(rest for w, rest in dockerfile(path) if w == "RUN")
    owner = re.search(r"chown (\d+:\d+) (?:[^&]*\s)?/spool\b", run)
    mode = re.search(r"chmod (\d{4}) /spool\b", run)
    assert owner and mode, f"{path.name}: /spool must be chowned and chmodded"
    return owner.group(1), mode.group(1)


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_names_real_settings_command_port_and_health_path() -> None:
    instructions = dockerfile()
    known = {"FROM", "ARG", "LABEL", "ENV", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK",
             "ENTRYPOINT", "CMD"}
    assert {word for word, _ in instructions} <= known
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for word, rest in instructions if word == "ENV")))
    assert {k for k in env if k.startswith("SIDECAR_")} <= SETTINGS
    entry, cmd = json.loads(instruction("ENTRYPOINT")), json.loads(instruction("CMD"))
    scripts = re.search(r"\[project\.scripts\]\n(\w+) = ", PYPROJECT)
    assert scripts and entry == [scripts.group(1)] and cmd == ["run"]
    assert int(instruction("EXPOSE")) == DEFAULT_PORT
    assert parse_listen(env["SIDECAR_LISTEN"]) == ("0.0.0.0", DEFAULT_PORT)
    volumes = json.loads(instruction("VOLUME"))
    assert env["SIDECAR_SPOOL_DIR"] in volumes and env["SIDECAR_STATE_DIR"] in volumes
    path = re.search(rf"127\.0\.0\.1:{DEFAULT_PORT}(/[a-z/]+)", instruction("HEALTHCHECK"))
    assert path and path.group(1) in HEALTH_PATHS
    assert instruction("ARG") == f"VERSION={VERSION}"
    # The command the image runs works from an install of this package.
    bindir = pathlib.Path(sys.executable).parent
    out = subprocess.run([str(bindir / entry[0]), *cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--once" in out.stdout


def test_images_use_numeric_users_and_prepare_the_shared_spool() -> None:
    uid, gid = image_user()
    assert uid >= 10000 and gid >= 10000
    run = " ".join(rest for w, rest in dockerfile() if w == "RUN")
    assert f"--uid {uid}" in run and f"--gid {gid}" in run
    app_uid, app_gid = image_user(COMPOSE / "app.Dockerfile")
    assert app_uid != uid and app_gid == gid, "the app is another user in the sidecar's group"
    for path in (REPO / "Dockerfile", COMPOSE / "app.Dockerfile"):
        owner, mode = spool_layout(path)
        assert owner == f"{uid}:{gid}" and mode == "2770", f"{path.name}: /spool {owner} {mode}"
    # The image copies the folders the package links into the wheel.
    copied = {json.loads(f'"{s}"') for rest in (r for w, r in dockerfile() if w == "COPY") for s in rest.split()[:-1]}
    for link in (REPO / "sidecar" / "_assets").iterdir():
        assert link.is_symlink() and link.name in copied, link


# --------------------------------------------------------------------------- Kubernetes


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def deployment() -> dict[str, Any]:
    (dep,) = [d for d in manifests() if d["kind"] == "Deployment"]
    return dep


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])
    yield from pod.get("ephemeralContainers", [])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_published_schemas(version: str) -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} == {"Deployment", "Secret"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_can_fail() -> None:
    broken = deployment()
    broken["spec"]["template"]["spec"]["initContainers"][0]["restartPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The Pod Security Standard "restricted" (which includes "baseline"), rule by rule."""
    out = []
    psc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            out.append(f"{key} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(f"volume {volume['name']}: {kinds - RESTRICTED_VOLUMES} not allowed")
    for sysctl in psc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl['name']}")
    if psc.get("seLinuxOptions", {}).get("type") not in (None, "", "container_t", "container_init_t",
                                                         "container_kvm_t", "container_engine_t"):
        out.append("pod seLinuxOptions.type")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    for c in containers(pod):
        sc, name = c.get("securityContext", {}), c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            out.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps['add']}")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            out.append(f"{name}: runAsNonRoot must be true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{name}: procMount")
        if sc.get("appArmorProfile", {}).get("type") == "Unconfined":
            out.append(f"{name}: AppArmor unconfined")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            out.append(f"{name}: hostPort")
    return out


def test_the_pod_passes_the_restricted_profile() -> None:
    assert restricted_violations(deployment()["spec"]["template"]["spec"]) == []


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(pod: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = pod
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]
    return mutate


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no drop ALL": _drop("initContainers.0.securityContext.capabilities"),
    "escalation allowed": lambda p: p["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
    "no runAsNonRoot": lambda p: (p["securityContext"].pop("runAsNonRoot"),
                                  p["containers"][0]["securityContext"].pop("runAsNonRoot")),
    "seccomp unconfined": lambda p: p["initContainers"][0]["securityContext"].update(
        seccompProfile={"type": "Unconfined"}),
    "hostPath": lambda p: p["volumes"].append({"name": "host", "hostPath": {"path": "/var/log"}}),
    "added capability": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
    "hostNetwork": lambda p: p.update(hostNetwork=True),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_restricted_rule_fails_a_pod_that_breaks_it(mutation: str) -> None:
    pod = copy.deepcopy(deployment()["spec"]["template"]["spec"])
    MUTATIONS[mutation](pod)
    assert restricted_violations(pod), mutation


def test_deployment_runs_the_sidecar_beside_the_app() -> None:
    dep = deployment()
    pod = dep["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    (app,) = pod["containers"]
    assert sidecar["restartPolicy"] == "Always" and sidecar["args"] == ["run"]  # a native sidecar
    assert sidecar["image"].rsplit(":", 1)[1] == VERSION, "the image tag is the package version"
    for c in (sidecar, app):
        assert {e["name"] for e in c.get("env", [])} <= SETTINGS
        res = c["resources"]
        assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), c["name"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert isinstance(c["securityContext"]["runAsUser"], int)
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    app_env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["SIDECAR_SPOOL_DIR"] == app_env["SIDECAR_SPOOL_DIR"]
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    app_mounts = {m["name"]: m["mountPath"] for m in app["volumeMounts"]}
    assert mounts["spool"] == app_mounts["spool"]
    assert env["SIDECAR_SPOOL_DIR"].startswith(mounts["spool"] + "/"), "a subdirectory of the shared volume"
    assert env["SIDECAR_STATE_DIR"].startswith(mounts["sidecar-state"] + "/")
    host, port = parse_listen(env["SIDECAR_LISTEN"])
    assert host == "0.0.0.0", "the sidecar binds every interface of the pod, explicitly"
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert sidecar["ports"][0]["containerPort"] == port == int(annotations["prometheus.io/port"])
    assert annotations["prometheus.io/path"] == "/metrics"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert sidecar[probe]["httpGet"]["path"] in HEALTH_PATHS
        assert sidecar[probe]["httpGet"]["port"] in ("metrics", port)
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_users_groups_and_secret_keys() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    (sidecar,), (app,) = pod["initContainers"], pod["containers"]
    uid, gid = image_user()
    assert pod["securityContext"]["fsGroup"] == gid, "the spool volume gets the group the images share"
    assert sidecar["securityContext"]["runAsUser"] == uid and sidecar["securityContext"]["runAsGroup"] == gid
    assert app["securityContext"]["runAsUser"] != uid and app["securityContext"]["runAsGroup"] == gid
    (secret,) = [d for d in manifests() if d["kind"] == "Secret"]
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for c in (sidecar, app):
        for e in c["env"]:
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys, e
    # Both containers name the shared group (segments 0640, spool 2770) and the same spool, which is a
    # subdirectory: the emptyDir root is world-writable (2777), and the sidecar refuses such a directory.
    env_of = {c["name"]: {e["name"]: e.get("value") for e in c["env"]} for c in (sidecar, app)}
    for values in env_of.values():
        assert values["SIDECAR_SPOOL_GROUP"] == str(gid), values
    spools = {values["SIDECAR_SPOOL_DIR"] for values in env_of.values()}
    assert len(spools) == 1
    (spool,) = spools
    mounts = {m["mountPath"] for c in (sidecar, app) for m in c["volumeMounts"]}
    assert spool not in mounts and any(spool.startswith(m + "/") for m in mounts), spool
    state = env_of[sidecar["name"]]["SIDECAR_STATE_DIR"]
    assert state not in mounts and any(state.startswith(m + "/") for m in mounts), state
    # One HMAC key in both containers: pseudonyms match and the sidecar can sign digests.
    secret_of = {c["name"]: {e["name"]: e.get("valueFrom") for e in c["env"]} for c in (sidecar, app)}
    assert secret_of[sidecar["name"]]["SIDECAR_HMAC_KEY"] == secret_of[app["name"]]["SIDECAR_HMAC_KEY"]


# --------------------------------------------------------------------------- compose


def test_compose_stack() -> None:
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    services = compose["services"]
    assert {"app", "sidecar", "elasticsearch", "kibana", "dashboards", "prometheus", "grafana"} <= set(services)
    for svc in services.values():
        assert {k for k in svc.get("environment", {}) if k.startswith("SIDECAR_")} <= SETTINGS
    sidecar, app = services["sidecar"], services["app"]
    assert sidecar["environment"]["SIDECAR_SPOOL_DIR"] == app["environment"]["SIDECAR_SPOOL_DIR"]
    assert sidecar["environment"]["SIDECAR_HMAC_KEY"] == app["environment"]["SIDECAR_HMAC_KEY"]
    es_host = re.match(r"https?://([^:/]+):(\d+)", sidecar["environment"]["SIDECAR_ELASTICSEARCH_URL"])
    assert es_host and es_host.group(1) in services
    host, port = parse_listen(sidecar["environment"]["SIDECAR_LISTEN"])
    assert host == "0.0.0.0" and f"{port}:{port}" in sidecar["ports"]
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"sidecar:{port}" in targets
    mounted = {}
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source, _, rest = volume.partition(":")
            if source.startswith("."):
                assert (COMPOSE / source).exists(), source
                mounted[rest.split(":")[0]] = source
            else:
                assert source in compose["volumes"], source
    assert set(prom["rule_files"]) <= set(mounted)
    for name in ("app", "sidecar"):
        assert (COMPOSE / services[name]["build"]["context"]).resolve() == REPO
    assert sidecar["image"].endswith(f":{VERSION}") and sidecar["build"]["args"]["VERSION"] == VERSION


def test_compose_waits_on_health_and_imports_the_dashboards_once() -> None:
    services = yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert isinstance(cond, dict), f"{name}: depends_on {dep} needs a condition"
            if cond["condition"] == "service_healthy":
                target = services[dep]
                assert "healthcheck" in target or target.get("build"), f"{dep} has no health check to wait on"
    assert services["app"]["depends_on"]["sidecar"]["condition"] == "service_healthy"
    assert services["sidecar"]["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    one_shot = services["dashboards"]
    assert one_shot["restart"] == "no" and one_shot["image"] == services["sidecar"]["image"]
    assert one_shot["build"] == services["sidecar"]["build"], "built like the sidecar, never pulled"
    assert one_shot["entrypoint"] == ["sidecar"] and one_shot["command"][:2] == ["dashboards", "install"]
    assert one_shot["depends_on"]["kibana"]["condition"] == "service_healthy"
    kibana_url = one_shot["command"][one_shot["command"].index("--kibana") + 1]
    assert re.match(r"http://kibana:5601$", kibana_url)


def test_compose_users_share_the_spool_group() -> None:
    services = yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]
    uid, gid = image_user()
    app_uid, app_gid = image_user(COMPOSE / "app.Dockerfile")
    assert services["sidecar"]["user"] == f"{uid}:{gid}" and services["dashboards"]["user"] == f"{uid}:{gid}"
    assert services["app"]["user"] == f"{app_uid}:{app_gid}" and app_uid != uid and app_gid == gid
    for name in ("sidecar", "app"):
        assert services[name]["environment"]["SIDECAR_SPOOL_GROUP"] == str(gid), name
    assert f"SIDECAR_SPOOL_GROUP={gid}" in instruction("ENV").split()


# --------------------------------------------------------------------------- where things listen


def listening(port: int) -> set[str]:
    """Local addresses (dotted IPv4, or 'ipv6:...') of sockets listening on ``port`` (Linux /proc/net)."""
    out = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:
                out.add(f"ipv6:{addr}" if v6 else ".".join(str(b) for b in bytes.fromhex(addr)[::-1]))
    return out


@pytest.mark.parametrize(("addr", "expected"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_the_app_metrics_port_binds_loopback_unless_told(addr: str | None, expected: str,
                                                         tmp_path: pathlib.Path) -> None:
    import os
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SPOOL_DIR=str(tmp_path), SIDECAR_HMAC_KEY="k" * 40, SIDECAR_METRICS_PORT=str(port))
    if addr:
        env["SIDECAR_METRICS_HOST"] = addr
    proc = subprocess.Popen([sys.executable, "-c", "import sidecar, sys; sidecar.instrument(); print('up', flush=True);"
                             " sys.stdin.read()"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        assert listening(port) == {expected}
    finally:
        proc.kill()
        proc.wait(timeout=30)
