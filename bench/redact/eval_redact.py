"""Precision / recall per type on the generated labelled corpus, ours vs Presidio (pattern-only).

    python bench/redact/eval_redact.py [--samples 2000]

A planted value counts as found when one detection of the same type covers all of it; a
detection is correct when it overlaps a planted value of its type.  Detections on the clean
corpus (prose dense in order numbers, timestamps, versions, UUIDs, hashes) count against
precision.  "leak-free" is the share of planted values absent from the anonymized output
(whatever type masked them).  Writes bench/results/redact_eval.json, prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections import Counter
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from _presidio import SHARED, presidio_engines  # noqa: E402
from corpus import ALL_TYPES, KEY_TYPES, SEED, clean_samples, dirty_samples  # noqa: E402

from sidecar.redact import Redactor  # noqa: E402

Span = tuple[int, int, str]


def _score(samples: list[Any], clean: list[str], detect: Any, anonymize: Any, types: tuple[str, ...]) -> dict[str, Any]:
    planted, found, leak_free = Counter[str](), Counter[str](), Counter[str]()
    detections, correct = Counter[str](), Counter[str]()
    for sample in samples:
        spans: list[Span] = detect(sample.text)
        out = anonymize(sample.text, spans)
        for p in sample.planted:
            planted[p.type] += 1
            if any(s <= p.start and e >= p.end and t == p.type for s, e, t in spans):
                found[p.type] += 1
            if p.value not in out:
                leak_free[p.type] += 1
        for s, e, t in spans:
            detections[t] += 1
            if any(s < p.end and e > p.start and p.type == t for p in sample.planted):
                correct[t] += 1
    for text in clean:
        for _, _, t in detect(text):
            detections[t] += 1
    table = {}
    for t in types:
        table[t] = {
            "planted": planted[t],
            "recall": found[t] / planted[t] if planted[t] else None,
            "precision": correct[t] / detections[t] if detections[t] else None,
            "leak_free": leak_free[t] / planted[t] if planted[t] else None,
            "detections": detections[t],
        }
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "redact_eval.json")
    args = parser.parse_args()

    samples = dirty_samples(args.samples, strict_phones=True)
    clean = clean_samples(args.samples)
    ours = Redactor(b"eval-key-0123456789abcdef0123456789", detect_ip=True)

    def ours_detect(text: str) -> list[Span]:
        return [(f.start, f.end, f.type) for f in ours.scan(text)]

    def ours_anonymize(text: str, _spans: list[Span]) -> str:
        return ours.redact_text(text)[0]

    analyzer, anonymizer, presidio_version = presidio_engines()
    cache: dict[str, Any] = {}

    def presidio_results(text: str) -> Any:
        if text not in cache:
            cache.clear()
            cache[text] = analyzer.analyze(text=text, language="en", entities=list(SHARED))
        return cache[text]

    def presidio_detect(text: str) -> list[Span]:
        return [(r.start, r.end, SHARED[r.entity_type]) for r in presidio_results(text)]

    def presidio_anonymize(text: str, _spans: list[Span]) -> str:
        return str(anonymizer.anonymize(text=text, analyzer_results=presidio_results(text)).text)

    ours_table = _score(samples, clean, ours_detect, ours_anonymize, ALL_TYPES)
    presidio_table = _score(samples, clean, presidio_detect, presidio_anonymize, ALL_TYPES)

    result = {
        "command": "python bench/redact/eval_redact.py " + " ".join(sys.argv[1:]),
        "seed": SEED,
        "samples": args.samples,
        "clean_samples": len(clean),
        "presidio_version": presidio_version,
        "shared_types": sorted(SHARED.values()),
        "ours": ours_table,
        "presidio": presidio_table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    print("| type | planted | ours P | ours R | ours leak-free | Presidio P | Presidio R | Presidio leak-free |")
    print("|---|---|---|---|---|---|---|---|")
    for t in ALL_TYPES:
        o, p = ours_table[t], presidio_table[t]
        shared = t in SHARED.values()
        pp = pct(p["precision"]) if shared else "no rule"
        pr = pct(p["recall"]) if shared else "no rule"
        kind = " (key)" if t in KEY_TYPES else ""
        print(f"| {t}{kind} | {o['planted']} | {pct(o['precision'])} | {pct(o['recall'])} | {pct(o['leak_free'])} | "
              f"{pp} | {pr} | {pct(p['leak_free'])} |")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
