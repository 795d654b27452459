"""The /metrics and /healthz listener under 2,000 idle connections while shipping goes on.

A real `sidecar run` ships what a real instrumented app writes during the attack; the test counts the
records shipped meanwhile, reads the sidecar's own file descriptors and threads from /proc, checks that
/healthz and /metrics still answer, and that no traceback is printed when the attackers go away."""

from __future__ import annotations

import os
import pathlib
import resource
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

from sidecar_testing import HMAC_KEY, stop_process

BIN = pathlib.Path(sys.executable).parent
IDLE = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_figures(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = pathlib.Path(f"/proc/{pid}/status").read_text().splitlines()
    threads = int(next(line.split()[1] for line in status if line.startswith("Threads:")))
    return fds, threads


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(resp.status)


def stored(db: pathlib.Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def wait_until(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_idle_connections_do_not_stop_shipping(tmp_path: pathlib.Path, model_url: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE + 1000), hard))
    spool, port = tmp_path / "spool", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SPOOL_DIR=str(spool), SIDECAR_HMAC_KEY=HMAC_KEY, SIDECAR_LISTEN=f"127.0.0.1:{port}",
               SIDECAR_POLL_SECONDS="0.2", SIDECAR_SPOOL_SEGMENT_SECONDS="0.3", SIDECAR_HTTP_MAX_CONNECTIONS="32")
    log = (tmp_path / "sidecar.log").open("w")
    side = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(base + "/healthz/live") == 200)
        before = proc_figures(side.pid)
        idle: list[socket.socket] = []
        for _ in range(IDLE):
            s = socket.socket()
            s.setblocking(True)
            s.connect(("127.0.0.1", port))
            idle.append(s)
        peak = proc_figures(side.pid)
        app = ("import httpx, sidecar, time; sidecar.instrument(); t = time.monotonic()\n"
               "n = 0\nwhile time.monotonic() - t < 6:\n"
               f"    httpx.post('{model_url}/v1/chat/completions', json={{'model': 'm', 'messages': []}}); n += 1\n"
               "sidecar.flush(); print(n)")
        db = spool / ".sidecar" / "audit.db"
        shipped_before = stored(db)
        calls = int(subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True,
                                   check=True, timeout=120).stdout.split()[-1])
        wait_until(lambda: stored(db) >= calls, timeout=60)
        during = proc_figures(side.pid)
        shipped_during = stored(db) - shipped_before
        health = get(base + "/healthz")
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read()
        for s in idle:  # the attackers leave: some connections are mid-exchange (broken pipe, reset)
            s.close()
        time.sleep(1.0)
        after = proc_figures(side.pid)
        print(f"\nlistener figures: idle connections {IDLE}; calls {calls}, shipped during the attack "
              f"{shipped_during}; sidecar (fds, threads) before {before}, with all connected {peak}, "
              f"after shipping {during}, after they left {after}")
        assert shipped_during == calls  # shipping never stopped
        assert health == 200 and b"sidecar_" in metrics
        for fds, threads in (peak, during):  # bounded, not one per connection
            assert fds < 400 and threads < 80, (peak, during)
    finally:
        stop_process(side)
        log.close()
    output = (tmp_path / "sidecar.log").read_text()
    assert "Traceback" not in output and "BrokenPipe" not in output, output[-3000:]


def test_slow_header_client_is_cut_off(tmp_path: pathlib.Path) -> None:
    """A client that drips its headers byte by byte is closed at the header deadline."""
    import threading

    from prometheus_client import CollectorRegistry

    from sidecar.daemon import BoundedHTTPServer
    from sidecar.daemon._http import _Handler

    handler = type("H", (_Handler,), {"registry": CollectorRegistry()})
    server = BoundedHTTPServer(("127.0.0.1", 0), handler, max_connections=2, header_timeout=1.0, idle_timeout=5.0,
                               max_waiting=4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        s = socket.create_connection(server.server_address[:2])
        s.sendall(b"GET /healthz HTTP/1.0\r\n")
        closed_at = None
        start = time.monotonic()
        for _ in range(40):
            try:
                s.sendall(b"X")  # a header line that never ends, under the idle timeout each time
                s.settimeout(0.25)
                if s.recv(1) == b"":
                    closed_at = time.monotonic() - start
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic() - start
                break
        assert closed_at is not None and server.timed_out >= 1
        # More silent clients than the waiting room holds: the oldest are shed, never a thread each.
        extra = [socket.create_connection(server.server_address[:2]) for _ in range(20)]
        wait_until(lambda: server.shed >= 10, timeout=10)
        for c in extra:
            c.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_probe_gets_in_during_an_idle_flood() -> None:
    """Silent sockets wait without a worker, and a full waiting room sheds its oldest one: a health probe
    arriving after a flood that fills every worker, the queue and the waiting room is answered at once."""
    import threading

    from prometheus_client import CollectorRegistry

    from sidecar.daemon import BoundedHTTPServer
    from sidecar.daemon._http import _Handler

    handler = type("H", (_Handler,), {"registry": CollectorRegistry()})
    server = BoundedHTTPServer(("127.0.0.1", 0), handler, max_connections=2, header_timeout=60.0,
                               idle_timeout=60.0, max_waiting=8)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    flood = []
    try:
        host, port = server.server_address[:2]
        flood = [socket.create_connection((host, port)) for _ in range(40)]
        wait_until(lambda: server.shed >= 40 - 8, timeout=10)
        started = time.monotonic()
        assert get(f"http://{host}:{port}/healthz") == 200
        assert time.monotonic() - started < 5, "the probe waited for the flood's deadlines"
        assert server.timed_out == 0
    finally:
        for c in flood:
            c.close()
        server.shutdown()
        server.server_close()
