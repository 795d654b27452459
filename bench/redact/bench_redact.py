"""Redaction throughput: our engine vs Presidio (pattern-only) on the same corpus, in one run.

    python bench/redact/bench_redact.py [--clean-mb 1.0] [--repeat 5]

Writes bench/results/redact_bench.json and prints a Markdown table.  MB/s counts UTF-8 bytes of
input (Chinese characters are 3 bytes each) per second of CPU time of the measuring thread (the
machine may be shared).  Our figures are the median of ``--repeat`` passes after a warm-up pass;
Presidio's the median of ``--presidio-repeat`` passes (it is slow).  "pure regex" is our engine
without the one-pass prefilter (the fallback when neither the RE2 nor the Hyperscan wheel is
there): the same findings.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from _presidio import SHARED, presidio_engines  # noqa: E402
from corpus import SEED, clean_samples, dirty_json_bodies, dirty_samples, long_clean_text  # noqa: E402

from sidecar.redact import Redactor  # noqa: E402


def _mbps(fn: Callable[[str], Any], texts: list[str], repeat: int, *, warm: bool = True) -> float:
    """MB/s of ``fn`` over ``texts`` in CPU time of this thread (the machine is shared: wall time
    counts other processes' work), median of ``repeat`` passes after one untimed warm-up pass
    (one-time costs such as the lazily built tables of the normalised views)."""
    size = sum(len(t.encode("utf-8")) for t in texts)
    if warm:
        for text in texts:
            fn(text)
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        for text in texts:
            fn(text)
        times.append(time.thread_time() - start)
    return size / statistics.median(times) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-mb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--presidio-repeat", type=int, default=1)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "redact_bench.json")
    args = parser.parse_args()

    long_text = long_clean_text(int(args.clean_mb * 1_000_000))
    clean = [long_text[i : i + 4000] for i in range(0, len(long_text), 4000)] + clean_samples(1000)
    samples = dirty_samples(2000)
    dirty = [s.text for s in samples] + dirty_json_bodies(samples[:600])
    corpora = {"clean": clean, "dirty": dirty}
    sizes = {name: sum(len(t.encode("utf-8")) for t in texts) for name, texts in corpora.items()}

    key = b"bench-key-0123456789abcdef0123456789"
    ours = Redactor(key)
    ours_ip = Redactor(key, detect_ip=True)
    fallback = Redactor(key)
    fallback._scanner.prefilter = None  # the pure-regex path (neither wheel): same findings, slower
    analyzer, anonymizer, presidio_version = presidio_engines()
    entities = list(SHARED)

    def presidio(text: str) -> str:
        results = analyzer.analyze(text=text, language="en", entities=entities)
        return str(anonymizer.anonymize(text=text, analyzer_results=results).text)

    rows: dict[str, dict[str, float]] = {}
    for name, texts in corpora.items():
        rows[name] = {
            "ours_default_mbps": _mbps(ours.redact_text, texts, args.repeat),
            "ours_detect_ip_mbps": _mbps(ours_ip.redact_text, texts, args.repeat),
            "ours_regex_only_mbps": _mbps(fallback.redact_text, texts, args.repeat),
            "presidio_mbps": _mbps(presidio, texts, args.presidio_repeat, warm=False),
        }
        rows[name]["ratio_vs_presidio"] = rows[name]["ours_detect_ip_mbps"] / rows[name]["presidio_mbps"]
    # one large string as well (a long document in one call)
    rows["clean_one_string"] = {"ours_default_mbps": _mbps(ours.redact_text, [long_text], args.repeat)}

    result = {
        "command": "python bench/redact/bench_redact.py " + " ".join(sys.argv[1:]),
        "seed": SEED,
        "bytes": sizes,
        "texts": {name: len(texts) for name, texts in corpora.items()},
        "results": rows,
        "versions": {
            "python": platform.python_version(),
            "regex": version("regex"),
            "presidio-analyzer": presidio_version,
            "faker": version("faker"),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "timing": "CPU time of the measuring thread (time.thread_time), ours after one warm-up pass",
        "prefilter": ours._scanner.prefilter.engine if ours._scanner.prefilter is not None else "none (pure regex)",
        "notes": "Presidio: NoOpNlpEngine (no spaCy model), predefined recognizers, entities limited to the "
        "shared types; analyze + anonymize per text. Ours: redact_text per text; ratio uses detect_ip=True.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print("| corpus | size | ours (default) MB/s | ours (+IP) MB/s | ours, pure regex MB/s | Presidio MB/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in corpora:
        r = rows[name]
        print(f"| {name} | {sizes[name] / 1e6:.2f} MB / {len(corpora[name])} texts | {r['ours_default_mbps']:.1f} | "
              f"{r['ours_detect_ip_mbps']:.1f} | {r['ours_regex_only_mbps']:.1f} | {r['presidio_mbps']:.2f} | "
              f"{r['ratio_vs_presidio']:.0f}x |")
    print(f"| clean, one {len(long_text.encode()) / 1e6:.2f} MB string | | "
          f"{rows['clean_one_string']['ours_default_mbps']:.1f} | | | | |")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
