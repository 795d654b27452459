"""The spool under crashes, concurrency, torn lines, a full queue and a full disk."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from sidecar_testing import HMAC_KEY, read_spool

from sidecar.ship import Shipper, SqliteStore
from sidecar.spool import SpoolConfig, SpoolReader, SpoolWriter
from sidecar.telemetry import Metrics

SUPPORT = pathlib.Path(__file__).resolve().parents[2] / "support"

APP = textwrap.dedent("""
    import sys, time, httpx
    import sidecar
    sidecar.instrument()
    url, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        r = httpx.post(url + "/v1/chat/completions",
                       json={"model": f"m-{i}", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200
    print("done", flush=True)
    if len(sys.argv) > 3:
        time.sleep(60)  # killed with -9 here, after the calls returned
""")


def run_app(tmp: pathlib.Path, url: str, n: int, spool: pathlib.Path, *extra: str,
            fsync: str = "interval") -> subprocess.Popen[str]:
    script = tmp / "app.py"
    script.write_text(APP)
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(spool), SIDECAR_HMAC_KEY=HMAC_KEY, SIDECAR_SPOOL_FSYNC=fsync)
    return subprocess.Popen([sys.executable, str(script), url, str(n), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ship_all(spool: pathlib.Path, store_path: pathlib.Path, abandon_seconds: float = 300.0) -> SqliteStore:
    store = SqliteStore(store_path)
    store.open()
    reader = SpoolReader(spool, spool / ".sidecar", abandon_seconds=abandon_seconds)
    Shipper(reader, store).ship_available(threading.Event())
    return store


def test_records_survive_kill_9_after_the_call_returned(tmp_path: pathlib.Path, model_url: str) -> None:
    spool = tmp_path / "spool"
    proc = run_app(tmp_path, model_url, 5, spool, "then-sleep", fsync="always")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "done"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert list(spool.glob("*.open")), "the segment was never sealed: the process really died"
    store = ship_all(spool, tmp_path / "store.db", abandon_seconds=0)
    assert store.count() == 5
    assert not list(spool.glob("*.open")) and not list(spool.glob("*.jsonl"))


def test_two_processes_share_one_spool(tmp_path: pathlib.Path, model_url: str) -> None:
    spool = tmp_path / "spool"
    procs = [run_app(tmp_path, model_url, 40, spool) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    docs = read_spool(spool)
    assert len(docs) == 80
    assert len({d["event.id"] for d in docs}) == 80
    assert len({d["sidecar.producer.id"] for d in docs}) == 2
    saved = {p.name: p.read_bytes() for p in spool.glob("*.jsonl")}
    store = ship_all(spool, tmp_path / "store.db")
    assert store.count() == 80
    # A crash after the store committed but before the checkpoint moved: everything is shipped again.
    for name, data in saved.items():
        (spool / name).write_bytes(data)
    (spool / ".sidecar" / "checkpoint.json").unlink(missing_ok=True)
    assert ship_all(spool, tmp_path / "store.db").count() == 80  # deduplicated by record id


def _segment(spool: pathlib.Path, name: str, lines: list[bytes]) -> pathlib.Path:
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / name
    path.write_bytes(b"".join(lines))
    return path


def _doc(i: int) -> bytes:
    return json.dumps({"event.id": f"p-{i}", "@timestamp": "2026-11-25T10:00:00.000000Z",
                       "gen_ai.provider.name": "openai"}, separators=(",", ":")).encode()


def test_torn_last_line_and_malformed_lines_go_to_dead_letters(tmp_path: pathlib.Path) -> None:
    spool = tmp_path / "spool"
    _segment(spool, "aaaa-000001-1700000000000.jsonl",
             [_doc(1) + b"\n", b"this is not json\n", _doc(2) + b"\n", b'{"event.id":"p-3","@timest'])
    store = ship_all(spool, tmp_path / "store.db")
    assert store.count() == 2
    reasons = [reason for _, reason, _ in store.deadletters()]
    assert reasons == ["malformed_record", "torn_line"]
    assert store.deadletters()[1][2] == b'{"event.id":"p-3","@timest'
    assert not list(spool.glob("*.jsonl"))


def test_open_segment_ships_only_complete_lines(tmp_path: pathlib.Path) -> None:
    spool = tmp_path / "spool"
    seg = _segment(spool, "bbbb-000001-1700000000000.open", [_doc(1) + b"\n", b'{"event.id":"p-2"'])
    store = ship_all(spool, tmp_path / "store.db")
    assert store.count() == 1 and store.deadletters() == []
    with open(seg, "ab") as fh:  # the writer finishes its line later
        fh.write(b',"@timestamp":"2026-11-25T10:00:01.000000Z"}\n')
    store = ship_all(spool, tmp_path / "store.db")
    assert store.count() == 2
    assert seg.exists()  # still open: never deleted under a live writer


def _writer(tmp: pathlib.Path, registry: CollectorRegistry, process: object, **cfg: object) -> SpoolWriter:
    return SpoolWriter(SpoolConfig(tmp / "spool", **cfg), "tst", process,  # type: ignore[arg-type]
                       Metrics(registry))


def test_full_queue_drops_are_counted_not_blocking(tmp_path: pathlib.Path) -> None:
    registry = CollectorRegistry()
    gate = threading.Event()
    busy = threading.Event()

    def slow(item: object, seq: int) -> bytes:
        busy.set()
        gate.wait(10)
        return _doc(seq)

    w = _writer(tmp_path, registry, slow, queue_size=3)
    assert w.submit(0)
    assert busy.wait(5)  # the writer holds item 0; the queue is empty and takes 3 more
    t0 = time.monotonic()
    results = [w.submit(i) for i in range(1, 10)]
    assert time.monotonic() - t0 < 1.0  # the callers never waited for the writer
    assert results == [True] * 3 + [False] * 6
    gate.set()
    assert w.flush(10)
    w.close()
    assert registry.get_sample_value("sidecar_records_dropped_total", {"reason": "queue_full"}) == 6
    assert len(read_spool(tmp_path / "spool")) == 4


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_disk_full_is_counted_and_recovers(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    w = _writer(tmp_path, registry, lambda item, seq: _doc(seq))
    real_open = os.open
    full = {"on": True}

    def open_full(path: object, flags: int, mode: int = 0o777) -> int:
        if full["on"] and str(path).endswith(".open"):
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", open_full)
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    assert w.submit(1)
    w.flush(5)
    assert registry.get_sample_value("sidecar_spool_write_failures_total") == 1
    assert registry.get_sample_value("sidecar_records_dropped_total", {"reason": "write_failed"}) == 1
    full["on"] = False
    w._seal()  # the next segment goes to the (now writable) disk
    assert w.submit(2)
    w.flush(5)
    w.close()
    docs = read_spool(tmp_path / "spool")
    # The lost record gave its sequence number and chain link back: no gap for the verifier to flag.
    assert [d["event.id"] for d in docs] == ["p-1"]
    assert docs[0]["sidecar.chain.prev"] == ""


def test_rotation_by_size_and_age(tmp_path: pathlib.Path) -> None:
    registry = CollectorRegistry()
    w = _writer(tmp_path, registry, lambda item, seq: _doc(seq), segment_bytes=4096, segment_seconds=0.3)
    for i in range(200):
        w.submit(i)
    w.flush(5)
    sealed = list((tmp_path / "spool").glob("*.jsonl"))
    assert len(sealed) >= 2  # size rotation
    w.submit(999)
    time.sleep(1.0)  # age rotation seals the idle segment without a new record
    assert not list((tmp_path / "spool").glob("*.open"))
    w.close()
    assert len(read_spool(tmp_path / "spool")) == 201
