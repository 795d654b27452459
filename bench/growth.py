"""How the per-call cost grows with prompt size and with concurrency.

    python bench/growth.py [--rounds 3] [--quick]

Same worker and method as overhead.py (fresh process per configuration, interleaved rounds, overhead =
config p50 − baseline p50 of the same round), on the sync ``openai`` client, non-streaming:

- prompt size 1 KB, 10 KB, 100 KB, 1 MB, 10 MB (one thread; fewer calls for the big sizes);
- concurrency 1, 4, 16, 64 threads sharing one client (1 KB prompt): per-call p50/p99 and calls/s.

Configurations: no instrumentation, opentelemetry-instrumentation-httpx, ours (defaults).
Writes bench/results/growth.json, overhead_vs_size.png and overhead_vs_concurrency.png.
"""

from __future__ import annotations

import pathlib
import sys
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from common import bench_parser, log, plot_lines, save_results  # noqa: E402
from overhead import CONFIGS, machine_info, model_server, run_rounds, summarize, workload_name  # noqa: E402

GROWTH_CONFIGS = ["none", "otel-httpx", "ours"]
SIZES = [1000, 10_000, 100_000, 1_000_000, 10_000_000]
THREADS = [1, 4, 16, 64]


def size_calls(size: int, calls: int) -> int:
    if size >= 10_000_000:
        return max(calls // 40, 8)
    if size >= 1_000_000:
        return max(calls // 10, 20)
    if size >= 100_000:
        return max(calls // 2, 50)
    return calls


def workloads(calls: int, warmup: int, sizes: list[int], threads: list[int]) -> list[dict[str, Any]]:
    out = []
    for size in sizes:
        n = size_calls(size, calls)
        out.append({"name": workload_name("sync", False, size), "mode": "sync", "stream": False, "size": size,
                    "calls": n, "warmup": max(2, min(warmup, n // 4)), "threads": 1, "axis": "size"})
    for t in threads:
        out.append({"name": workload_name("sync", False, 1000) + f"-t{t}", "mode": "sync", "stream": False,
                    "size": 1000,
                    "calls": max(calls, t * 8) // t * t, "warmup": warmup, "threads": t, "axis": "threads"})
    return out


def _calls_per_s(rounds: list[dict[str, dict[str, Any]]], cfg: str, wname: str) -> float | None:
    vals = sorted(r[cfg]["workloads"][wname]["calls_per_s"] for r in rounds
                  if cfg in r and "error" not in r[cfg] and wname in r[cfg]["workloads"])
    return vals[len(vals) // 2] if vals else None


def plot(data: dict[str, Any], out_dir: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    summary = data["summary"]
    colors = {cfg: f"C{i}" for i, cfg in enumerate(data["configs"])}  # the same colour in both panels
    for axis, xs, fname, xlabel in (("size", data["sizes"], "overhead_vs_size.png", "prompt size (bytes)"),
                                    ("threads", data["threads"], "overhead_vs_concurrency.png",
                                     "client threads (shared sync client)")):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for cfg in data["configs"]:
            entry = summary.get(cfg, {})
            if "error" in entry:
                continue
            names = [w["name"] for w in data["workloads"] if w["axis"] == axis]
            p50 = [entry["workloads"][n]["p50_ms"] for n in names]
            ax1.plot(xs, p50, marker="o", color=colors[cfg], label=CONFIGS[cfg].label)
            if cfg != "none":
                ovh = [entry["workloads"][n]["overhead_p50_ms"] for n in names]
                ax2.plot(xs, ovh, marker="o", color=colors[cfg], label=CONFIGS[cfg].label)
        for ax in (ax1, ax2):
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        if axis == "size":
            ax1.set_yscale("log")
        ax1.set_ylabel("p50 latency per call (ms)")
        ax2.set_ylabel("added p50 latency vs no instrumentation (ms)")
        ax2.axhline(0, color="grey", linewidth=0.8)
        fig.suptitle(f"openai SDK → loopback server: cost vs {'prompt size' if axis == 'size' else 'concurrency'} "
                     f"(median of {data['rounds']} rounds)")
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return written


def markdown(data: dict[str, Any]) -> str:
    summary = data["summary"]
    lines = ["### Growth: prompt size and concurrency (sync client, non-streaming)", ""]
    lines.append("| workload | calls | " + " | ".join(
        f"{CONFIGS[c].label} p50 / p99 ms" for c in data["configs"]) + " | ours overhead p50 ms | "
        "otel-httpx overhead p50 ms | ours ×httpx | ours calls/s ÷ baseline |")
    lines.append("|---|---:|" + "---:|" * (len(data["configs"]) + 4))
    for w in data["workloads"]:
        n = w["name"]
        cells = []
        for c in data["configs"]:
            e = summary.get(c, {})
            if "error" in e:
                cells.append("failed")
                continue
            cells.append(f"{e['workloads'][n]['p50_ms']:.2f} / {e['workloads'][n]['p99_ms']:.2f}")
        ours = summary.get("ours", {}).get("workloads", {}).get(n, {})
        ref = summary.get("otel-httpx", {}).get("workloads", {}).get(n, {})
        o, r = ours.get("overhead_p50_ms"), ref.get("overhead_p50_ms")
        ratio = f"{o / r:.2f}x" if o is not None and r else "–"
        tput = data["calls_per_s"].get("ours", {}).get(n)
        base = data["calls_per_s"].get("none", {}).get(n)
        tr = f"{tput / base:.2f}" if tput and base else "–"
        lines.append(f"| {n} | {w['calls']} | " + " | ".join(cells) + f" | {o if o is None else f'{o:+.3f}'} | "
                     f"{r if r is None else f'{r:+.3f}'} | {ratio} | {tr} |")
    lines.append("")
    lines.extend(plot_lines(data))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, RESULTS / "growth.json", "fewer calls, 2 rounds, sizes up to 1 MB")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = SIZES
    if args.quick:
        args.calls, args.warmup, args.rounds = 120, 10, 2
        sizes = SIZES[:-1]
    ws = workloads(args.calls, args.warmup, sizes, THREADS)
    started = time.time()

    log(f"growth: configs {GROWTH_CONFIGS}")
    with model_server() as url:
        rounds = run_rounds(sys.executable, url, GROWTH_CONFIGS, ws, args.rounds, log)
    summary = summarize(rounds, GROWTH_CONFIGS)
    data: dict[str, Any] = {
        "machine": machine_info(), "rounds": args.rounds, "configs": GROWTH_CONFIGS, "sizes": sizes,
        "threads": THREADS, "workloads": [{k: v for k, v in w.items() if k != "warmup"} for w in ws],
        "summary": summary,
        "calls_per_s": {c: {w["name"]: _calls_per_s(rounds, c, w["name"]) for w in ws} for c in GROWTH_CONFIGS},
        "command": "python bench/growth.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    return save_results(data, args.out, started, markdown, plot)


if __name__ == "__main__":
    sys.exit(main())
