"""`sidecar run` as a process against the real Elasticsearch: the demo traffic, faults, kill -9."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from sidecar_testing import HMAC_KEY, read_spool

from sidecar.ship import SpoolDoc
from sidecar.ship.elasticsearch import ElasticsearchSink

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent
# Records dated today: `sidecar run` applies the 90-day retention at start, and would rightly delete
# indices of older test data.
TODAY = dt.datetime.now(tz=dt.timezone.utc).strftime("%Y.%m.%d")


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
    write_spool(spool, docs_factory(3000, day=TODAY), per_segment=1000)
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


def all_ids(es: Any, pattern: str) -> set[str]:
    es.refresh(pattern)
    sink = ElasticsearchSink(es.url, index_prefix="unused")
    return {doc_id for doc_id, _ in sink.scan(pattern, ["_doc"])}


def test_kill_9_of_the_sidecar_loses_and_duplicates_nothing(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                                            elasticsearch_url: str, docs_factory: Any) -> None:
    """kill -9 at three points of a drain, then a restart: the indexed ids are exactly the spooled ones."""
    spool = tmp_path / "spool"
    n = 20_000
    docs = docs_factory(n, day=TODAY)
    write_spool(spool, docs, per_segment=4000)
    env = env_for(spool, elasticsearch_url, es_prefix, SIDECAR_LISTEN=f"127.0.0.1:{free_port()}",
                  SIDECAR_BATCH_SIZE="250")
    delivered = 0
    for threshold in (500, 6000, 12000):
        proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda t=threshold: es.count(f"{es_prefix}-2*") > t if es.indices(f"{es_prefix}-2*")
                     else False, 120, f"{threshold} deliveries")
        finally:
            proc.kill()  # SIGKILL, mid-stream
            proc.wait(10)
        es.refresh(f"{es_prefix}-*")
        delivered = es.count(f"{es_prefix}-2*")
    assert delivered < n, "the sidecar finished before the last kill; the test proves less than it claims"
    done = subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert all_ids(es, f"{es_prefix}-2*") == {d.doc_id for d in docs}
    es.refresh(f"{es_prefix}-*")
    assert es.count(f"{es_prefix}-2*") == n  # no id twice
    assert all_ids(es, f"{es_prefix}-deadletter-*") == set()


class SwitchableForwarder:
    """A loopback TCP forwarder that can be switched off (connection refused, open connections cut)
    and on again on the same port: from the sidecar's side, Elasticsearch stopped and came back."""

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._accepter = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepter.start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() so the port really closes
            self._listener.close()
            self._listener = None
        if self._accepter is not None:
            # No connection accepted just before the switch may survive it: wait for the accepting
            # thread to finish registering, then cut everything it registered.
            self._accepter.join(5)
            self._accepter = None
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def test_elasticsearch_stopped_then_restarted(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                              elasticsearch_url: str, docs_factory: Any) -> None:
    forwarder = SwitchableForwarder(elasticsearch_url)
    spool = tmp_path / "spool"
    first, second = docs_factory(2000, day=TODAY), docs_factory(2000, start=2000, day=TODAY)
    write_spool(spool, first)
    port = free_port()
    env = env_for(spool, forwarder.url, es_prefix, SIDECAR_LISTEN=f"127.0.0.1:{port}", SIDECAR_POLL_SECONDS="0.2")
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: not list(spool.glob("*.jsonl")), 120, "the first drain")
        forwarder.down()
        (spool / "feedbeef-000009-1700000009000.jsonl").write_bytes(b"".join(d.raw + b"\n" for d in second))
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 503, 30, "not ready while down")
        time.sleep(3)  # records keep arriving while the cluster is away; nothing is acknowledged
        assert list(spool.glob("*.jsonl"))
        forwarder.up()
        wait_for(lambda: not list(spool.glob("*.jsonl")), 180, "the drain after the restart")
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, 30, "ready again")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        forwarder.down()
    assert all_ids(es, f"{es_prefix}-2*") == {d.doc_id for d in first + second}
    es.refresh(f"{es_prefix}-*")
    assert es.count(f"{es_prefix}-2*") == 4000


