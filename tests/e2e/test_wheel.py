"""The wheel as a new user gets it: built from this tree without warnings, holding the code, the dashboards,
the deploy examples and the licence, installed into a clean venv outside the repository and run from
another directory."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import zipfile
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def run(installed: Any, args: list[str], cwd: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(installed.sidecar), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**clean, "SIDECAR_SPOOL_DIR": str(cwd / "spool"), **env})


def test_the_sdist_carries_the_assets_as_files(installed: Any) -> None:
    import tarfile

    (sdist,) = installed.wheel.parent.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
    for name in ("LICENSE", "sidecar/_assets/dashboards/grafana/llm-audit.json",
                 "sidecar/_assets/deploy/kubernetes/deployment.yaml"):
        assert name in members and members[name].isfile(), name


def test_the_build_prints_no_warning(installed: Any) -> None:
    log = installed.build_log
    noisy = [line for line in log.splitlines()
             if re.search(r"warn|deprecat", line, re.I) and "byte-compiling is disabled" not in line]
    assert not noisy, "\n".join(noisy)


def test_the_wheel_holds_code_assets_and_licence(installed: Any) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    code = {p.relative_to(REPO).as_posix() for p in (REPO / "sidecar").rglob("*.py") if "_assets" not in p.parts}
    assert code and code <= names, sorted(code - names)
    for folder in ("dashboards", "deploy"):
        files = {f"sidecar/_assets/{p.relative_to(REPO).as_posix()}" for p in (REPO / folder).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
        assert files and files <= names, sorted(files - names)
    assert "sidecar/py.typed" in names
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    wheel = zipfile.ZipFile(installed.wheel)
    assert wheel.read(licence) == (REPO / "LICENSE").read_bytes()
    assert b"Apache License" in wheel.read(licence) and b"Version 2.0, January 2004" in wheel.read(licence)
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    headers = wheel.read(metadata).decode().split("\n\n", 1)[0]
    assert "License-Expression: Apache-2.0" in headers.splitlines()
    assert "License-File: LICENSE" in headers.splitlines()


def test_installed_commands_work_from_another_directory(installed: Any, tmp_path: pathlib.Path) -> None:
    from importlib.metadata import version

    out = run(installed, ["--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"sidecar {version('llm-audit-sidecar')}", out
    where = run(installed, ["dashboards", "path"], tmp_path)
    assert where.returncode == 0, where.stderr
    folder = pathlib.Path(where.stdout.strip())
    assert folder.is_relative_to(installed.venv) and not folder.is_relative_to(REPO)
    assert (folder / "grafana" / "llm-audit.json").is_file()
    assert (folder.parent / "deploy" / "kubernetes" / "deployment.yaml").is_file()

    dry = run(installed, ["dashboards", "install", "--kibana", "http://kibana.invalid:5601",
                          "--grafana", "http://grafana.invalid:3000", "--dry-run"], tmp_path,
              SIDECAR_INDEX_PREFIX="acme-prod")
    assert dry.returncode == 0, dry.stderr
    assert "saved objects (data views acme-prod-2*, acme-prod-anomalies-*, acme-prod-deadletter-*)" in dry.stdout
    assert "into Grafana" in dry.stdout and "no dashboards folder" not in dry.stdout + dry.stderr

    retention = run(installed, ["retention", "apply", "--dry-run"], tmp_path)
    assert retention.returncode == 0, retention.stdout + retention.stderr
    assert "dry run" in retention.stdout and "Traceback" not in retention.stderr
    assert not (tmp_path / "spool").exists(), "a dry run must not create anything"

    helped = run(installed, ["--help"], tmp_path)
    assert helped.returncode == 0 and "SIDECAR_LISTEN" in helped.stdout


def test_packaged_dashboards_are_the_repository_files(installed: Any, tmp_path: pathlib.Path) -> None:
    folder = pathlib.Path(run(installed, ["dashboards", "path"], tmp_path).stdout.strip())
    for path in (REPO / "dashboards").rglob("*"):
        if path.is_file():
            assert (folder / path.relative_to(REPO / "dashboards")).read_bytes() == path.read_bytes(), path
    json.loads((folder / "grafana" / "llm-audit.import.json").read_text())


@pytest.mark.parametrize("bad", [["query", "--limit", "-1"], ["dashboards", "install", "--kibana", "x"]])
def test_installed_errors_are_one_line(installed: Any, tmp_path: pathlib.Path, bad: list[str]) -> None:
    out = run(installed, bad, tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
