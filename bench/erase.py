"""How fast `sidecar erase` removes one subject's records, and verify after it.

    python bench/erase.py [--records 10000] [--others 10000] [--elasticsearch URL]

``--records`` records of one user (each with 400 characters of content) and ``--others`` of other
users go through the real spool writer and shipper into the embedded store (or a real Elasticsearch
with a throw-away index prefix, deleted after); then `sidecar erase --user` runs through the CLI
(match, signed event, replace, purge: SQLite WAL truncation and VACUUM, or Elasticsearch's
forcemerge until no deleted document is left) and `sidecar audit verify` checks the result.
Prints the seconds of each step as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import pathlib
import secrets
import tempfile
import threading
import time

import urllib3
from prometheus_client import CollectorRegistry

from sidecar import cli
from sidecar.audit import IntegrityKey
from sidecar.record import AuditRecord
from sidecar.redact import derive
from sidecar.ship import Shipper, SqliteStore
from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.spool import SpoolConfig, SpoolReader, SpoolWriter
from sidecar.telemetry import Metrics

SECRET = "bench-erase-secret-0123456789"
KEY = IntegrityKey(derive(SECRET.encode(), "integrity"))


def _cli(*args: str) -> tuple[int, float, str]:
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(list(args))
    return rc, time.perf_counter() - t0, err.getvalue().strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--others", type=int, default=10_000)
    ap.add_argument("--elasticsearch", metavar="URL")
    a = ap.parse_args()
    n, total = a.records, a.records + a.others
    start = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(hours=3)
    with tempfile.TemporaryDirectory() as tmp:
        spool = pathlib.Path(tmp) / "spool"

        def process(i: int, seq: int) -> bytes:
            ts = (start + dt.timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return AuditRecord(event_id=f"bench-{seq}", timestamp=ts, producer_id="bench", sequence=seq,
                               provider="openai", request_model="gpt-4o-mini", status_code=200, input_tokens=i % 500,
                               user_id="subject" if i % 2 == 0 and i < 2 * n else f"other-{i % 97}",
                               request_content=f"{i} " + "x" * 400).to_json().encode()

        writer = SpoolWriter(SpoolConfig(spool, fsync="never", queue_size=total + 1, chain_key=KEY), "bench", process,
                             Metrics(CollectorRegistry()))
        for i in range(total):
            writer.submit(i)
        writer.flush(600)
        writer.close()
        os.environ.update(SIDECAR_SPOOL_DIR=str(spool), SIDECAR_HMAC_KEY=SECRET)
        prefix = f"bench-erase-{secrets.token_hex(4)}"
        if a.elasticsearch:
            os.environ.update(SIDECAR_ELASTICSEARCH_URL=a.elasticsearch, SIDECAR_INDEX_PREFIX=prefix)
            sink: object = ElasticsearchSink(a.elasticsearch, index_prefix=prefix)
        else:
            os.environ["SIDECAR_STORE_PATH"] = str(pathlib.Path(tmp) / "audit.db")
            sink = SqliteStore(pathlib.Path(tmp) / "audit.db")
        try:
            sink.open()  # type: ignore[attr-defined]
            Shipper(SpoolReader(spool, pathlib.Path(tmp) / "state"), sink, digest_key=KEY,
                    digest_store=sink).ship_available(
                threading.Event())
            rc, erase_s, line = _cli("erase", "--user", "subject", "--reason", "bench", "--operator", "bench")
            assert rc == 0, line
            vrc, verify_s, vline = _cli("audit", "verify")
            assert vrc == 0, vline
        finally:
            if a.elasticsearch:
                urllib3.PoolManager().request("DELETE", f"{a.elasticsearch}/{prefix}-*")
        print(json.dumps({"store": "elasticsearch" if a.elasticsearch else "embedded", "erased": n,
                          "store_records": total, "erase_s": round(erase_s, 2),
                          "erase_records_per_s": round(n / erase_s), "verify_s": round(verify_s, 2),
                          "erase_line": line}))


if __name__ == "__main__":
    main()
