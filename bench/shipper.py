"""Shipper throughput: spool -> Elasticsearch versus a plain ``_bulk`` loader, and spool -> embedded SQLite.

    python bench/shipper.py [--es URL] [--records 60000] [--quick]

The spool is made of real records (``Runtime.process`` on captured calls with a 1 KB prompt, content on),
replicated with unique ids, written by the real ``SpoolWriter``. Measurements:

1. encode only (no network): spool read + parse (``SpoolReader``) and ``_bulk`` body encoding
   (``sidecar.ship._es_bulk.items``/``chunks``), records/s on one core;
2. the same spool into the real Elasticsearch with the ``sidecar run --once`` code path
   (``Shipper(SpoolReader, ElasticsearchSink)``: read, parse, encode, send, checkpoint) versus a plain
   ``_bulk`` loader given the same documents already parsed in memory (``create`` actions, 5 MB bodies,
   ``errors`` checked) into indices with the same template — interleaved rounds, fresh prefixes each time;
3. throughput versus the shipper's batch size (Elasticsearch and the embedded SQLite store), plotted;
4. the ``sidecar run --once`` process itself over a long drain: its RSS sampled every 0.25 s.

Without an Elasticsearch URL (``--es`` or ``SIDECAR_TEST_ES_URL``) only 1 and the SQLite parts run.
Every index and template made here (prefix ``benchXXXXXXXX``) is deleted at the end.
Writes bench/results/shipper.json and shipper_batch_size.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT / "tests" / "support"))

from common import bench_parser, log, plot_lines, save_results  # noqa: E402
from es_testing import bulk_bodies  # noqa: E402
from overhead import machine_info  # noqa: E402
from spool import _runtime, make_capture  # noqa: E402

BATCH_BYTES = 5_000_000


# --------------------------------------------------------------------------- the spool


def build_spool(directory: pathlib.Path, n: int, unique: int = 400) -> dict[str, Any]:
    """``n`` records in ``directory``: ``unique`` real ones, repeated with fresh ids, via the real SpoolWriter."""
    from prometheus_client import CollectorRegistry

    from sidecar.spool import SpoolConfig, SpoolWriter
    from sidecar.telemetry import Metrics

    with tempfile.TemporaryDirectory(prefix="sidecar-build-") as d:
        rt = _runtime(pathlib.Path(d))
        base = []
        for i in range(unique):
            line = rt.process(make_capture(rt, 1000, i % 4 == 0), i + 1)
            assert line is not None
            base.append(line)
        rt.close()
    old_prefix = b'{"event.id":"' + rt.producer_id.encode() + b"-"
    producer = "bench" + uuid.uuid4().hex[:8]
    writer = SpoolWriter(SpoolConfig(directory, fsync="never", queue_size=n + 10), producer,
                         lambda item, seq: item, Metrics(CollectorRegistry()))
    size = 0
    for i in range(n):
        src = base[i % unique]
        end = src.index(b'"', len(old_prefix))
        line = b'{"event.id":"' + f"{producer}-r{i}".encode() + src[end:]
        size += len(line) + 1
        writer.submit(line)
    writer.flush(300)
    writer.close()
    return {"records": n, "bytes": size, "avg_record_bytes": size / n,
            "segments": len(list(directory.glob("*.jsonl")))}


def copy_spool(src: pathlib.Path, dst: pathlib.Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


# --------------------------------------------------------------------------- measurements


def bench_encode(spool: pathlib.Path, repeat: int) -> dict[str, Any]:
    from sidecar.ship._es_bulk import IndexNames, chunks, items
    from sidecar.spool import SpoolReader

    names = IndexNames("bench-encode")
    read_t, enc_t, n_docs = [], [], 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="sidecar-state-") as state:
            reader = SpoolReader(spool, pathlib.Path(state))
            docs = []
            t0 = time.perf_counter()
            for stem, path, sealed in reader.segments():
                with open(path, "rb") as fh:
                    data = fh.read()
                batch = reader._parse(stem, path, sealed, 0, len(data), data, 10**9)
                docs.extend(batch.docs)
            t1 = time.perf_counter()
            body_bytes = 0
            for i in range(0, len(docs), 2000):
                for chunk in chunks(items(docs[i:i + 2000], names), BATCH_BYTES):
                    body_bytes += len(b"".join(item.payload for item in chunk))
            t2 = time.perf_counter()
        read_t.append(t1 - t0)
        enc_t.append(t2 - t1)
        n_docs = len(docs)
    r, e = statistics.median(read_t), statistics.median(enc_t)
    return {"records": n_docs, "read_parse_records_per_s": n_docs / r, "encode_records_per_s": n_docs / e,
            "read_and_encode_records_per_s": n_docs / (r + e), "bulk_body_bytes": body_bytes}


class ES:
    def __init__(self, url: str) -> None:
        import urllib3

        self.url = url.rstrip("/")
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=120))

    def req(self, method: str, path: str, body: bytes | None = None, ndjson: bool = False) -> tuple[int, Any]:
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"} if body else {}
        resp = self.http.request(method, self.url + path, body=body, headers=headers)
        try:
            return resp.status, json.loads(resp.data) if resp.data else None
        except ValueError:
            return resp.status, None

    def count(self, prefix: str) -> int:
        self.req("POST", f"/{prefix}-*/_refresh?allow_no_indices=true&ignore_unavailable=true")
        status, body = self.req("GET", f"/{prefix}-*/_count?allow_no_indices=true")
        return int(body["count"]) if status == 200 else -1

    def cleanup(self, prefix: str) -> None:
        status, body = self.req("GET", f"/_cat/indices/{prefix}-*?format=json&expand_wildcards=all")
        rows = body if status == 200 and isinstance(body, list) else []
        for row in rows:
            self.req("DELETE", f"/{row['index']}")
        status, body = self.req("GET", f"/_index_template/{prefix}-*")
        templates = body.get("index_templates", []) if status == 200 and isinstance(body, dict) else []
        for tpl in templates:
            self.req("DELETE", f"/_index_template/{tpl['name']}")


def read_docs(spool: pathlib.Path) -> list[tuple[str, str, bytes]]:
    """(id, index day, raw line) of every record: the raw loader gets them parsed in advance (not timed)."""
    out = []
    for path in sorted(spool.glob("*.jsonl")):
        with open(path, "rb") as fh:
            for raw in fh:
                raw = raw.rstrip(b"\n")
                doc = json.loads(raw)
                ts = doc["@timestamp"]
                out.append((doc["event.id"], f"{ts[:4]}.{ts[5:7]}.{ts[8:10]}", raw))
    return out


def raw_bulk(es: ES, prefix: str, docs: list[tuple[str, str, bytes]]) -> float:
    """The baseline loader: ``create`` lines for documents already in memory, 5 MB POSTs, check ``errors``."""
    started = time.perf_counter()
    for body in bulk_bodies(prefix, docs, BATCH_BYTES):
        status, res = es.req("POST", "/_bulk?filter_path=errors", body, ndjson=True)
        if status != 200 or res.get("errors") is not False:
            raise RuntimeError(f"raw _bulk failed: HTTP {status}")
    return time.perf_counter() - started


def ship(spool: pathlib.Path, sink: Any, batch_size: int) -> tuple[float, int]:
    """The ``sidecar run --once`` path: open the sink, ship everything; (seconds, stored)."""
    from sidecar.ship import Shipper
    from sidecar.spool import SpoolReader

    with tempfile.TemporaryDirectory(prefix="sidecar-state-") as state:
        reader = SpoolReader(spool, pathlib.Path(state))
        shipper = Shipper(reader, sink, batch_size=batch_size)
        started = time.perf_counter()
        sink.open()
        shipper.ship_available(threading.Event())
        elapsed = time.perf_counter() - started
        sink.close()
    return elapsed, shipper.stats.stored


def raw_versus_sink(es: ES, sink_url: str, base: str, master: pathlib.Path, work: pathlib.Path, n: int,
                    rounds: int) -> dict[str, Any]:
    """Interleaved rounds of the plain loader and the ``sidecar run --once`` path (``sink_url``: one or more
    comma-separated URLs) on the same documents, each into fresh indices ``{base}-{kind}{round}``; every
    count is checked; medians and the sink/raw ratio per round."""
    from sidecar.ship.elasticsearch import ElasticsearchSink

    raw_t: list[float] = []
    sink_t: list[float] = []
    docs = read_docs(master)
    warm = f"{base}-warmup"  # connection, JIT, first index creation: not in the figures
    ElasticsearchSink(sink_url, index_prefix=warm).open()
    raw_bulk(es, warm, docs[:2000])
    es.cleanup(warm)
    for rnd in range(rounds):
        for kind in (("raw", "sink") if rnd % 2 == 0 else ("sink", "raw")):
            prefix = f"{base}-{kind}{rnd}"
            copy_spool(master, work)
            # the same index template for both, so only the client differs (not timed)
            ElasticsearchSink(sink_url, index_prefix=prefix).open()
            if kind == "raw":
                raw_t.append(raw_bulk(es, prefix, docs))
            else:
                sink = ElasticsearchSink(sink_url, index_prefix=prefix, batch_max_bytes=BATCH_BYTES)
                elapsed, stored = ship(work, sink, 2000)
                if stored != n:
                    raise RuntimeError(f"shipper stored {stored} of {n}")
                sink_t.append(elapsed)
            got = es.count(prefix)
            if got != n:
                raise RuntimeError(f"{kind} round {rnd}: {got} documents stored, expected {n}")
            es.cleanup(prefix)
    ratios = [r / s for r, s in zip(raw_t, sink_t, strict=True)]
    return {"records": n, "raw_seconds": raw_t, "sink_seconds": sink_t,
            "raw_records_per_s": n / statistics.median(raw_t), "sink_records_per_s": n / statistics.median(sink_t),
            "ratio_per_round": ratios, "ratio_median": statistics.median(ratios)}


def bench_batch_sizes(es: ES | None, master: pathlib.Path, work: pathlib.Path, n: int, sizes: list[int],
                      prefix: str) -> dict[str, Any]:
    from sidecar.ship import SqliteStore
    from sidecar.ship.elasticsearch import ElasticsearchSink

    out: dict[str, Any] = {"sizes": sizes, "elasticsearch": {}, "sqlite": {}}
    for bs in sizes:
        if es is not None:
            copy_spool(master, work)
            p = f"{prefix}-bs{bs}"
            elapsed, stored = ship(work, ElasticsearchSink(es.url, index_prefix=p, batch_max_bytes=BATCH_BYTES), bs)
            out["elasticsearch"][str(bs)] = {"records_per_s": stored / elapsed, "stored": stored}
            es.cleanup(p)
        copy_spool(master, work)
        with tempfile.TemporaryDirectory(prefix="sidecar-sqlite-") as d:
            elapsed, stored = ship(work, SqliteStore(pathlib.Path(d) / "audit.db"), bs)
        out["sqlite"][str(bs)] = {"records_per_s": stored / elapsed, "stored": stored}
    return out


def _rss_kb(pid: int) -> int | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def bench_cli_drain(es_url: str | None, spool: pathlib.Path, prefix: str, n: int) -> dict[str, Any]:
    """``sidecar run --once`` as its own process over a long drain; RSS sampled every 0.25 s."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="sidecar-state-") as state:
        env.update({"SIDECAR_SPOOL_DIR": str(spool), "SIDECAR_STATE_DIR": state, "SIDECAR_INDEX_PREFIX": prefix})
        if es_url:
            env["SIDECAR_ELASTICSEARCH_URL"] = es_url
        else:
            env.pop("SIDECAR_ELASTICSEARCH_URL", None)
        cli = pathlib.Path(sys.executable).with_name("sidecar")
        cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "sidecar.cli"]
        started = time.perf_counter()
        proc = subprocess.Popen([*cmd, "run", "--once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        samples: list[tuple[float, int]] = []
        while proc.poll() is None:
            rss = _rss_kb(proc.pid)
            if rss is not None:
                samples.append((time.perf_counter() - started, rss))
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"sidecar run --once exited {proc.returncode}: {err.strip()[-500:]}")
    rss = [s[1] for s in samples if s[0] >= 1.0] or [s[1] for s in samples]  # past interpreter start-up
    half = rss[len(rss) // 2:] or rss
    return {"records": n, "seconds": elapsed, "records_per_s": n / elapsed, "sink": "elasticsearch" if es_url
            else "embedded", "rss_mb_samples": [(round(t, 2), round(r / 1024, 1)) for t, r in samples],
            "rss_mb_max": max(rss) / 1024 if rss else None,
            "rss_mb_median_second_half": statistics.median(half) / 1024 if half else None,
            "rss_mb_first": rss[0] / 1024 if rss else None, "summary": err.strip().splitlines()[-1:]}


def plot(data: dict[str, Any], out_dir: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bs = data["batch_sizes"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for sink, label in (("elasticsearch", "Elasticsearch (Shipper + ElasticsearchSink)"),
                        ("sqlite", "embedded SQLite (Shipper + SqliteStore)")):
        pts = bs.get(sink, {})
        if pts:
            xs = [int(k) for k in pts]
            ax.plot(xs, [pts[k]["records_per_s"] for k in pts], marker="o", label=label)
    raw = data.get("es_vs_raw", {}).get("raw_records_per_s")
    if raw:
        ax.axhline(raw, color="grey", linestyle="--", linewidth=1, label="plain _bulk loader (5 MB bodies)")
    ax.set_xscale("log")
    ax.set_xlabel("shipper batch size (records)")
    ax.set_ylabel("records/s")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"spool drain throughput vs batch size ({bs.get('records', '?')} records)")
    fig.tight_layout()
    path = out_dir / "shipper_batch_size.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path.name]


def markdown(data: dict[str, Any]) -> str:
    lines = ["### Shipper", ""]
    sp = data["spool"]
    lines.append(f"Spool: {sp['records']:,} records, {sp['avg_record_bytes']:.0f} B each on average "
                 f"({sp['segments']} segments).")
    lines.append("")
    enc = data["encode"]
    lines.append("| measurement | records/s | ratio | note |")
    lines.append("|---|---:|---:|---|")
    lines.append(f"| spool read + parse (SpoolReader) | {enc['read_parse_records_per_s']:,.0f} | | one core |")
    lines.append(f"| `_bulk` body encoding (ElasticsearchSink) | {enc['encode_records_per_s']:,.0f} | | "
                 "one core, no network; target well above 50k/s |")
    lines.append(f"| read + parse + encode | {enc['read_and_encode_records_per_s']:,.0f} | | |")
    ev = data.get("es_vs_raw")
    if ev and "error" not in ev:
        lines.append(f"| plain `_bulk` loader → Elasticsearch | {ev['raw_records_per_s']:,.0f} | 1.00 | baseline, "
                     f"median of {len(ev['raw_seconds'])} |")
        lines.append(f"| Shipper → Elasticsearch (`sidecar run --once` path) | {ev['sink_records_per_s']:,.0f} | "
                     f"{ev['ratio_median']:.2f} | per round: {', '.join(f'{r:.2f}' for r in ev['ratio_per_round'])}; "
                     "target ≥ 0.80 |")
    elif ev:
        lines.append(f"| Elasticsearch | – | – | {ev['error']} |")
    else:
        lines.append("| Elasticsearch | – | – | not run: no URL (`--es` or SIDECAR_TEST_ES_URL) |")
    for sink in ("sqlite", "elasticsearch"):
        pts = data["batch_sizes"].get(sink, {})
        if pts:
            best = max(pts.items(), key=lambda kv: kv[1]["records_per_s"])
            figures = ", ".join(f"{k}: {v['records_per_s']:,.0f}" for k, v in pts.items())
            lines.append(f"| Shipper → {sink} by batch size | {best[1]['records_per_s']:,.0f} | | best at "
                         f"{best[0]}; {figures} |")
    for key in ("cli_drain_es", "cli_drain_sqlite"):
        d = data.get(key)
        if d and "error" not in d:
            lines.append(f"| `sidecar run --once` process → {d['sink']} ({d['records']:,} records) | "
                         f"{d['records_per_s']:,.0f} | | RSS first {d['rss_mb_first']:.0f} MB, max "
                         f"{d['rss_mb_max']:.0f} MB, median of 2nd half {d['rss_mb_median_second_half']:.0f} MB |")
        elif d:
            lines.append(f"| `sidecar run --once` → {key} | – | | {d['error']} |")
    lines.append("")
    lines.extend(plot_lines(data))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, RESULTS / "shipper.json")
    parser.add_argument("--es", default=os.environ.get("SIDECAR_TEST_ES_URL"), help="Elasticsearch URL")
    parser.add_argument("--records", type=int, default=60000)
    parser.add_argument("--long-records", type=int, default=200000, help="records of the long CLI drain")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.long_records, args.rounds = 15000, 40000, 2
    started = time.time()

    data: dict[str, Any] = {"machine": machine_info(), "es_url_given": bool(args.es),
                            "command": "python bench/shipper.py " + " ".join(
                                a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("http"))}
    es = ES(args.es) if args.es else None
    if es is not None:
        status, info = es.req("GET", "/")
        data["elasticsearch_version"] = (info or {}).get("version", {}).get("number") if status == 200 else None
    prefix = "bench" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="sidecar-ship-bench-") as d:
        tmp = pathlib.Path(d)
        master, work = tmp / "master", tmp / "work"
        log(f"shipper: building a spool of {args.records} records")
        data["spool"] = build_spool(master, args.records)
        log("shipper: encode only")
        data["encode"] = bench_encode(master, 3)
        try:
            if es is not None:
                log("shipper: Elasticsearch vs plain _bulk")
                try:
                    data["es_vs_raw"] = raw_versus_sink(es, es.url, prefix, master, work, args.records, args.rounds)
                except Exception as exc:
                    data["es_vs_raw"] = {"error": f"{type(exc).__name__}: {exc}"}
            log("shipper: batch sizes")
            sizes = [100, 500, 2000, 5000] if not args.quick else [200, 2000]
            bs_n = min(args.records, 30000)
            bs_master = tmp / "bs-master"
            build_spool(bs_master, bs_n)
            data["batch_sizes"] = bench_batch_sizes(es, bs_master, work, bs_n, sizes, prefix)
            data["batch_sizes"]["records"] = bs_n
            shutil.rmtree(bs_master)
            log(f"shipper: long drain of {args.long_records} records through `sidecar run --once`")
            long_master = tmp / "long"
            build_spool(long_master, args.long_records)
            for key, url in (("cli_drain_es", args.es), ("cli_drain_sqlite", None)):
                if key == "cli_drain_es" and not url:
                    continue
                copy_spool(long_master, work)
                try:
                    data[key] = bench_cli_drain(url, work, f"{prefix}-cli", args.long_records)
                    if es is not None and url:
                        got = es.count(f"{prefix}-cli")
                        data[key]["count_in_es"] = got
                except Exception as exc:
                    data[key] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            if es is not None:
                for p in (prefix, f"{prefix}-cli"):
                    with contextlib.suppress(Exception):
                        es.cleanup(p)
                with contextlib.suppress(Exception):
                    es.cleanup(prefix + "-*")
    return save_results(data, args.out, started, markdown, plot)


if __name__ == "__main__":
    sys.exit(main())
