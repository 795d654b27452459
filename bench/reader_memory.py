"""Peak memory of the Elasticsearch readers over indices of growing size.

    python bench/reader_memory.py [--es URL] [--sizes 10000,40000]

Loads real records (``bench/shipper.py``'s ``build_spool``: 1 KB prompts, content on) into one prefix,
growing it to each size, and runs each reader in a fresh process, reporting its peak RSS (``VmHWM``):

* ``scan``: the point-in-time walk (:func:`sidecar.es.scan`, 1000 hits a page) with the content left out
  of ``_source`` (what ``advise`` and the ``sidecar run`` readers ask for), the documents counted;
* ``scan_full``: the same walk with the full ``_source`` (what ``audit verify`` needs, as the hash covers
  the whole document), the documents counted;
* ``advise``: ``sidecar advise`` itself (its rules keep a little state per record: ids of flagged calls).
Without ``--es`` it uses ``SIDECAR_TEST_ES_URL``. Writes bench/results/reader_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import uuid
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from shipper import ES, build_spool, raw_bulk, read_docs  # noqa: E402

# Peak RSS from /proc/self/status VmHWM: ru_maxrss would report the parent's peak (Linux carries it
# across fork and exec), and the parent holds the loaded documents.
_HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"

_PROBE = """
import sys
from sidecar.es import EsClient, scan
client = EsClient(sys.argv[1])
source = {"excludes": ["sidecar.request.content", "sidecar.response.content"]} if sys.argv[3] == "scan" else None
n = sum(1 for _ in scan(client, sys.argv[2] + "-2*", ["@timestamp", "event.id"], source=source))
print(n, HWM)
""".replace("HWM", _HWM)

_ADVISE = """
import sys
from sidecar.cli import main
rc = main(["advise", "--json", "--since", "3650d"])
print(rc, HWM, file=sys.stderr)
""".replace("HWM", _HWM)


def probe(url: str, prefix: str, kind: str, spool_dir: pathlib.Path) -> dict[str, Any]:
    if kind == "advise":
        env = dict(os.environ, SIDECAR_ELASTICSEARCH_URL=url, SIDECAR_INDEX_PREFIX=prefix,
                   SIDECAR_SPOOL_DIR=str(spool_dir), SIDECAR_HMAC_KEY="bench-" + "k" * 26)
        proc = subprocess.run([sys.executable, "-c", _ADVISE], env=env, capture_output=True, text=True, check=True)
        records = json.loads(proc.stdout)["records"]
        rss_kb = int(proc.stderr.strip().splitlines()[-1].split()[1])
    else:
        proc = subprocess.run([sys.executable, "-c", _PROBE, url, prefix, kind], capture_output=True, text=True,
                              check=True)
        records, rss_kb = (int(x) for x in proc.stdout.split())
    return {"records": records, "peak_rss_mb": round(rss_kb / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--es", default=os.environ.get("SIDECAR_TEST_ES_URL"))
    ap.add_argument("--sizes", default="10000,40000")
    args = ap.parse_args(argv)
    if not args.es:
        ap.error("give --es URL or set SIDECAR_TEST_ES_URL")
    from sidecar.ship.elasticsearch import ElasticsearchSink

    es = ES(args.es)
    prefix = f"benchr{uuid.uuid4().hex[:8]}"
    ElasticsearchSink(args.es, index_prefix=prefix).open()
    rows = []
    loaded = 0
    try:
        with tempfile.TemporaryDirectory(prefix="sidecar-bench-reader-") as d:
            work = pathlib.Path(d)
            for size in (int(s) for s in args.sizes.split(",")):
                spool = work / f"spool{size}"
                spool.mkdir()
                build_spool(spool, size - loaded)
                raw_bulk(es, prefix, read_docs(spool))
                loaded = size
                if es.count(prefix) != size:
                    raise RuntimeError("load incomplete")
                row: dict[str, Any] = {"index_records": size}
                for kind in ("scan", "scan_full", "advise"):
                    row[kind] = probe(args.es, prefix, kind, work / "advise-spool")
                    if row[kind]["records"] != size:
                        raise RuntimeError(f"{kind} saw {row[kind]['records']} of {size}")
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    finally:
        es.cleanup(prefix)
    RESULTS.mkdir(exist_ok=True)
    data = {"command": f"python bench/reader_memory.py --sizes {args.sizes}", "rows": rows}
    (RESULTS / "reader_memory.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
