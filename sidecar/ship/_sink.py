"""What the shipper needs from a destination.

A sink receives batches of spooled documents. ``write`` returns only when every
document of the batch is either stored or dead-lettered; it retries transient
failures itself (backoff, per-item retries) and raises :class:`SinkStopped` only
when ``stop`` is set while it waits. The shipper moves its checkpoint after
``write`` returns, so a sink must never report a document it has not stored.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from sidecar.errors import SidecarError
from sidecar.spool.document import SpoolDoc


@dataclass(slots=True)
class WriteResult:
    stored: int = 0  # delivered: newly stored or already present
    duplicates: int = 0  # the part of ``stored`` that was already present (a retry after a crash or timeout)
    dead_lettered: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)  # short reasons for dead letters, no content


class SinkStopped(SidecarError):
    """The stop event was set while the sink waited to retry; nothing after the last success is acknowledged."""


class Sink(Protocol):
    name: str

    def open(self) -> None:
        """Connect and install what the sink needs (schema, templates). Idempotent."""

    def write(self, docs: list[SpoolDoc], stop: threading.Event) -> WriteResult:
        """Store or dead-letter every document; see the module docstring."""

    def dead_letter(self, raw: bytes, reason: str) -> None:
        """Keep a line that can never be indexed (malformed JSON, torn line) where an operator can see it."""

    def write_digest(self, doc: dict[str, Any]) -> None:
        """Store a signed digest or chain marker, create-only (idempotent: a segment digest's id is the
        segment's, and the same segment always gives the same digest)."""

    def latest_digest(self, chain_id: str) -> dict[str, Any] | None:
        """The newest digest (highest ``sidecar.digest.seq``) of a sidecar chain, or None."""

    def write_anomaly(self, doc: dict[str, Any]) -> None:
        """Store an anomaly document from the detector (idempotent: keyed by its ``event.id``)."""

    def healthy(self) -> bool:
        """Reachable and ready."""

    def close(self) -> None: ...
