"""Spool writer throughput and the latency it adds on the request path.

    python bench/spool.py [--records 20000] [--quick] [--build-only]

Four measurements, all on this machine's disk (a temporary directory):

1. record build cost: ``Runtime.process`` (parse -> redact -> build -> serialize) on captures made the way the
   transport wrapper makes them (``Runtime.start`` + a response body), per record type; records/s on one thread.
2. ``SpoolWriter`` alone with pre-serialized lines: records/s for fsync never / interval / always
   (always from 1 thread and from 8 threads, which lets the writer batch several records per fsync).
3. the whole writer path: ``Runtime.writer.submit(capture)`` with the real ``process``: records/s per fsync mode.
4. the latency ``submit()`` adds to a call: paced submissions (one every 2 ms), p50/p99 for interval vs always.

Writes bench/results/spool.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from overhead import machine_info, percentile, prompt_text  # noqa: E402

HMAC_KEY = "bench-hmac-key-0123456789abcdef0123456789"
URL = "https://api.openai.com/v1/chat/completions"
HEADERS = [("host", "api.openai.com"), ("authorization", "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"),
           ("content-type", "application/json"), ("user-agent", "OpenAI/Python 3.57.0")]


def _request_body(size: int, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": prompt_text(size)}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def _response(stream: bool) -> tuple[list[tuple[str, str]], list[bytes]]:
    text = ("Dear Jane, thank you for letting us know, and I am sorry the order arrived late and damaged. "
            "We will ship replacements by express delivery today; you can reach me at support@example.com.")
    usage = {"prompt_tokens": 312, "completion_tokens": 41, "total_tokens": 353}
    if not stream:
        doc = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
               "usage": usage}
        return [("content-type", "application/json"), ("x-request-id", "req_1")], [json.dumps(doc).encode()]
    chunks = []
    for w in text.split(" "):
        ev = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
              "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}
        chunks.append(b"data: " + json.dumps(ev).encode() + b"\n\n")
    chunks.append(b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
                  b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
    chunks.append(b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
                  b'"choices":[],"usage":' + json.dumps(usage).encode() + b"}\n\n")
    chunks.append(b"data: [DONE]\n\n")
    return [("content-type", "text/event-stream")], chunks


def make_capture(rt: Any, size: int, stream: bool) -> Any:
    """A finished call's capture, filled the way the httpx wrapper fills it."""
    cap = rt.start("httpx2", "POST", "https", "api.openai.com", None, "/v1/chat/completions", URL, HEADERS,
                   _request_body(size, stream))
    assert cap is not None, "the OpenAI endpoint should match"
    headers, chunks = _response(stream)
    cap.status_code = 200
    cap.response_headers = headers
    for c in chunks:
        cap.response.add(c)
    cap.streamed = stream
    cap.stream_outcome = "completed" if stream else None
    cap.end_perf = cap.start_perf + 0.35
    return cap


def _runtime(spool_dir: pathlib.Path, fsync: str = "interval", **extra: Any) -> Any:
    from prometheus_client import CollectorRegistry

    from sidecar.app._runtime import Runtime
    from sidecar.config import AppSettings, load_settings

    settings = load_settings(AppSettings, spool_dir=spool_dir, spool_fsync=fsync, hmac_key=HMAC_KEY,
                             service_name="bench", spool_queue_size=1_000_000, **extra)
    return Runtime(settings, CollectorRegistry())


