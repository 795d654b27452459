"""`sidecar run` as a process against the real Elasticsearch: the demo traffic, faults, kill -9."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sidecar_testing import HMAC_KEY, read_spool

from sidecar.ship import SpoolDoc

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(spool: pathlib.Path, es_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, SIDECAR_SPOOL_DIR=str(spool), SIDECAR_ELASTICSEARCH_URL=es_url,
                SIDECAR_INDEX_PREFIX=prefix, SIDECAR_HMAC_KEY=HMAC_KEY, **extra)


def write_spool(spool: pathlib.Path, docs: list[SpoolDoc], per_segment: int = 5000) -> None:
    """Sealed segments as the application's writer leaves them."""
    spool.mkdir(parents=True, exist_ok=True)
    for n, start in enumerate(range(0, len(docs), per_segment)):
        chunk = docs[start:start + per_segment]
        (spool / f"feedbeef-{n + 1:06d}-{1700000000000 + n}.jsonl").write_bytes(b"".join(d.raw + b"\n" for d in chunk))


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def test_demo_traffic_to_elasticsearch(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                       elasticsearch_url: str) -> None:
    spool = tmp_path / "spool"
    env = env_for(spool, elasticsearch_url, es_prefix, SIDECAR_USER_HEADER="x-user-id")
    app = subprocess.run([sys.executable, str(REPO / "examples" / "demo_app.py")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert app.returncode == 0, app.stderr
    spooled = {d["event.id"]: d for d in read_spool(spool)}
    assert len(spooled) == 15
    run = subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    es.refresh(f"{es_prefix}-*")
    assert es.count(f"{es_prefix}-2*") == 15
    indexed = {h["_id"]: h["_source"] for h in es.search(f"{es_prefix}-2*", size=100)}
    assert indexed == spooled  # the indexed document is the spooled one, byte for byte in meaning
    day = next(iter(spooled.values()))["@timestamp"][:10].replace("-", ".")
    assert es.indices(f"{es_prefix}-2*") == [f"{es_prefix}-{day}"]
    # Everything delivered: the spool is empty; a second pass sends nothing new.
    assert not list(spool.glob("*.jsonl"))
    again = subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and "0 stored" in again.stderr


def test_elasticsearch_outage_then_recovery(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                            fault_proxy: Any, docs_factory: Any) -> None:
    """429s, 503s and resets from the cluster: the daemon retries; every record lands once."""
    spool = tmp_path / "spool"
    write_spool(spool, docs_factory(3000), per_segment=1000)
    fault_proxy.fail_bulk(2, 429)
    fault_proxy.fail_bulk(2, 503)
    fault_proxy.reset_bulk(1, after_forward=True)  # the cluster stored it, the answer was lost
    port = free_port()
    env = env_for(spool, fault_proxy.url, es_prefix, SIDECAR_LISTEN=f"127.0.0.1:{port}", SIDECAR_BATCH_SIZE="500",
                  SIDECAR_POLL_SECONDS="0.2")
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz/live") == 200, 30, "liveness")
        wait_for(lambda: not list(spool.glob("*.jsonl")), 180, "the spool to drain")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert http_status(f"http://127.0.0.1:{port}/healthz") == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    es.refresh(f"{es_prefix}-*")
    assert es.count(f"{es_prefix}-2*") == 3000
    assert fault_proxy.pending_faults == 0
    shipped = _sample(metrics, 'sidecar_shipped_records_total{sink="elasticsearch"}')
    dupes = _sample(metrics, 'sidecar_duplicate_records_total{sink="elasticsearch"}')
    assert shipped == 3000 and dupes >= 1  # the lost answer was re-sent and counted as already there
    assert _sample(metrics, 'sidecar_sink_retries_total{sink="elasticsearch"}') >= 5
    assert _sample(metrics, "sidecar_spool_pending_bytes") == 0


def _sample(exposition: str, series: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not exported")


def test_kill_9_of_the_sidecar_loses_and_duplicates_nothing(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                                            elasticsearch_url: str, docs_factory: Any) -> None:
    spool = tmp_path / "spool"
    n = 20_000
    write_spool(spool, docs_factory(n), per_segment=4000)
    env = env_for(spool, elasticsearch_url, es_prefix, SIDECAR_LISTEN=f"127.0.0.1:{free_port()}",
                  SIDECAR_BATCH_SIZE="250")
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def some_delivered() -> bool:
        es.refresh(f"{es_prefix}-*")
        return es.count(f"{es_prefix}-2*") > 500 if es.indices(f"{es_prefix}-2*") else False

    try:
        wait_for(some_delivered, 120, "the first deliveries")
    finally:
        proc.kill()  # SIGKILL, mid-stream
        proc.wait(10)
    es.refresh(f"{es_prefix}-*")
    before = es.count(f"{es_prefix}-2*")
    assert before < n, "the sidecar finished before it was killed; the test proves nothing"
    done = subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    es.refresh(f"{es_prefix}-*")
    assert es.count(f"{es_prefix}-2*") == n


def test_not_ready_while_elasticsearch_is_unreachable(tmp_path: pathlib.Path, es_prefix: str) -> None:
    port = free_port()
    env = env_for(tmp_path / "spool", f"http://127.0.0.1:{free_port()}", es_prefix,
                  SIDECAR_LISTEN=f"127.0.0.1:{port}", SIDECAR_POLL_SECONDS="0.2")
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz/live") == 200, 30, "liveness")
        assert http_status(f"http://127.0.0.1:{port}/healthz") == 503
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert _sample(metrics, 'sidecar_sink_up{sink="elasticsearch"}') == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_sidecar_never_records_itself(tmp_path: pathlib.Path, es: Any, es_prefix: str, elasticsearch_url: str,
                                      docs_factory: Any) -> None:
    """App and shipper in one process: the shipper's own HTTP traffic makes no audit record."""
    import threading

    import sidecar
    from sidecar.ship import Shipper
    from sidecar.ship._elasticsearch import ElasticsearchSink
    from sidecar.spool import SpoolReader

    app_spool = tmp_path / "app-spool"
    sidecar.instrument(spool_dir=app_spool, hmac_key=HMAC_KEY, model_hosts="127.0.0.1")  # every local call counts
    try:
        ship_spool = tmp_path / "ship-spool"
        write_spool(ship_spool, docs_factory(50))
        sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix)
        sink.open()
        Shipper(SpoolReader(ship_spool, tmp_path / "state"), sink).ship_available(threading.Event())
        sink.close()
        assert sidecar.flush()
    finally:
        sidecar.uninstrument()
    es.refresh(f"{es_prefix}-*")
    assert es.count(f"{es_prefix}-2*") == 50
    assert read_spool(app_spool) == []
    assert json.dumps(read_spool(app_spool)) == "[]"
