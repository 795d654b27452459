"""Cost of the advice observer of `sidecar run` (``sidecar.daemon.advise.AdviceObserver``).

An hour of generated record views (the metadata the shipper already parsed), fed in batches of 2000:
the time per record on the shipping thread, the memory the per-window tallies hold (traced Python
allocations, ``--memory``: slower), how long the lock is held to copy the windows' indexes, and how long
a report takes on the publishing thread.

    python bench/advice.py [--records N] [--memory]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
import tracemalloc
from typing import Any

from sidecar.daemon.advise import AdviceObserver


def views(n: int, now: float, groups: int) -> list[dict[str, Any]]:
    rnd = random.Random(1)
    out = []
    for i in range(n):
        ts = dt.datetime.fromtimestamp(now - 3500 + i * 3500 / n, dt.timezone.utc)
        out.append({"event.id": f"r-{i}", "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "service.name": "svc", "gen_ai.provider.name": "openai",
                    "sidecar.retry.group": f"g{rnd.randrange(groups)}",
                    "http.response.status_code": rnd.choice([200, 200, 429]),
                    "sidecar.retry.delay": rnd.choice([None, 0.1, 2.0]),
                    "sidecar.connection.reused": rnd.random() < 0.7, "sidecar.client.timeout_set": True,
                    "sidecar.client.timeout": 30.0, "url.scheme": "https", "server.address": "api.openai.com",
                    "http.request.body.bytes": 2000, "gen_ai.request.stream": False, "event.duration": 10**9,
                    "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--memory", action="store_true")
    args = ap.parse_args()
    now = time.time()
    batch = views(args.records, now, max(1, args.records // 10))
    if args.memory:
        tracemalloc.start()
    obs = AdviceObserver(clock=lambda: now)
    t0 = time.perf_counter()
    for i in range(0, len(batch), 2000):
        obs.observe(batch[i:i + 2000])
    t1 = time.perf_counter()
    held = tracemalloc.get_traced_memory()[0] if args.memory else 0
    t2 = time.perf_counter()
    _ = [w.snapshot() for w in obs.windows.values()]
    t3 = time.perf_counter()
    report = obs.report()
    t4 = time.perf_counter()
    kept = sum(t.attempts for t in obs.windows.values())
    print(f"{args.records} records ({kept} retry-group attempts kept, {obs.dropped} beyond the bound): "
          f"observe {(t1 - t0) / args.records * 1e6:.1f} us/record; snapshot under the lock "
          f"{(t3 - t2) * 1e3:.1f} ms; report {(t4 - t3) * 1e3:.0f} ms ({len(report.findings)} findings)"
          + (f"; tallies hold {held / 1e6:.1f} MB" if args.memory else ""))


if __name__ == "__main__":
    main()
