"""Retention is in force from the first run: `sidecar run` (and `--once`) installs or records the policy and runs
the enforcer on start, so `sidecar retention verify` passes right after, with no `retention apply` by hand."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from sidecar_testing import HMAC_KEY, stop_process

BIN = pathlib.Path(sys.executable).parent


def env_for(spool: pathlib.Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update({"SIDECAR_SPOOL_DIR": str(spool), "SIDECAR_HMAC_KEY": HMAC_KEY, **extra})
    return env


def sidecar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "sidecar"), *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(params=["embedded", "elasticsearch"])
def env(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> dict[str, str]:
    if request.param == "embedded":
        return env_for(tmp_path / "spool")
    return env_for(tmp_path / "spool", SIDECAR_ELASTICSEARCH_URL=request.getfixturevalue("elasticsearch_url"),
                   SIDECAR_INDEX_PREFIX=request.getfixturevalue("es_prefix"))


def test_run_once_puts_retention_in_force(env: dict[str, str]) -> None:
    assert sidecar(env, "retention", "verify").returncode == 1  # nothing in force before the first run
    run = sidecar(env, "run", "--once")
    assert run.returncode == 0, run.stderr
    check = sidecar(env, "retention", "verify")
    assert check.returncode == 0, check.stdout + check.stderr


def test_run_puts_retention_in_force_on_start(env: dict[str, str], tmp_path: pathlib.Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(env, SIDECAR_LISTEN=f"127.0.0.1:{port}")
    proc: Any = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            check = sidecar(env, "retention", "verify")
            if check.returncode == 0:
                break
            assert time.monotonic() < deadline, check.stdout
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/live", timeout=10) as resp:
            assert resp.status == 200
    finally:
        stop_process(proc)
