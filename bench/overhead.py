"""Per-call in-process overhead of instrumentation, ours against the tools users would pick instead.

    python bench/overhead.py [--calls 400] [--rounds 3] [--quick]

The workload is the real ``openai`` SDK calling the loopback model server (tests/support/model_server.py),
which runs in its own process so its CPU is not counted in the client. Every configuration runs in a
fresh subprocess (instrumentors cannot be swapped cleanly inside one process); rounds are interleaved
(round 1: every configuration, round 2: every configuration, ...) and each configuration's overhead is
its p50 minus the baseline's p50 *from the same round*, then the median over rounds. Every config gets
the same OpenTelemetry SDK set-up: a TracerProvider with a SimpleSpanProcessor into an in-memory
exporter, a MeterProvider with an in-memory reader and a LoggerProvider into an in-memory exporter,
so only in-process cost is compared (no network export).

OpenLIT needs ``openai<3``: it runs in a separate venv (``.bench-venvs/openlit``, openai 2.x) against its
own baseline, otel-httpx and ours measured in that venv; its figures are ratios within that venv.

Writes bench/results/overhead.json. ``growth.py`` reuses the worker (``run_worker``) of this module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from common import bench_parser, log, save_results

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MODEL_SERVER = ROOT / "tests" / "support" / "model_server.py"
OPENLIT_VENV = ROOT / ".bench-venvs" / "openlit"
API_KEY = "sk-bench-0000000000000000000000000000"
HMAC_KEY = "bench-hmac-key-0123456789abcdef0123456789"
MODEL = "gpt-4o-mini"


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    name: str
    label: str
    note: str = ""


CONFIGS: dict[str, Config] = {c.name: c for c in [
    Config("none", "no instrumentation", "baseline"),
    Config("otel-httpx", "opentelemetry-instrumentation-httpx", "HTTPXClientInstrumentor + HTTPX2ClientInstrumentor"),
    Config("ours", "llm-audit-sidecar (defaults)", "capture_content=True, spool_fsync=interval"),
    Config("ours-nocontent", "llm-audit-sidecar capture_content=False"),
    Config("ours-fsync-always", "llm-audit-sidecar spool_fsync=always", "each call waits for its record's fsync"),
    Config("openllmetry", "OpenLLMetry (opentelemetry-instrumentation-openai)",
           "traceloop-sdk itself does not resolve with pip; its OpenAI instrumentor alone"),
    Config("openai-v2", "opentelemetry-instrumentation-openai-v2", "content capture off (its default)"),
    Config("openlit", "OpenLIT", "separate venv: openai 2.x (OpenLIT needs openai<3)"),
]}
MAIN_CONFIGS = ["none", "otel-httpx", "ours", "ours-nocontent", "ours-fsync-always", "openllmetry", "openai-v2"]
OPENLIT_CONFIGS = ["none", "otel-httpx", "ours", "openlit"]


def workload_name(mode: str, stream: bool, size: int, threads: int = 1) -> str:
    name = f"{mode}-{'stream' if stream else 'json'}-{human_size(size)}"
    return name if threads == 1 else f"{name}-t{threads}"


def human_size(n: int) -> str:
    for unit, div in (("MB", 1_000_000), ("KB", 1000)):
        if n >= div:
            return f"{n // div}{unit}"
    return f"{n}B"


def overhead_workloads(calls: int, warmup: int) -> list[dict[str, Any]]:
    out = []
    for mode in ("sync", "async"):
        for stream in (False, True):
            for size in (1000, 100_000):
                # a streamed answer is ~50 SSE events (~8 ms): half the calls keep the run bounded
                out.append({"name": workload_name(mode, stream, size), "mode": mode, "stream": stream, "size": size,
                            "calls": calls // 2 if stream else calls, "warmup": warmup, "threads": 1})
    return out


# --------------------------------------------------------------------------- helpers


def prompt_text(size: int) -> str:
    """``size`` characters of a customer-support prompt with an e-mail address and a phone number per KB."""
    unit = ("Please summarise the customer's note below and draft a short, polite reply. Customer: Jane Doe, "
            "jane.doe@example.com, phone +1 415 555 0134. Note: the order arrived two weeks late and the box "
            "was damaged in transit; two of the glasses inside were broken. She asks for a refund of the broken "
            "items or a replacement shipped by express delivery, and wants to know why the tracking page showed "
            "the parcel as delivered a week before it arrived. She has been a customer for six years and mentions "
            "that this is the second late delivery this year. Keep the reply under 150 words. ")
    reps = size // len(unit) + 1
    return (unit * reps)[:size]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


@contextlib.contextmanager
def model_server(python: str = sys.executable) -> Iterator[str]:
    """The loopback model server in its own process; yields its base URL."""
    proc = subprocess.Popen([python, str(MODEL_SERVER)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"model server did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def scrub(text: str) -> str:
    """Error text without this machine's paths (results are committed)."""
    text = text.replace(str(ROOT), ".")
    text = re.sub(r"[^\s\"']*/site-packages/", "site-packages/", text)
    return re.sub(r"/[^\s\"']*/lib/python3\.\d+/", "python/", text)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def versions(names: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        with contextlib.suppress(PackageNotFoundError):
            out[n] = version(n)
    return out


# --------------------------------------------------------------------------- the worker (one config, one process)


class _Otel:
    """The same in-memory OpenTelemetry SDK set-up for every configuration."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        trace.set_tracer_provider(self.tracer_provider)
        self.metric_reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.metric_reader]))
        self.logs: Any = None
        try:
            from opentelemetry import _logs
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

            self.logs = InMemoryLogRecordExporter()
            lp = LoggerProvider()
            lp.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
            _logs.set_logger_provider(lp)
        except ImportError:
            pass
        self.span_count = 0
        self.log_count = 0

    def drain(self) -> None:
        """Count and drop what was exported, so memory reflects the instrumentation, not the exporter."""
        self.span_count += len(self.spans.get_finished_spans())
        self.spans.clear()
        if self.logs is not None:
            self.log_count += len(self.logs.get_finished_logs())
            self.logs.clear()


def _setup_config(name: str, tmp: pathlib.Path, otel: _Otel) -> Callable[[], None]:
    """Install configuration ``name``; returns its flush function (called at the end of each timed block)."""
    def noop() -> None:
        return None

    if name == "none":
        return noop
    if name == "otel-httpx":
        from opentelemetry.instrumentation import httpx as otel_httpx

        otel_httpx.HTTPXClientInstrumentor().instrument()
        if hasattr(otel_httpx, "HTTPX2ClientInstrumentor"):
            otel_httpx.HTTPX2ClientInstrumentor().instrument()
        return noop
    if name.startswith("ours"):
        from prometheus_client import CollectorRegistry

        import sidecar

        opts: dict[str, Any] = {"spool_dir": tmp / "spool", "hmac_key": HMAC_KEY, "service_name": "bench"}
        if name == "ours-nocontent":
            opts["capture_content"] = False
        elif name == "ours-fsync-always":
            opts["spool_fsync"] = "always"
        sidecar.instrument(registry=CollectorRegistry(), **opts)

        def flush() -> None:
            sidecar.flush(60.0)

        return flush
    if name == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument()
        return noop
    if name == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        V2().instrument()
        return noop
    if name == "openlit":
        import logging

        import openlit

        logging.getLogger("openlit").setLevel(logging.ERROR)
        pricing = tmp / "pricing.json"
        pricing.write_text(json.dumps({"chat": {MODEL: {"promptPrice": 0.00015, "completionPrice": 0.0006}}}))
        openlit.init(service_name="bench", pricing_json=str(pricing), disable_batch=True)
        return noop
    raise ValueError(f"unknown configuration {name!r}")


def _one_sync(client: Any, stream: bool, messages: list[dict[str, str]]) -> None:
    if stream:
        s = client.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                           stream_options={"include_usage": True})
        for _ in s:
            pass
    else:
        client.chat.completions.create(model=MODEL, messages=messages)


async def _one_async(client: Any, stream: bool, messages: list[dict[str, str]]) -> None:
    if stream:
        s = await client.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                 stream_options={"include_usage": True})
        async for _ in s:
            pass
    else:
        await client.chat.completions.create(model=MODEL, messages=messages)


def _run_sync(client: Any, w: dict[str, Any], flush: Callable[[], None]) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are a support assistant."},
                {"role": "user", "content": prompt_text(w["size"])}]
    threads = int(w.get("threads", 1))
    for _ in range(w["warmup"]):
        _one_sync(client, w["stream"], messages)
    flush()
    lat: list[float] = []
    lock = threading.Lock()
    per_thread = max(1, w["calls"] // threads)

    def loop() -> None:
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            _one_sync(client, w["stream"], messages)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    if threads == 1:
        loop()
    else:
        ts = [threading.Thread(target=loop) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    wall_calls = time.perf_counter() - wall0
    flush()
    cpu = time.process_time() - cpu0
    return {"lat": lat, "cpu_per_call": cpu / len(lat), "wall": wall_calls, "calls_per_s": len(lat) / wall_calls}


async def _run_async(client: Any, w: dict[str, Any], flush: Callable[[], None]) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are a support assistant."},
                {"role": "user", "content": prompt_text(w["size"])}]
    for _ in range(w["warmup"]):
        await _one_async(client, w["stream"], messages)
    flush()
    lat: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(w["calls"]):
        t0 = time.perf_counter()
        await _one_async(client, w["stream"], messages)
        lat.append(time.perf_counter() - t0)
    wall_calls = time.perf_counter() - wall0
    flush()
    cpu = time.process_time() - cpu0
    return {"lat": lat, "cpu_per_call": cpu / len(lat), "wall": wall_calls, "calls_per_s": len(lat) / wall_calls}


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run every workload of ``spec`` under one configuration, in this (fresh) process."""
    name = spec["config"]
    url = spec["url"]
    with tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmpdir:
        tmp = pathlib.Path(tmpdir)
        otel = _Otel()
        flush = _setup_config(name, tmp, otel)
        profile = None
        if spec.get("profile"):
            import cProfile

            profile = cProfile.Profile()
        import openai

        rss_after_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results: dict[str, Any] = {}
        sync_client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
        async_client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
        # one global warm-up: imports, connection, first-call caches
        for _ in range(20):
            _one_sync(sync_client, False, [{"role": "user", "content": "hello"}])
        loop = asyncio.new_event_loop()
        for _ in range(20):
            loop.run_until_complete(_one_async(async_client, False, [{"role": "user", "content": "hello"}]))
        flush()
        otel.drain()
        if profile is not None:
            profile.enable()
        for w in spec["workloads"]:
            if w["mode"] == "sync":
                res = _run_sync(sync_client, w, flush)
            else:
                res = loop.run_until_complete(_run_async(async_client, w, flush))
            otel.drain()
            results[w["name"]] = res
        if profile is not None:
            profile.disable()
            profile.dump_stats(spec["profile"])
        loop.run_until_complete(async_client.close())
        loop.close()
        sync_client.close()
        records = 0
        spool = tmp / "spool"
        if name.startswith("ours"):
            import sidecar

            sidecar.uninstrument()
            for f in spool.glob("*.jsonl"):
                with open(f, "rb") as fh:
                    records += sum(1 for _ in fh)
        return {
            "config": name,
            "workloads": results,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "maxrss_after_setup_kb": rss_after_setup,
            "spans": otel.span_count,
            "log_records": otel.log_count,
            "audit_records": records,
            "versions": versions(["openai", "opentelemetry-sdk", "opentelemetry-instrumentation-httpx",
                                  "opentelemetry-instrumentation-openai", "opentelemetry-instrumentation-openai-v2",
                                  "openlit", "llm-audit-sidecar"]),
        }


def spawn_worker(python: str, spec: dict[str, Any], timeout: float = 900.0) -> dict[str, Any]:
    """Run ``run_worker(spec)`` in a fresh interpreter; returns its result or ``{"error": ...}``."""
    env = dict(os.environ)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    env["OTEL_TRACES_EXPORTER"] = "none"
    env["OTEL_METRICS_EXPORTER"] = "none"
    env["OTEL_LOGS_EXPORTER"] = "none"
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
        spec_path = fh.name
    try:
        proc = subprocess.run([python, str(pathlib.Path(__file__)), "--worker", spec_path], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        os.unlink(spec_path)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        return {"error": scrub(" | ".join(tail))[-800:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- aggregation


def summarize(rounds: list[dict[str, dict[str, Any]]], configs: list[str], baseline: str = "none",
              reference: str = "otel-httpx") -> dict[str, Any]:
    """Per config and workload: median over rounds of p50/p99, overhead vs the same round's baseline."""
    out: dict[str, Any] = {}
    for cfg in configs:
        runs = [r[cfg] for r in rounds if cfg in r and "error" not in r[cfg]]
        errors = [r[cfg]["error"] for r in rounds if cfg in r and "error" in r[cfg]]
        if not runs:
            out[cfg] = {"error": errors[0] if errors else "not run"}
            continue
        entry: dict[str, Any] = {"rounds_ok": len(runs), "workloads": {},
                                 "maxrss_mb": statistics.median(r["maxrss_kb"] for r in runs) / 1024,
                                 "spans_per_round": runs[0]["spans"], "log_records_per_round": runs[0]["log_records"],
                                 "audit_records_per_round": runs[0]["audit_records"], "versions": runs[0]["versions"]}
        if errors:
            entry["errors"] = errors
        for wname in runs[0]["workloads"]:
            p50s, p99s, ovh, ovh99, cpu, cpu_ovh = [], [], [], [], [], []
            for r in rounds:
                if cfg not in r or "error" in r[cfg] or wname not in r[cfg]["workloads"]:
                    continue
                w = r[cfg]["workloads"][wname]
                p50, p99 = percentile(w["lat"], 50), percentile(w["lat"], 99)
                p50s.append(p50)
                p99s.append(p99)
                cpu.append(w["cpu_per_call"])
                b = r.get(baseline)
                if b and "error" not in b and wname in b["workloads"]:
                    bw = b["workloads"][wname]
                    ovh.append(p50 - percentile(bw["lat"], 50))
                    ovh99.append(p99 - percentile(bw["lat"], 99))
                    cpu_ovh.append(w["cpu_per_call"] - bw["cpu_per_call"])
            entry["workloads"][wname] = {
                "p50_ms": statistics.median(p50s) * 1e3, "p99_ms": statistics.median(p99s) * 1e3,
                "overhead_p50_ms": statistics.median(ovh) * 1e3 if ovh else None,
                "overhead_p99_ms": statistics.median(ovh99) * 1e3 if ovh99 else None,
                "overhead_p50_ms_rounds": [o * 1e3 for o in ovh],
                "cpu_ms_per_call": statistics.median(cpu) * 1e3,
                "cpu_overhead_ms": statistics.median(cpu_ovh) * 1e3 if cpu_ovh else None,
                "calls": len(runs[0]["workloads"][wname]["lat"]),
            }
        out[cfg] = entry
    base = out.get(baseline, {})
    ref = out.get(reference, {})
    for entry in out.values():
        if "error" in entry:
            continue
        for wname, w in entry["workloads"].items():
            rw = ref.get("workloads", {}).get(wname) if "error" not in ref else None
            bw = base.get("workloads", {}).get(wname) if "error" not in base else None
            w["ratio_to_baseline_p50"] = w["p50_ms"] / bw["p50_ms"] if bw else None
            if rw and rw["overhead_p50_ms"] and w["overhead_p50_ms"] is not None and rw["overhead_p50_ms"] > 0:
                w["overhead_vs_otel_httpx"] = w["overhead_p50_ms"] / rw["overhead_p50_ms"]
            else:
                w["overhead_vs_otel_httpx"] = None
            if rw and rw["cpu_overhead_ms"] and w["cpu_overhead_ms"] is not None and rw["cpu_overhead_ms"] > 0:
                w["cpu_overhead_vs_otel_httpx"] = w["cpu_overhead_ms"] / rw["cpu_overhead_ms"]
            else:
                w["cpu_overhead_vs_otel_httpx"] = None
        if bw_rss := base.get("maxrss_mb"):
            entry["maxrss_delta_mb"] = entry["maxrss_mb"] - bw_rss
    return out


def run_rounds(python: str, url: str, configs: list[str], workloads: list[dict[str, Any]], rounds: int,
               log: Callable[[str], None]) -> list[dict[str, dict[str, Any]]]:
    out: list[dict[str, dict[str, Any]]] = []
    for rnd in range(rounds):
        this: dict[str, dict[str, Any]] = {}
        order = configs if rnd % 2 == 0 else [configs[0], *reversed(configs[1:])]  # baseline first, then alternate
        for cfg in order:
            t0 = time.perf_counter()
            this[cfg] = spawn_worker(python, {"config": cfg, "url": url, "workloads": workloads})
            status = this[cfg].get("error", "ok")
            log(f"  round {rnd + 1}/{rounds} {cfg:<18} {time.perf_counter() - t0:5.1f} s  {status[:200]}")
        out.append(this)
    return out


# --------------------------------------------------------------------------- report


def _fmt(v: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "–" if v is None else f"{v:{spec}}{suffix}"


def markdown(data: dict[str, Any]) -> str:
    lines = ["### In-process overhead per call (real `openai` SDK → loopback server in another process)", ""]
    lines.append(f"{data['calls']} calls per JSON workload ({data['calls'] // 2} per streaming one) after "
                 f"{data['warmup']} warm-up calls, {data['rounds']} "
                 "interleaved rounds, each config in a fresh process; figures are medians over rounds. "
                 "Overhead = config p50 − baseline p50 of the same round. ×httpx = overhead ÷ otel-httpx's overhead. "
                 "CPU = process CPU time per call including background threads (our spool writer), "
                 "flushed at the end of each block.")
    lines.append("")
    for venv_key, title in (("main", "Main bench venv (openai " + data["main"].get("openai", "?") + ")"),
                            ("openlit", "OpenLIT venv (openai " + data.get("openlit", {}).get("openai", "?") + ")")):
        block = data.get(venv_key)
        if not block:
            continue
        lines.append(f"#### {title}")
        lines.append("")
        if "error" in block:
            lines.append(f"Not run: {block['error']}")
            lines.append("")
            continue
        summary = block["summary"]
        workloads = block["workload_names"]
        lines.append("| config | workload | p50 ms | p99 ms | overhead p50 ms | overhead p99 ms | ×httpx | "
                     "CPU ms/call | CPU overhead ms | ×httpx (CPU) |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for cfg in block["configs"]:
            entry = summary[cfg]
            label = CONFIGS[cfg].label
            if "error" in entry:
                lines.append(f"| {label} | – | failed: {entry['error'][:200]} | | | | | | | |")
                continue
            for wname in workloads:
                w = entry["workloads"].get(wname)
                if w is None:
                    continue
                if cfg == "none":
                    lines.append(f"| {label} | {wname} | {w['p50_ms']:.3f} | {w['p99_ms']:.3f} | baseline | | | "
                                 f"{w['cpu_ms_per_call']:.3f} | baseline | |")
                    continue
                lines.append(
                    f"| {label} | {wname} | {w['p50_ms']:.3f} | {w['p99_ms']:.3f} | "
                    f"{_fmt(w['overhead_p50_ms'], '+.3f')} | {_fmt(w['overhead_p99_ms'], '+.3f')} | "
                    f"{_fmt(w['overhead_vs_otel_httpx'], '.2f', 'x')} | {w['cpu_ms_per_call']:.3f} | "
                    f"{_fmt(w['cpu_overhead_ms'], '+.3f')} | {_fmt(w['cpu_overhead_vs_otel_httpx'], '.2f', 'x')} |")
        lines.append("")
        lines.append("| config | mean overhead p50 ms (all workloads) | ×httpx | peak RSS MB | Δ RSS vs baseline MB | "
                     "spans / round | log records / round | audit records / round | note |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for cfg in block["configs"]:
            entry = summary[cfg]
            c = CONFIGS[cfg]
            if "error" in entry:
                lines.append(f"| {c.label} | – | – | – | – | – | – | – | could not run: {entry['error'][:300]} |")
                continue
            agg = block["aggregate"].get(cfg, {})
            if cfg == "none":
                agg = {}
            lines.append(
                f"| {c.label} | {_fmt(agg.get('mean_overhead_ms'), '+.3f')} | "
                f"{_fmt(agg.get('ratio_to_otel_httpx'), '.2f', 'x')} | {entry['maxrss_mb']:.1f} | "
                f"{_fmt(entry.get('maxrss_delta_mb'), '+.1f')} | {entry['spans_per_round']} | "
                f"{entry['log_records_per_round']} | {entry['audit_records_per_round']} | {c.note} |")
        lines.append("")
    if data.get("verdicts"):
        lines.append("#### Targets")
        lines.append("")
        for v in data["verdicts"]:
            lines.append(f"- {v}")
        lines.append("")
    return "\n".join(lines)


def aggregate(summary: dict[str, Any], workloads: list[str]) -> dict[str, Any]:
    """Mean over workloads of the p50 overhead, and its ratio to otel-httpx's (same workloads)."""
    out: dict[str, Any] = {}
    ref = summary.get("otel-httpx", {})
    for cfg, entry in summary.items():
        if "error" in entry:
            continue
        ovh = [entry["workloads"][w]["overhead_p50_ms"] for w in workloads if w in entry["workloads"]]
        ovh = [o for o in ovh if o is not None]
        cpu = [entry["workloads"][w]["cpu_overhead_ms"] for w in workloads if w in entry["workloads"]]
        cpu = [c for c in cpu if c is not None]
        if not ovh:
            continue
        mean = sum(ovh) / len(ovh)
        res: dict[str, Any] = {"mean_overhead_ms": mean, "mean_cpu_overhead_ms": sum(cpu) / len(cpu) if cpu else None}
        if "error" not in ref and ref:
            r = [ref["workloads"][w]["overhead_p50_ms"] for w in workloads if w in ref["workloads"]]
            r = [x for x in r if x is not None]
            if r and sum(r) > 0:
                res["ratio_to_otel_httpx"] = mean / (sum(r) / len(r))
        out[cfg] = res
    return out


def _cpu(a: dict[str, Any]) -> str:
    c = a.get("mean_cpu_overhead_ms")
    return "–" if c is None else f"{c:+.3f} ms"


def verdicts(data: dict[str, Any]) -> list[str]:
    """Target lines: latency (p50 overhead) decides; CPU overhead (incl. background threads) is shown beside it."""
    out: list[str] = []
    main = data.get("main", {})
    if "aggregate" not in main:
        return ["main venv did not run"]
    agg = main["aggregate"]
    summ = main["summary"]
    ours = agg.get("ours")
    if ours is None:
        return ["ours did not run: " + str(summ.get("ours", {}).get("error", "?"))]
    n_w = len(main["workload_names"])
    for peer, is_target in (("openllmetry", True), ("openai-v2", False)):
        p = agg.get(peer)
        label = CONFIGS[peer].label
        if p is None:
            out.append(f"ours vs {label}: peer could not run ({summ.get(peer, {}).get('error', '?')})")
            continue
        wins = [w for w in main["workload_names"]
                if summ["ours"]["workloads"][w]["overhead_p50_ms"] < summ[peer]["workloads"][w]["overhead_p50_ms"]]
        ok = ours["mean_overhead_ms"] < p["mean_overhead_ms"]
        verdict = ("MET" if ok else "MISSED") if is_target else ("lower" if ok else "higher") + " (not a target)"
        out.append(f"ours below {label}: {verdict} — mean p50 overhead {ours['mean_overhead_ms']:+.3f} ms vs "
                   f"{p['mean_overhead_ms']:+.3f} ms (lower on {len(wins)}/{n_w} workloads); CPU per call "
                   f"{_cpu(ours)} vs {_cpu(p)}")
    ol = data.get("openlit", {})
    if "aggregate" in ol and "openlit" in ol["aggregate"] and "ours" in ol["aggregate"]:
        o, p = ol["aggregate"]["ours"], ol["aggregate"]["openlit"]
        ok = o["mean_overhead_ms"] < p["mean_overhead_ms"]
        out.append(f"ours below OpenLIT (separate venv, openai {ol.get('openai', '?')}): {'MET' if ok else 'MISSED'}"
                   f" — mean p50 overhead {o['mean_overhead_ms']:+.3f} ms vs {p['mean_overhead_ms']:+.3f} ms; "
                   f"CPU per call {_cpu(o)} vs {_cpu(p)}")
    else:
        err = ol.get("error") or ol.get("summary", {}).get("openlit", {}).get("error", "not run")
        out.append(f"ours below OpenLIT: NOT MEASURED — {err}")
    ref = agg.get("otel-httpx", {})
    for cfg in ("ours", "ours-nocontent", "ours-fsync-always"):
        a = agg.get(cfg)
        if a is None or a.get("ratio_to_otel_httpx") is None:
            continue
        ratio = a["ratio_to_otel_httpx"]
        cpu_ratio = None
        if a.get("mean_cpu_overhead_ms") is not None and (ref.get("mean_cpu_overhead_ms") or 0) > 0:
            cpu_ratio = a["mean_cpu_overhead_ms"] / ref["mean_cpu_overhead_ms"]
        target = "" if cfg == "ours" else " (for information; the target is on defaults)"
        cpu_s = "–" if cpu_ratio is None else f"{cpu_ratio:.2f}x"
        out.append(f"{CONFIGS[cfg].label} within 1.5x of otel-httpx's added overhead{target}: "
                   f"{'MET' if ratio <= 1.5 else 'MISSED'} — {ratio:.2f}x on mean p50 overhead over the {n_w} "
                   f"workloads; {cpu_s} on CPU per call (incl. the spool writer thread)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, RESULTS / "overhead.json", "100 calls, 2 rounds")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default=",".join(MAIN_CONFIGS))
    parser.add_argument("--no-openlit", action="store_true", help="skip the OpenLIT venv")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(pathlib.Path(args.worker).read_text())
        print(json.dumps(run_worker(spec)))
        return 0
    if args.quick:
        args.calls, args.warmup, args.rounds = 100, 20, 2

    workloads = overhead_workloads(args.calls, args.warmup)
    wnames = [w["name"] for w in workloads]
    configs = [c for c in args.configs.split(",") if c]
    started = time.time()
    data: dict[str, Any] = {"calls": args.calls, "warmup": args.warmup, "rounds": args.rounds,
                            "machine": machine_info(), "command": "python bench/overhead.py " + " ".join(
                                a for a in (argv if argv is not None else sys.argv[1:]))}
    log(f"overhead: main venv, configs {configs}")
    with model_server() as url:
        rounds = run_rounds(sys.executable, url, configs, workloads, args.rounds, log)
    summary = summarize(rounds, configs)
    data["main"] = {"python": sys.executable and platform.python_version(), "configs": configs,
                    "workload_names": wnames, "summary": summary, "aggregate": aggregate(summary, wnames),
                    "openai": versions(["openai"]).get("openai", "?")}
    openlit_py = OPENLIT_VENV / "bin" / "python"
    if args.no_openlit:
        data["openlit"] = {"error": "skipped (--no-openlit)"}
    elif not openlit_py.exists():
        data["openlit"] = {"error": "venv .bench-venvs/openlit missing: run `python bench/run.py --setup-openlit`"}
    else:
        log("overhead: OpenLIT venv")
        with model_server() as url:
            rounds = run_rounds(str(openlit_py), url, OPENLIT_CONFIGS, workloads, args.rounds, log)
        summary = summarize(rounds, OPENLIT_CONFIGS)
        ver = next((e["versions"] for e in summary.values() if "versions" in e), {})
        data["openlit"] = {"configs": OPENLIT_CONFIGS, "workload_names": wnames, "summary": summary,
                           "aggregate": aggregate(summary, wnames), "openai": ver.get("openai", "?")}
    data["verdicts"] = verdicts(data)
    return save_results(data, args.out, started, markdown)


if __name__ == "__main__":
    sys.exit(main())
