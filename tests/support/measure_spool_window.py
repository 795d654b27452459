"""How long after a model call returns its record is still only in memory (lost to a SIGKILL).

Runs N calls through httpx against the loopback model server in the default spool mode and,
after each call returns, polls the spool until the record's bytes are in a segment file (a
write(2) has happened: the page cache keeps them through a kill; fsync is about power loss).

    .venv/bin/python tests/support/measure_spool_window.py [calls]
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import httpx
from model_server import serve

import sidecar


def spooled(directory: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file() and p.suffix in (".open", ".jsonl"))


def main(calls: int) -> None:
    with serve() as url, tempfile.TemporaryDirectory() as tmp:
        spool = pathlib.Path(tmp)
        sidecar.instrument(spool_dir=spool, hmac_key="measure-" + "0" * 32)
        client = httpx.Client()
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        windows = []
        for _ in range(calls):
            before = spooled(spool)
            client.post(url + "/v1/chat/completions", json=body)
            returned = time.perf_counter()
            while spooled(spool) == before:
                time.sleep(0.0002)
            windows.append((time.perf_counter() - returned) * 1000)
        sidecar.uninstrument()
    windows.sort()
    print(f"{calls} calls: window after the call returned, ms: p50 {statistics.median(windows):.1f} "
          f"p99 {windows[int(len(windows) * 0.99) - 1]:.1f} max {windows[-1]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
