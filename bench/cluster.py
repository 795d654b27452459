"""Shipping into a 3-node Elasticsearch cluster: the shipper against a raw ``_bulk`` loader, and four
sidecars in parallel against one.

    python bench/cluster.py [--urls URL1,URL2,URL3] [--records 20000] [--rounds 2]

Without ``--urls`` (or ``SIDECAR_TEST_ES_CLUSTER_URLS``) the cluster is started with
``scripts/elasticsearch.sh up --nodes 3`` and stopped at the end.

1. shipper vs raw: the same spool (real records built by ``bench/shipper.py``'s ``build_spool``) shipped
   by the ``sidecar run --once`` code path (``Shipper(SpoolReader, ElasticsearchSink)`` given the three
   URLs) and by a plain loader (``create`` lines for documents already parsed in memory, 5 MB POSTs to
   one node, ``errors`` checked) into indices with the same template (1 shard, auto_expand_replicas 0-1,
   so every document is written twice); interleaved rounds, fresh prefixes, medians;
2. parallel: ``sidecar run --once`` processes, one alone, then four at once, each on its own spool of
   ``--records`` records (distinct ids) into one prefix; wall time from the first start to the last exit
   (process start-up included); aggregate records/s.
Every count is checked against the cluster. Writes bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from overhead import machine_info  # noqa: E402
from shipper import ES, build_spool, raw_versus_sink  # noqa: E402

SCRIPT = ROOT / "scripts" / "elasticsearch.sh"
SIDECAR = pathlib.Path(sys.executable).parent / "sidecar"


def shipper_vs_raw(urls: list[str], master: pathlib.Path, work: pathlib.Path, n: int, rounds: int) -> dict[str, Any]:
    """The plain loader posts to the first node; the shipper is given all three."""
    return raw_versus_sink(ES(urls[0]), ",".join(urls), f"benchc{uuid.uuid4().hex[:8]}", master, work, n, rounds)


def run_sidecars(urls: list[str], spools: list[pathlib.Path], prefix: str) -> float:
    """``sidecar run --once`` on each spool at the same time; wall seconds until the last one exits."""
    procs = []
    started = time.perf_counter()
    for spool in spools:
        env = dict(os.environ, SIDECAR_SPOOL_DIR=str(spool), SIDECAR_ELASTICSEARCH_URL=",".join(urls),
                   SIDECAR_INDEX_PREFIX=prefix, SIDECAR_HMAC_KEY="bench-" + "k" * 26, SIDECAR_BATCH_SIZE="2000",
                   SIDECAR_LISTEN="127.0.0.1:0")
        procs.append(subprocess.Popen([str(SIDECAR), "run", "--once"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"sidecar run --once failed: {err.decode()[-2000:]}")
    return time.perf_counter() - started


def parallel(urls: list[str], work: pathlib.Path, n: int) -> dict[str, Any]:
    es = ES(urls[0])
    spools = []
    for i in range(5):
        spool = work / f"spool{i}"
        spool.mkdir(parents=True)
        build_spool(spool, n)  # a fresh producer id each: no two spools share a record id
        spools.append(spool)
    out: dict[str, Any] = {"records_per_sidecar": n}
    for label, group in (("one", spools[:1]), ("four", spools[1:])):
        prefix = f"benchp{uuid.uuid4().hex[:8]}"
        seconds = run_sidecars(urls, group, prefix)
        got = es.count(prefix)
        if got != n * len(group):
            raise RuntimeError(f"{label}: {got} documents in the cluster, expected {n * len(group)}")
        es.cleanup(prefix)
        out[label] = {"sidecars": len(group), "seconds": seconds, "records_per_s": n * len(group) / seconds}
    out["aggregate_ratio_four_vs_one"] = out["four"]["records_per_s"] / out["one"]["records_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--urls", default=os.environ.get("SIDECAR_TEST_ES_CLUSTER_URLS"))
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    started_here = not args.urls
    if started_here:
        proc = subprocess.run(["bash", str(SCRIPT), "up", "--nodes", "3"], capture_output=True, text=True,
                              check=True)
        args.urls = proc.stdout.strip().splitlines()[-1]
    urls = [u.strip() for u in args.urls.split(",") if u.strip()]
    try:
        with tempfile.TemporaryDirectory(prefix="sidecar-bench-cluster-") as d:
            work = pathlib.Path(d)
            master = work / "master"
            master.mkdir()
            spool_info = build_spool(master, args.records)
            print(f"spool: {spool_info}", file=sys.stderr)
            vs_raw = shipper_vs_raw(urls, master, work / "work", args.records, args.rounds)
            print(f"shipper vs raw: {vs_raw['sink_records_per_s']:,.0f} vs {vs_raw['raw_records_per_s']:,.0f} "
                  f"records/s (ratio {vs_raw['ratio_median']:.2f})", file=sys.stderr)
            par = parallel(urls, work / "par", args.records)
            print(f"parallel: one {par['one']['records_per_s']:,.0f} records/s, four "
                  f"{par['four']['records_per_s']:,.0f} records/s (x{par['aggregate_ratio_four_vs_one']:.2f})",
                  file=sys.stderr)
    finally:
        if started_here:
            subprocess.run(["bash", str(SCRIPT), "down", "--nodes", "3"], capture_output=True, check=False)
    data = {"machine": machine_info(), "nodes": len(urls), "spool": spool_info,
            "shipper_vs_raw": vs_raw, "parallel": par,
            "command": f"python bench/cluster.py --records {args.records} --rounds {args.rounds}"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({"shipper_vs_raw": vs_raw, "parallel": par}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