def bench_build(tmp: pathlib.Path, n: int, repeat: int) -> dict[str, Any]:
    """records/s of Runtime.process (the writer thread's per-record work), per record type."""
    out: dict[str, Any] = {}
    cases = [("json-1KB", 1000, False, True), ("stream-1KB", 1000, True, True), ("json-100KB", 100_000, False, True),
             ("json-1KB-nocontent", 1000, False, False), ("json-100KB-nocontent", 100_000, False, False)]
    for name, size, stream, content in cases:
        rt = _runtime(tmp / f"build-{name}", capture_content=content)
        count = n if size <= 1000 else max(n // 20, 200)
        caps = [make_capture(rt, size, stream) for _ in range(min(count, 500))]
        line = rt.process(caps[0], 0)
        assert line is not None
        times, cpu = [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.thread_time()
            for i in range(count):
                rt.process(caps[i % len(caps)], i)
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        best = statistics.median(times)
        # CPU time of this thread: on a shared machine the wall time also counts other processes
        best_cpu = statistics.median(cpu)
        out[name] = {"records_per_s": count / best, "us_per_record": best / count * 1e6, "record_bytes": len(line),
                     "records": count, "cpu_us_per_record": best_cpu / count * 1e6}
        rt.close()
    return out


def bench_writer_lines(tmp: pathlib.Path, n: int, line: bytes) -> dict[str, Any]:
    """SpoolWriter alone: lines already serialized, ``process`` returns them as they are."""
    from prometheus_client import CollectorRegistry

    from sidecar.spool import SpoolConfig, SpoolWriter
    from sidecar.telemetry import Metrics

    out: dict[str, Any] = {}
    metrics = Metrics(CollectorRegistry())
    cases = [("never", 1, n), ("interval", 1, n), ("always", 1, max(n // 20, 200)), ("always", 8, max(n // 5, 800))]
    for fsync, threads, count in cases:
        cfg = SpoolConfig(tmp / f"lines-{fsync}-{threads}", fsync=fsync, queue_size=1_000_000)  # type: ignore[arg-type]
        writer = SpoolWriter(cfg, f"bench{fsync}{threads}", lambda item, seq: item, metrics)
        writer.submit(line)
        writer.flush(60)
        per = count // threads

        def loop(writer: Any = writer, per: int = per) -> None:
            for _ in range(per):
                writer.submit(line)

        t0 = time.perf_counter()
        ts = [threading.Thread(target=loop) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        writer.flush(120)
        elapsed = time.perf_counter() - t0
        writer.close()
        key = fsync if threads == 1 else f"{fsync}-{threads}threads"
        out[key] = {"records_per_s": per * threads / elapsed, "records": per * threads, "threads": threads,
                    "MB_per_s": per * threads * (len(line) + 1) / elapsed / 1e6, "written": writer.written,
                    "dropped": writer.dropped}
    return out


def bench_writer_full(tmp: pathlib.Path, n: int) -> dict[str, Any]:
    """The writer with the real ``process``: submit captures, records/s until all are on disk."""
    out: dict[str, Any] = {}
    for fsync, count in (("never", n), ("interval", n), ("always", max(n // 20, 200))):
        rt = _runtime(tmp / f"full-{fsync}", fsync)
        caps = [make_capture(rt, 1000, False) for _ in range(200)]
        rt.writer.submit(caps[0])
        rt.flush(60)
        t0 = time.perf_counter()
        for i in range(count):
            rt.writer.submit(caps[i % len(caps)])
        rt.flush(300)
        elapsed = time.perf_counter() - t0
        out[fsync] = {"records_per_s": count / elapsed, "records": count, "written": rt.writer.written - 1,
                      "dropped": rt.writer.dropped}
        rt.close()
    return out


def bench_submit_latency(tmp: pathlib.Path, n: int, pace_s: float) -> dict[str, Any]:
    """Time spent inside ``submit()`` on the calling thread, one call every ``pace_s`` seconds."""
    out: dict[str, Any] = {}
    for fsync in ("never", "interval", "always"):
        rt = _runtime(tmp / f"lat-{fsync}", fsync)
        caps = [make_capture(rt, 1000, False) for _ in range(200)]
        for c in caps[:20]:
            rt.writer.submit(c)
        rt.flush(60)
        lat = []
        next_at = time.perf_counter()
        for i in range(n):
            next_at += pace_s
            t0 = time.perf_counter()
            rt.writer.submit(caps[i % len(caps)])
            lat.append(time.perf_counter() - t0)
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        rt.flush(60)
        out[fsync] = {"p50_us": percentile(lat, 50) * 1e6, "p99_us": percentile(lat, 99) * 1e6,
                      "max_us": max(lat) * 1e6, "calls": n, "pace_ms": pace_s * 1e3}
        rt.close()
    return out


def markdown(data: dict[str, Any]) -> str:
    lines = ["### Spool writer", ""]
    lines.append("Record build = `Runtime.process` on the writer thread (parse, redact, build, serialize; no span "
                 "attached). Records/s are single-process; the writer is one background thread.")
    lines.append("")
    lines.append("| record build | records/s | µs/record (wall) | µs/record (CPU) | record bytes |")
    lines.append("|---|---:|---:|---:|---:|")
    for k, v in data["build"].items():
        cpu = v.get("cpu_us_per_record")
        lines.append(f"| {k} | {v['records_per_s']:,.0f} | {v['us_per_record']:.1f} | "
                     f"{'–' if cpu is None else f'{cpu:.1f}'} | {v['record_bytes']:,} |")
    lines.append("")
    lines.append(f"| SpoolWriter, pre-serialized {data['line_bytes']} B lines | records/s | MB/s |")
    lines.append("|---|---:|---:|")
    for k, v in data["writer_lines"].items():
        lines.append(f"| fsync={k} | {v['records_per_s']:,.0f} | {v['MB_per_s']:.1f} |")
    lines.append("")
    lines.append("| SpoolWriter with the real record build (1 KB prompt, JSON answer) | records/s |")
    lines.append("|---|---:|")
    for k, v in data["writer_full"].items():
        lines.append(f"| fsync={k} | {v['records_per_s']:,.0f} |")
    lines.append("")
    lat = data["submit_latency"]
    pace = next(iter(lat.values()))["pace_ms"]
    lines.append(f"| latency `submit()` adds to a call (one call every {pace:g} ms) | p50 µs | p99 µs | max µs |")
    lines.append("|---|---:|---:|---:|")
    for k, v in lat.items():
        lines.append(f"| fsync={k} | {v['p50_us']:,.1f} | {v['p99_us']:,.1f} | {v['max_us']:,.0f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="measure the record build alone (1.), print JSON")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS / "spool.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.repeat, args.latency_calls = 4000, 2, 500
    started = time.time()
    if args.build_only:
        with tempfile.TemporaryDirectory(prefix="sidecar-spool-bench-") as d:
            build = bench_build(pathlib.Path(d), args.records, args.repeat)
        for k, v in build.items():
            print(f"{k:22} {v['us_per_record']:8.1f} us wall {v['cpu_us_per_record']:8.1f} us cpu "
                  f"{v['record_bytes']:7} B")
        return 0
    data: dict[str, Any] = {"machine": machine_info(), "records": args.records,
                            "command": "python bench/spool.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="sidecar-spool-bench-") as d:
        tmp = pathlib.Path(d)
        rt = _runtime(tmp / "line")
        line = rt.process(make_capture(rt, 1000, False), 1)
        rt.close()
        assert line is not None
        data["line_bytes"] = len(line)
        print("spool: record build", file=sys.stderr, flush=True)
        data["build"] = bench_build(tmp, args.records, args.repeat)
        print("spool: writer with pre-serialized lines", file=sys.stderr, flush=True)
        data["writer_lines"] = bench_writer_lines(tmp, args.records * 5, line)
        print("spool: writer with the real record build", file=sys.stderr, flush=True)
        data["writer_full"] = bench_writer_full(tmp, args.records)
        print("spool: submit latency", file=sys.stderr, flush=True)
        data["submit_latency"] = bench_submit_latency(tmp, args.latency_calls, 0.002)
    data["seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