def test_a_second_sidecar_on_the_same_spool_refuses(tmp_path: pathlib.Path) -> None:
    port = free_port()
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(tmp_path / "spool"), SIDECAR_LISTEN=f"127.0.0.1:{port}",
               SIDECAR_HMAC_KEY=HMAC_KEY)
    first = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz/live") == 200, 30, "the first sidecar")
        second = subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2
        assert "another sidecar is already shipping" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    assert subprocess.run([str(BIN / "sidecar"), "run", "--once"], env=env, timeout=60).returncode == 0


def test_not_ready_while_elasticsearch_is_unreachable(tmp_path: pathlib.Path, es_prefix: str) -> None:
    port = free_port()
    env = env_for(tmp_path / "spool", f"http://127.0.0.1:{free_port()}", es_prefix,
                  SIDECAR_LISTEN=f"127.0.0.1:{port}", SIDECAR_POLL_SECONDS="0.2")
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz/live") == 200, 30, "liveness")
        assert http_status(f"http://127.0.0.1:{port}/healthz") == 503

        def scrape() -> str:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

        # The shipper's families appear once start-up has tried the cluster (templates, retention): wait for them.
        wait_for(lambda: 'sidecar_sink_up{sink="elasticsearch"} ' in scrape(), 60, "the sink gauge")
        assert _sample(scrape(), 'sidecar_sink_up{sink="elasticsearch"}') == 0
        assert http_status(f"http://127.0.0.1:{port}/healthz") == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_sidecar_never_records_itself(tmp_path: pathlib.Path, es: Any, es_prefix: str, elasticsearch_url: str,
                                      docs_factory: Any) -> None:
    """App and shipper in one process: the shipper's own HTTP traffic makes no audit record."""

    import sidecar
    from sidecar.ship import Shipper
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


def test_disk_full_on_the_dead_letter_path_loses_nothing(tmp_path: pathlib.Path, es: Any, es_prefix: str,
                                                         elasticsearch_url: str, docs_factory: Any) -> None:
    """Dead-letter index refused and the local dead-letter file on a full disk: the batch is not
    acknowledged (the checkpoint stays), so the records are retried later instead of dropped."""
    import threading as _threading

    from sidecar.ship import Shipper
    from sidecar.ship.elasticsearch import DeadLetterError
    from sidecar.spool import SpoolReader

    today = dt.datetime.now(dt.timezone.utc)
    es.request("PUT", f"/{es_prefix}-deadletter-{today:%Y.%m.%d}",
               {"mappings": {"properties": {"error": {"properties": {"type": {"type": "long"}}}}}})
    dl_dir = tmp_path / "deadletter"
    dl_dir.mkdir()
    (dl_dir / f"deadletter-{today:%Y%m%d}.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    spool = tmp_path / "spool"
    docs = docs_factory(50, day=TODAY, bad=frozenset({7}))
    write_spool(spool, docs)
    reader = SpoolReader(spool, tmp_path / "state")
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix, deadletter_dir=dl_dir)
    sink.open()
    with pytest.raises((DeadLetterError, OSError)):
        Shipper(reader, sink).ship_available(_threading.Event())
    assert reader.checkpoint.offsets == {}  # nothing acknowledged
    assert list(spool.glob("*.jsonl"))
    # Space comes back: the same records ship, the unindexable one lands in the local file.
    (dl_dir / f"deadletter-{today:%Y%m%d}.jsonl").unlink()
    Shipper(SpoolReader(spool, tmp_path / "state"), sink).ship_available(_threading.Event())
    assert all_ids(es, f"{es_prefix}-2*") == {d.doc_id for i, d in enumerate(docs) if i != 7}
    lines = (dl_dir / f"deadletter-{today:%Y%m%d}.jsonl").read_text().splitlines()
    assert [json.loads(line)["sidecar.original_id"] for line in lines] == [docs[7].doc_id]
