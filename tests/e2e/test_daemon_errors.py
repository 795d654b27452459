"""`sidecar run` start-up problems: one line and exit 2, never a traceback."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

BIN = pathlib.Path(sys.executable).parent


def run(tmp_path: pathlib.Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update({"SIDECAR_SPOOL_DIR": str(tmp_path / "spool"), "SIDECAR_HMAC_KEY": "k" * 32, **extra})
    return subprocess.run([str(BIN / "sidecar"), "run"], env=env, capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [x for x in result.stderr.splitlines() if "sidecar:" in x]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_listen_port_in_use(tmp_path: pathlib.Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line(run(tmp_path, SIDECAR_LISTEN=f"127.0.0.1:{port}"), "cannot listen")


def test_unknown_spool_group(tmp_path: pathlib.Path) -> None:
    one_line(run(tmp_path, SIDECAR_SPOOL_GROUP="no-such-group-here"), "SIDECAR_SPOOL_GROUP")
