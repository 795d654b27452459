"""The sidecar's /metrics: call families derived from shipped records, and the pipeline's health."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from sidecar.spool.document import SpoolDoc
from sidecar.telemetry import CallMetrics

_CONTENT = b',"sidecar.request.content":'
_RESPONSE = b',"sidecar.response.content":'


def record_view(raw: bytes) -> dict[str, Any] | None:
    """A record's fields without its (possibly large) content, parsed cheaply.

    Content fields are last in every record, so the document is cut before them."""
    cut = raw.find(_CONTENT)
    if cut < 0:
        cut = raw.find(_RESPONSE)
    try:
        doc = json.loads(raw[:cut] + b"}" if cut > 0 else raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class ShipperMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, sink: str, max_models: int = 50) -> None:
        reg = registry if registry is not None else REGISTRY
        self.registry = reg
        self.sink = sink
        self.calls = CallMetrics(reg, max_models=max_models)
        self.shipped = Counter("sidecar_shipped_records", "Records delivered to the sink (new or already there).",
                               ("sink",), registry=reg)
        self.duplicates = Counter("sidecar_duplicate_records", "Records the sink already had (a retry after a "
                                  "crash or timeout); counted as delivered.", ("sink",), registry=reg)
        self.dead_lettered = Counter("sidecar_deadlettered_records", "Records or spool lines kept as dead letters.",
                                     ("sink",), registry=reg)
        self.retries = Counter("sidecar_sink_retries", "Retried sink requests (429, 5xx, connection errors).",
                               ("sink",), registry=reg)
        self.errors = Counter("sidecar_ship_errors", "Shipping passes that failed and will be retried.",
                              ("sink",), registry=reg)
        self.batch_seconds = Histogram("sidecar_batch_duration", "Time to store one batch in the sink.",
                                       ("sink",), unit="seconds", registry=reg,
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.up = Gauge("sidecar_sink_up", "1 when the sink answered its last health check.", ("sink",),
                        registry=reg)
        self.pending_bytes = Gauge("sidecar_spool_pending_bytes", "Spooled bytes not yet delivered.", registry=reg)
        self.pending_records = Gauge("sidecar_spool_pending_records", "Records not yet delivered (estimated from "
                                     "pending bytes and the mean record size).", registry=reg)
        self.lag_seconds = Gauge("sidecar_spool_lag_seconds", "Age of the oldest segment with undelivered records.",
                                 registry=reg)
        self.segments = Gauge("sidecar_spool_segments", "Segment files in the spool.", registry=reg)
        self.last_success = Gauge("sidecar_last_delivery_timestamp_seconds", "When a batch was last delivered.",
                                  registry=reg)
        for family in (self.shipped, self.duplicates, self.dead_lettered, self.retries, self.errors):
            family.labels(sink)
        self._bytes = 0
        self._records = 0

    def delivered(self, docs: list[SpoolDoc], views: list[dict[str, Any]], stored: int, duplicates: int,
                  dead: int, seconds: float) -> None:
        s = self.sink
        self.shipped.labels(s).inc(stored)
        self.duplicates.labels(s).inc(duplicates)
        self.dead_lettered.labels(s).inc(dead)
        self.batch_seconds.labels(s).observe(seconds)
        self.last_success.set(time.time())
        self._bytes += sum(len(d.raw) + 1 for d in docs)
        self._records += len(docs)
        for view in views:
            self.calls.observe_call(view)

    def spool_state(self, pending_bytes: int, oldest_pending_created: float | None, segments: int) -> None:
        self.pending_bytes.set(pending_bytes)
        mean = self._bytes / self._records if self._records else 1024.0
        self.pending_records.set(round(pending_bytes / mean))
        self.lag_seconds.set(max(time.time() - oldest_pending_created, 0.0) if oldest_pending_created else 0.0)
        self.segments.set(segments)
