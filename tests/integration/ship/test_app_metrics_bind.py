"""The app-side metrics port binds loopback unless told otherwise (read from the kernel's socket table)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_address(port: int) -> str:
    for line in open("/proc/net/tcp").read().splitlines()[1:]:  # noqa: SIM115
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":  # LISTEN
            return socket.inet_ntoa(bytes.fromhex(addr)[::-1])
    raise AssertionError(f"nothing listens on {port}")


def bound(port: int, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_METRICS_PORT=str(port), SIDECAR_HMAC_KEY="k" * 32, **extra)
    code = ("import sys, sidecar, time; sidecar.instrument(); print('up', flush=True); sys.stdin.readline()")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        return listening_address(port)
    finally:
        proc.kill()
        proc.wait(10)


def test_app_metrics_bind_loopback_by_default() -> None:
    assert bound(free_port()) == "127.0.0.1"


def test_app_metrics_bind_every_interface_when_asked() -> None:
    assert bound(free_port(), SIDECAR_METRICS_HOST="0.0.0.0") == "0.0.0.0"
