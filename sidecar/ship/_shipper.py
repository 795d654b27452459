"""The sidecar's loop: spool -> batch -> sink -> checkpoint."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sidecar.audit import DigestBuilder, IntegrityKey, head_of
from sidecar.ship._sink import DigestStore, Sink, SinkStopped
from sidecar.ship.metrics import ShipperMetrics, record_view
from sidecar.spool import SpoolDoc

if TYPE_CHECKING:
    from sidecar.spool import SpoolReader

log = logging.getLogger("sidecar.ship")


@dataclass
class ShipStats:
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    segments_done: int = 0
    digests: int = 0
    last_success: float = 0.0


Observer = Callable[[list[dict[str, Any]]], None]
HeadSink = Callable[[dict[str, Any]], None]


class Shipper:
    """``observers`` see every delivered batch's records (without content: anomaly detection, advice).
    With ``digest_key``, every fully shipped segment gets a signed digest in this sidecar's chain, stored
    in ``digest_store``."""

    def __init__(self, reader: SpoolReader, sink: Sink, *, batch_size: int = 2000,
                 metrics: ShipperMetrics | None = None, observers: Sequence[Observer] = (),
                 digest_key: IntegrityKey | None = None, digest_store: DigestStore | None = None,
                 on_head: HeadSink | None = None) -> None:
        if (digest_key is None) != (digest_store is None):
            raise ValueError("signed digests need both a digest_key and a digest_store")
        self.reader = reader
        self.digest_store = digest_store
        cp = reader.checkpoint
        self.digests = (DigestBuilder(digest_key, cp.digest_partial, cp.chain, cp.reset_reason)
                        if digest_key is not None else None)
        self.on_head = on_head  # told of every new chain head (the anchor export)
        self.sink = sink
        self.batch_size = batch_size
        self.metrics = metrics
        self.observers = list(observers)
        self.stats = ShipStats()
        self.last_turn = time.monotonic()  # liveness: /healthz/live checks the loop keeps turning
        self.sink_healthy = False
        self.busy = False  # inside a sink write (which may retry for long): alive, not stuck

    def ship_available(self, stop: threading.Event) -> int:
        """Ship everything complete in the spool now. Returns how many lines were handled."""
        handled = 0
        while not stop.is_set():
            batch = self.reader.next_batch(self.batch_size)
            if batch is None:
                break
            for raw, reason in batch.malformed:
                log.warning("spool %s: %s line kept as a dead letter (%d bytes)", batch.segment, reason, len(raw))
                self.sink.dead_letter(raw, reason)
            self.stats.dead_lettered += len(batch.malformed)
            stored = duplicates = dead = 0
            started = time.perf_counter()
            if batch.docs:
                self.busy = True
                try:
                    result = self.sink.write(batch.docs, stop)
                except SinkStopped:
                    break
                finally:
                    self.busy = False
                stored, duplicates, dead = result.stored, result.duplicates, result.dead_lettered
                self.stats.stored += stored
                self.stats.duplicates += duplicates
                self.stats.dead_lettered += dead
                if self.metrics is not None:
                    self.metrics.retries.labels(self.metrics.sink).inc(result.retries)
            if self.digests is not None:
                self.digests.add(batch.segment, batch.start, batch.end, [(d.doc_id, d.raw) for d in batch.docs])
                if batch.finished and batch.segment in self.digests.partial:
                    self._digest(batch.segment)
            self.reader.commit(batch)
            if self.metrics is not None or self.observers:
                self._observe(batch.docs, stored, duplicates, dead + len(batch.malformed),
                              time.perf_counter() - started)
            self.stats.batches += 1
            self.stats.last_success = time.time()
            if batch.finished:
                self.stats.segments_done += 1
            handled += len(batch.docs) + len(batch.malformed)
        return handled

    def _digest(self, segment: str) -> None:
        """Store the segment's signed digest, preceded by a start or reset marker when the chain needs one."""
        assert self.digests is not None and self.digest_store is not None
        store = self.digest_store
        if self.digests.needs_marker():
            reset = self.digests.reset_reason is not None and bool(self.digests.chain.get("id"))
            found = store.latest_digest(str(self.digests.chain["id"])) if reset else None
            marker = self.digests.marker(found)
            store.write_digest(marker)
            self.digests.done(marker)
            self.reader.checkpoint.reset_reason = None
            self.reader.checkpoint.save()  # the chain id is on disk before any digest depends on it
            if reset:
                log.warning("digest chain %s: %s; signed reset marker %s written (%s)", marker["sidecar.chain.id"],
                            marker.get("sidecar.digest.reason"), marker["sidecar.digest.id"],
                            "continuing from the newest digest in the store" if found else
                            "no earlier digest of this chain found in the store")
        digest = self.digests.finish(segment)
        if digest is None:
            return
        store.write_digest(digest)
        self.digests.done(digest)
        self.stats.digests += 1
        if self.on_head is not None:
            try:
                self.on_head(head_of(digest))
            except Exception:  # exporting the anchor must not stop delivery
                log.exception("could not export the audit head")

    def _observe(self, docs: list[SpoolDoc], stored: int, duplicates: int, dead: int, seconds: float) -> None:
        """Metrics and observers from the delivered records, each parsed once (without its content)."""
        views = [v for v in (record_view(d.raw) for d in docs) if v is not None]
        if self.metrics is not None:
            self.metrics.delivered(docs, views, stored, duplicates, dead, seconds)
        for observe in self.observers:
            try:
                observe(views)
            except Exception:  # an observer's bug must not stop delivery
                log.exception("observer failed")

    def update_gauges(self) -> None:
        self.sink_healthy = self.sink.healthy()
        if self.metrics is not None:
            self.metrics.spool_state(*self.reader.pending())
            self.metrics.up.labels(self.metrics.sink).set(1 if self.sink_healthy else 0)

    def run(self, stop: threading.Event, poll_seconds: float,
            every: Sequence[tuple[float, Callable[[], None]]] = ()) -> None:
        """Ship until ``stop``; ``every`` holds (seconds, task) pairs run periodically (e.g. retention)."""
        last_run = [0.0] * len(every)
        while not stop.is_set():
            self.last_turn = time.monotonic()
            try:
                handled = self.ship_available(stop)
            except Exception:  # keep turning; the error is logged and retried
                log.exception("shipping failed; retrying")
                if self.metrics is not None:
                    self.metrics.errors.labels(self.metrics.sink).inc()
                handled = 0
            try:
                self.update_gauges()
            except Exception:
                log.exception("could not read the spool state")
            now = time.monotonic()
            for n, (period, task) in enumerate(every):
                if now - last_run[n] >= period:
                    last_run[n] = now
                    try:
                        task()
                    except Exception:
                        log.exception("periodic task failed")
            if not handled:
                stop.wait(poll_seconds)
