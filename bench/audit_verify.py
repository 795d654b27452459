"""How fast `sidecar audit verify` walks a large embedded store.

    python bench/audit_verify.py [--records 200000]

Records go through the real spool writer (chained), the real shipper (digests) into a
SQLite store; then verify runs over all of them. Prints records/s for each stage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import tempfile
import threading
import time

from prometheus_client import CollectorRegistry

from sidecar.audit import IntegrityKey, KeyRing, verify
from sidecar.record import AuditRecord
from sidecar.ship import Shipper, SqliteStore
from sidecar.spool import SpoolConfig, SpoolReader, SpoolWriter
from sidecar.telemetry import Metrics

KEY = IntegrityKey(b"bench-key")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    n = ap.parse_args().records
    day = dt.datetime.now(tz=dt.timezone.utc).date()
    with tempfile.TemporaryDirectory() as tmp:
        spool = pathlib.Path(tmp) / "spool"

        def process(i: int, seq: int) -> bytes:
            return AuditRecord(event_id=f"{writer.producer_id}-{seq}", timestamp=f"{day}T10:00:00.000000Z",
                               producer_id=writer.producer_id, sequence=seq, provider="openai",
                               request_model="gpt-4o-mini", status_code=200, input_tokens=i % 500,
                               request_content="x" * 400).to_json().encode()

        writer = SpoolWriter(SpoolConfig(spool, fsync="never", queue_size=n + 1, chain_key=KEY), "bench", process,
                             Metrics(CollectorRegistry()))
        t0 = time.perf_counter()
        for i in range(n):
            writer.submit(i)
        writer.flush(600)
        writer.close()
        t1 = time.perf_counter()
        store = SqliteStore(pathlib.Path(tmp) / "audit.db")
        store.open()
        Shipper(SpoolReader(spool, pathlib.Path(tmp) / "state"), store, digest_key=KEY,
                    digest_store=store).ship_available(
            threading.Event())
        t2 = time.perf_counter()
        report = verify(store.stored_records(), store.digests(), KeyRing([KEY]), retention_days=90)
        t3 = time.perf_counter()
        assert report.ok and report.records == n, report.findings[:3]
        print(json.dumps({
            "records": n, "digests": report.digests,
            "write_chain_records_per_s": round(n / (t1 - t0)),
            "ship_with_digests_records_per_s": round(n / (t2 - t1)),
            "verify_records_per_s": round(n / (t3 - t2)),
        }))


if __name__ == "__main__":
    main()
