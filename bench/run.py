"""``make bench``: every benchmark in bounded time, one after another, then one Markdown page.

    python bench/run.py                 # everything (~15-20 min on 2 cores)
    python bench/run.py --quick         # smaller counts, 2 rounds (~6 min)
    python bench/run.py --only overhead,spool
    python bench/run.py --es URL        # Elasticsearch for the shipper (default: SIDECAR_TEST_ES_URL, else
                                        # `bash scripts/elasticsearch.sh up`; --no-es to skip)

Steps (each a fresh subprocess, never two at once): redaction (bench/redact, quoted), overhead, growth,
spool, shipper. OpenLIT runs in its own venv, ``.bench-venvs/openlit`` (openai 2.x), which this script
creates when missing (``--no-openlit`` skips it). If one of our targets is missed, a cProfile summary of our
package is added (request path: the app thread of a worker; record build: the spool writer's work).

Writes bench/results/*.json, bench/results/latest.md, and the results block of bench/README.md; prints the page.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import os
import pathlib
import pstats
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
README = HERE / "README.md"
OPENLIT_VENV = ROOT / ".bench-venvs" / "openlit"
OPENLIT_PACKAGES = ["openlit==1.45.0", "openai>=2,<3"]
sys.path.insert(0, str(HERE))

import growth  # noqa: E402
import overhead  # noqa: E402
import shipper  # noqa: E402
import spool  # noqa: E402

STEPS = ["redact", "overhead", "growth", "spool", "shipper"]
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], timeout: float, capture: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, text=True, check=False,
                          stdout=subprocess.PIPE if capture else None, stderr=None)


def setup_openlit() -> str | None:
    """Create the OpenLIT venv when missing; None when ready, else why not."""
    py = OPENLIT_VENV / "bin" / "python"
    if py.exists():
        check = subprocess.run([str(py), "-c", "import openlit, openai, sidecar"], capture_output=True, text=True,
                               check=False)
        if check.returncode == 0:
            return None
    log(f"creating {OPENLIT_VENV.relative_to(ROOT)} ({' '.join(OPENLIT_PACKAGES)} + this package)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(OPENLIT_VENV)], check=True, timeout=300)
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *OPENLIT_PACKAGES, "-e", str(ROOT)], check=True, timeout=900)
        check = subprocess.run([str(py), "-c", "import openlit"], capture_output=True, text=True, check=False)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"could not create the OpenLIT venv: {exc}"
    if check.returncode != 0:
        return "OpenLIT fails at import: " + (check.stderr.strip().splitlines() or ["?"])[-1]
    return None


def find_es(arg: str | None, enabled: bool) -> str | None:
    if not enabled:
        return None
    if arg:
        return arg
    if os.environ.get("SIDECAR_TEST_ES_URL"):
        return os.environ["SIDECAR_TEST_ES_URL"]
    log("starting (or reusing) the Elasticsearch test node: bash scripts/elasticsearch.sh up")
    try:
        proc = subprocess.run(["bash", "scripts/elasticsearch.sh", "up"], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, check=False)
    except (subprocess.SubprocessError, OSError) as exc:
        log(f"no Elasticsearch: {exc}")
        return None
    lines = proc.stdout.strip().splitlines()
    url = lines[-1].strip() if lines else ""
    if proc.returncode != 0 or not url.startswith("http"):
        log(f"no Elasticsearch (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        return None
    return url


# --------------------------------------------------------------------------- profiles


def _our_rows(stats: pstats.Stats, limit: int = 15, skip: tuple[str, ...] = ()) -> list[str]:
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        norm = filename.replace("\\", "/")
        if "/sidecar/" not in norm or func in skip:
            continue
        rel = "sidecar/" + norm.rsplit("/sidecar/", 1)[1]
        rows.append((ct, tt, nc, f"{rel}:{line}({func})"))
    rows.sort(reverse=True)
    out = ["| cumulative s | own s | calls | function |", "|---:|---:|---:|---|"]
    for ct, tt, nc, name in rows[:limit]:
        out.append(f"| {ct:.3f} | {tt:.3f} | {nc} | `{name}` |")
    return out


def profile_ours(quick: bool) -> dict[str, Any]:
    """cProfile of our package: the request path (app thread of an instrumented worker) and the record build."""
    result: dict[str, Any] = {}
    calls = 100 if quick else 300
    ws = [w for w in overhead.overhead_workloads(calls, 20) if w["name"] in ("sync-json-1KB", "sync-stream-1KB",
                                                                             "sync-json-100KB")]
    with tempfile.TemporaryDirectory(prefix="sidecar-profile-") as d:
        prof_path = str(pathlib.Path(d) / "worker.prof")
        with overhead.model_server() as url:
            res = overhead.spawn_worker(sys.executable, {"config": "ours", "url": url, "workloads": ws,
                                                         "profile": prof_path})
        if "error" in res:
            result["request_path_error"] = res["error"]
        else:
            st = pstats.Stats(prof_path)
            total = st.total_tt  # type: ignore[attr-defined]
            raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
            own = sum(v[2] for (f, _l, fn), v in raw.items()
                      if "/sidecar/" in f.replace("\\", "/") and fn != "flush")
            n_calls = sum(w["calls"] for w in ws)
            # flush() is the harness waiting for the writer at the end of a block, not the request path
            result["request_path"] = {"workloads": [w["name"] for w in ws], "calls_each": calls,
                                      "calls_total": n_calls, "profiled_seconds": total,
                                      "own_seconds_in_sidecar": own, "own_us_per_call": own / n_calls * 1e6,
                                      "rows": _our_rows(st, skip=("flush",))}
        # the record build, as the spool writer thread runs it
        rt = spool._runtime(pathlib.Path(d) / "spool")
        caps = [spool.make_capture(rt, 1000, False), spool.make_capture(rt, 1000, True),
                spool.make_capture(rt, 100_000, False)]
        n = 300 if quick else 1000
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n):
            rt.process(caps[i % 3], i)
        prof.disable()
        rt.close()
        st = pstats.Stats(prof)
        result["record_build"] = {"records": n, "mix": "1 KB JSON, 1 KB stream, 100 KB JSON in turn",
                                  "profiled_seconds": st.total_tt, "rows": _our_rows(st)}  # type: ignore[attr-defined]
    return result


def profile_markdown(p: dict[str, Any]) -> str:
    lines = ["### Profile of our package (a target was missed)", ""]
    if "request_path" in p:
        rp = p["request_path"]
        lines.append(f"Request path (application thread, cProfile), {rp['calls_each']} calls each of "
                     f"{', '.join(rp['workloads'])} (the streaming one gets half); top 15 functions of "
                     "`sidecar` by cumulative time. Cumulative time of the transport wrapper includes the "
                     "wrapped transport (network, server); the time spent in our own code on this thread is "
                     f"{rp.get('own_us_per_call', float('nan')):.0f} µs per call (cProfile-inflated).")
        lines.append("")
        lines.extend(rp["rows"])
        lines.append("")
    elif "request_path_error" in p:
        lines.append(f"Request path profile failed: {p['request_path_error']}")
        lines.append("")
    rb = p.get("record_build")
    if rb:
        lines.append(f"Record build (spool writer thread's work: `Runtime.process`), {rb['records']} records "
                     f"({rb['mix']}); top 15 by cumulative time:")
        lines.append("")
        lines.extend(rb["rows"])
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the page


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def redact_markdown() -> str:
    lines = ["### Redaction (bench/redact, quoted)", ""]
    b = _load("redact_bench.json")
    if b:
        lines.append("| corpus | ours (default) MB/s | ours (+IP) MB/s | ours, pure-regex fallback MB/s | "
                     "Presidio pattern-only MB/s | ours ÷ Presidio |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for name in ("clean", "dirty"):
            r = b["results"].get(name)
            if r:
                fallback = r.get("ours_regex_only_mbps")
                lines.append(f"| {name} ({b['bytes'][name] / 1e6:.2f} MB, {b['texts'][name]} texts) | "
                             f"{r['ours_default_mbps']:.1f} | {r['ours_detect_ip_mbps']:.1f} | "
                             f"{'–' if fallback is None else f'{fallback:.1f}'} | "
                             f"{r['presidio_mbps']:.2f} | {r['ratio_vs_presidio']:.0f}x |")
        one = b["results"].get("clean_one_string")
        if one:
            lines.append(f"| clean, one string | {one['ours_default_mbps']:.1f} | | | | |")
        lines.append("")
        lines.append(f"`{b.get('command', 'python bench/redact/bench_redact.py')}`. "
                     f"Presidio {b['versions'].get('presidio-analyzer', '?')}: {b.get('notes', '')}")
        lines.append("")
    e = _load("redact_eval.json")
    if e:
        lines.append(f"Recall on the shared types ({e['samples']} planted samples + {e['clean_samples']} clean):")
        lines.append("")
        lines.append("| type | planted | ours precision | ours recall | Presidio precision | Presidio recall |")
        lines.append("|---|---:|---:|---:|---:|---:|")

        def pct(v: float | None) -> str:
            return "–" if v is None else f"{100 * v:.1f}%"

        for t in e["shared_types"]:
            o, p = e["ours"].get(t, {}), e["presidio"].get(t, {})
            lines.append(f"| {t} | {o.get('planted', '–')} | {pct(o.get('precision'))} | {pct(o.get('recall'))} | "
                         f"{pct(p.get('precision'))} | {pct(p.get('recall'))} |")
        lines.append("")
    if not b and not e:
        lines.append("Not run.")
        lines.append("")
    return "\n".join(lines)


def page(meta: dict[str, Any]) -> str:
    m = overhead.machine_info()
    lines = ["## Latest results", ""]
    lines.append(f"Run {meta['date']} with `{meta['command']}` in {meta['seconds'] / 60:.1f} min on "
                 f"{m['cpus']} cores ({m['cpu_model']}), Python {m['python']}, {m['platform']}. "
                 "Shared machine: read ratios, not absolute times.")
    lines.append("")
    if meta.get("notes"):
        for n in meta["notes"]:
            lines.append(f"- {n}")
        lines.append("")
    ov = _load("overhead.json")
    if ov and ov.get("verdicts"):
        lines.append("### Target verdicts")
        lines.append("")
        for v in ov["verdicts"]:
            lines.append(f"- {v}")
        sh = _load("shipper.json")
        if sh:
            ev = sh.get("es_vs_raw") or {}
            if "ratio_median" in ev:
                lines.append(f"- shipper within 80% of a raw `_bulk` loader: "
                             f"{'MET' if ev['ratio_median'] >= 0.8 else 'MISSED'} — {ev['ratio_median']:.2f}")
            enc = sh.get("encode", {}).get("encode_records_per_s")
            if enc:
                lines.append(f"- spool-to-bulk encoding well above 50k records/s on one core: "
                             f"{'MET' if enc > 100_000 else 'MET (barely)' if enc > 50_000 else 'MISSED'} — "
                             f"{enc:,.0f}/s")
            for key in ("cli_drain_es", "cli_drain_sqlite"):
                d = sh.get(key) or {}
                if d.get("rss_mb_max"):
                    lines.append(f"- sidecar memory tens of MB, flat ({d['sink']}, {d['records']:,} records): "
                                 f"first {d['rss_mb_first']:.0f} MB, max {d['rss_mb_max']:.0f} MB")
        sp = _load("spool.json")
        for name, target in (("json-1KB", 80), ("json-100KB", 400)):
            v = ((sp or {}).get("build") or {}).get(name) or {}
            cpu = v.get("cpu_us_per_record")
            if cpu is not None:
                verdict = "MET" if cpu <= target else "MISSED"
                lines.append(f"- record build at most {target} µs per {name} call: {verdict} — "
                             f"{cpu:.0f} µs CPU ({v['us_per_record']:.0f} wall)")
        gr = _load("growth.json")
        if gr:
            tput = (gr.get("calls_per_s") or {}).get("ours", {}).get("sync-json-1KB-t64")
            base = (gr.get("calls_per_s") or {}).get("none", {}).get("sync-json-1KB-t64")
            if tput and base:
                lines.append(f"- 64-thread throughput at least 0.9x uninstrumented: "
                             f"{'MET' if tput / base >= 0.9 else 'MISSED'} — {tput / base:.2f}x")
        rb = _load("redact_bench.json")
        if rb:
            ratio = min(rb["results"][c]["ratio_vs_presidio"] for c in ("clean", "dirty"))
            lines.append(f"- redaction at least 20x Presidio pattern-only: {'MET' if ratio >= 20 else 'MISSED'} — "
                         f"at least {ratio:.0f}x")
            clean = rb["results"]["clean"]["ours_default_mbps"]
            lines.append(f"- redaction at least 100 MB/s on clean text: {'MET' if clean >= 100 else 'MISSED'} — "
                         f"{clean:.1f} MB/s (default rules, CPU time; "
                         f"{rb['results']['clean']['ours_detect_ip_mbps']:.1f} with IP addresses)")
            dirty = rb["results"]["dirty"]["ours_default_mbps"]
            lines.append(f"- redaction at least 30 MB/s on dirty text: {'MET' if dirty >= 30 else 'MISSED'} — "
                         f"{dirty:.1f} MB/s (default rules, CPU time)")
        lines.append("")
    if ov:
        lines.append(overhead.markdown({**ov, "verdicts": []}))
    g = _load("growth.json")
    if g:
        lines.append(growth.markdown(g))
    s = _load("spool.json")
    if s:
        lines.append(spool.markdown(s))
    sh = _load("shipper.json")
    if sh:
        lines.append(shipper.markdown(sh))
    lines.append(redact_markdown())
    prof = _load("profile.json")
    if prof and prof.get("date") == meta["date"]:
        lines.append(profile_markdown(prof))
    return "\n".join(lines)


def update_readme(md: str) -> None:
    if not README.exists():
        return
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + BEGIN + "\n" + md.replace("](", "](results/") + "\n" + END + tail)


def missed(ov: dict[str, Any] | None) -> bool:
    return bool(ov) and any("MISSED" in v for v in ov.get("verdicts", []))  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts and 2 rounds everywhere")
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma list of {STEPS}")
    parser.add_argument("--es", help="Elasticsearch URL for the shipper benchmark")
    parser.add_argument("--no-es", action="store_true", help="skip the Elasticsearch part of the shipper benchmark")
    parser.add_argument("--no-openlit", action="store_true", help="skip OpenLIT (and its venv)")
    parser.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                        help="cProfile of our package: when a target is missed (auto), always or never")
    parser.add_argument("--render-only", action="store_true",
                        help="rebuild latest.md and the README block from the last run's results (with "
                        "--profile always: profile again first)")
    args = parser.parse_args(argv)
    if args.render_only:
        meta = _load("run.json") or {"date": "?", "command": "?", "seconds": 0.0, "notes": []}
        if args.profile == "always":
            prof = profile_ours(args.quick)
            prof["date"] = meta["date"]
            (RESULTS / "profile.json").write_text(json.dumps(prof, indent=1))
        md = page(meta)
        (RESULTS / "latest.md").write_text(md + "\n")
        update_readme(md)
        print(md)
        return 0
    steps = [s for s in args.only.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}")
    quick = ["--quick"] if args.quick else []
    started = time.time()
    RESULTS.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    status: dict[str, int] = {}
    py = sys.executable
    if "redact" in steps:
        log("redaction throughput (bench/redact/bench_redact.py)")
        extra = ["--clean-mb", "0.3", "--repeat", "2"] if args.quick else []
        status["redact_bench"] = run([py, "bench/redact/bench_redact.py", *extra], 900).returncode
        log("redaction recall (bench/redact/eval_redact.py)")
        extra = ["--samples", "500"] if args.quick else []
        status["redact_eval"] = run([py, "bench/redact/eval_redact.py", *extra], 900).returncode
    if "overhead" in steps:
        ol_flag: list[str] = []
        if args.no_openlit:
            ol_flag = ["--no-openlit"]
        else:
            why = setup_openlit()
            if why:
                notes.append(f"OpenLIT: {why}")
                ol_flag = ["--no-openlit"]
        log("in-process overhead (bench/overhead.py)")
        status["overhead"] = run([py, "bench/overhead.py", *quick, *ol_flag], 1800, capture=True).returncode
    if "growth" in steps:
        log("growth with prompt size and concurrency (bench/growth.py)")
        status["growth"] = run([py, "bench/growth.py", *quick], 1500, capture=True).returncode
    if "spool" in steps:
        log("spool writer (bench/spool.py)")
        status["spool"] = run([py, "bench/spool.py", *quick], 900, capture=True).returncode
    if "shipper" in steps:
        es = find_es(args.es, not args.no_es)
        if es is None:
            notes.append("Shipper: no Elasticsearch reachable; only encode-only and SQLite figures.")
        log("shipper (bench/shipper.py)")
        cmd = [py, "bench/shipper.py", *quick] + (["--es", es] if es else [])
        env_es = os.environ.pop("SIDECAR_TEST_ES_URL", None)
        try:
            status["shipper"] = run(cmd, 1500, capture=True).returncode
        finally:
            if env_es is not None:
                os.environ["SIDECAR_TEST_ES_URL"] = env_es
    failed = [k for k, v in status.items() if v != 0]
    if failed:
        notes.append(f"steps that failed this run (older results shown if any): {', '.join(failed)}")
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ov = _load("overhead.json")
    if args.profile == "always" or (args.profile == "auto" and missed(ov)):
        log("profiling our package (cProfile)")
        try:
            prof = profile_ours(args.quick)
            prof["date"] = date
            (RESULTS / "profile.json").write_text(json.dumps(prof, indent=1))
        except Exception as exc:
            notes.append(f"profile failed: {type(exc).__name__}: {exc}")
    command = "python bench/run.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])
                                               if not a.startswith("http"))
    meta = {"date": date, "command": command, "seconds": time.time() - started, "notes": notes,
            "steps": steps, "status": status}
    md = page(meta)
    (RESULTS / "latest.md").write_text(md + "\n")
    (RESULTS / "run.json").write_text(json.dumps(meta, indent=1))
    with contextlib.suppress(OSError):
        update_readme(md)
    print(md)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
