"""Helpers for tests: read a spool, look at metrics."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import sidecar
from sidecar.record import AuditRecord

HMAC_KEY = "test-key-" + "0" * 32
_BENCH_CORPUS = pathlib.Path(__file__).resolve().parents[2] / "bench" / "redact" / "corpus.py"


def bench_corpus() -> ModuleType:
    """The redaction bench's labelled corpus generator (bench/redact/corpus.py), loaded once."""
    name = "sidecar_bench_redact_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _BENCH_CORPUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_spool(spool: pathlib.Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(spool.glob("*.jsonl")) + sorted(spool.glob("*.open")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                docs.append(json.loads(line))
    return docs


@dataclass
class Instrumented:
    spool: pathlib.Path
    registry: CollectorRegistry
    spans: InMemorySpanExporter

    def records(self) -> list[dict[str, Any]]:
        """The spooled documents; each must be a valid AuditRecord (the schema is the source of truth)."""
        assert sidecar.flush(10), "spool writer did not flush in time"
        docs = read_spool(self.spool)
        for doc in docs:
            AuditRecord.model_validate(doc)
        return docs

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
