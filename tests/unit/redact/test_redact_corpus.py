"""The generated labelled corpus (bench/redact/corpus.py): zero leaks, few false positives."""

from __future__ import annotations

import json

import pytest
from sidecar_testing import bench_corpus

from sidecar.redact import Redactor

pytest.importorskip("faker")
pytest.importorskip("stdnum")

corpus = bench_corpus()
R = Redactor(b"corpus-test-key-0123456789abcdef", detect_ip=True)
SAMPLES = corpus.dirty_samples(2000)


def test_corpus_is_deterministic() -> None:
    again = corpus.dirty_samples(50)
    assert [s.text for s in again] == [s.text for s in SAMPLES[:50]]


def test_every_type_is_planted() -> None:
    planted = {p.type for s in SAMPLES for p in s.planted}
    assert planted == set(corpus.ALL_TYPES)


def test_zero_leaks_in_text() -> None:
    leaks = []
    for sample in SAMPLES:
        out, summary = R.redact_text(sample.text)
        for planted in sample.planted:
            if planted.value in out:
                leaks.append((planted.type, sample.lang))
        assert sum(summary.values()) >= 1
    assert leaks == []


def test_every_planted_value_detected_with_its_type() -> None:
    wrong = []
    for sample in SAMPLES:
        findings = R.scan(sample.text)
        for p in sample.planted:
            if not any(f.start <= p.start and f.end >= p.end and f.type == p.type for f in findings):
                wrong.append(p.type)
    assert wrong == []


def test_zero_leaks_in_json_bodies() -> None:
    for sample, body in zip(SAMPLES[:500], corpus.dirty_json_bodies(SAMPLES[:500]), strict=True):
        out, _ = R.redact_json(json.loads(body))
        dumped = json.dumps(out, ensure_ascii=False)
        for planted in sample.planted:
            assert planted.value not in dumped, planted.type
        text_out, _ = R.redact_text(body)  # the raw wire text, escapes and all
        for planted in sample.planted:
            assert json.dumps(planted.value, ensure_ascii=False)[1:-1] not in text_out, planted.type


def test_false_positive_rate_on_clean_text() -> None:
    default = Redactor(b"corpus-test-key-0123456789abcdef")
    clean = corpus.clean_samples(2000)
    flagged = [text for text in clean if default.scan(text)]
    # clean prose dense in order numbers, timestamps, versions, UUIDs, hashes, snowflake ids:
    # at most 0.5% of texts may carry a false detection
    assert len(flagged) <= len(clean) * 0.005, flagged[:5]
    long_text = corpus.long_clean_text(200_000)
    assert len(default.scan(long_text)) <= 2
