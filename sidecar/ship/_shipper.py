"""The sidecar's loop: spool -> batch -> sink -> checkpoint."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sidecar.ship._sink import Sink, SinkStopped

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
    last_success: float = 0.0


class Shipper:
    def __init__(self, reader: SpoolReader, sink: Sink, *, batch_size: int = 2000) -> None:
        self.reader = reader
        self.sink = sink
        self.batch_size = batch_size
        self.stats = ShipStats()

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
            if batch.docs:
                try:
                    result = self.sink.write(batch.docs, stop)
                except SinkStopped:
                    break
                self.stats.stored += result.stored
                self.stats.duplicates += result.duplicates
                self.stats.dead_lettered += result.dead_lettered
            self.reader.commit(batch)
            self.stats.batches += 1
            self.stats.last_success = time.time()
            if batch.finished:
                self.stats.segments_done += 1
            handled += len(batch.docs) + len(batch.malformed)
        return handled

    def run(self, stop: threading.Event, poll_seconds: float) -> None:
        while not stop.is_set():
            try:
                handled = self.ship_available(stop)
            except Exception:  # keep turning; the error is logged and retried
                log.exception("shipping failed; retrying")
                handled = 0
            if not handled:
                stop.wait(poll_seconds)
