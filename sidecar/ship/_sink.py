"""What the shipper, the detector and the readers need from a store, one small protocol each.

A sink receives batches of spooled documents. ``write`` returns only when every
document of the batch is either stored or dead-lettered; it retries transient
failures itself (backoff, per-item retries) and raises :class:`SinkStopped` only
when ``stop`` is set while it waits. The shipper moves its checkpoint after
``write`` returns, so a sink must never report a document it has not stored.

Signed digests (:class:`DigestStore`), anomaly documents (:class:`AnomalyStore`) and reading
(:class:`RecordReader`: ``sidecar query``, ``advise``, ``audit verify``, erasure) are separate
protocols; both stores (Elasticsearch and the embedded SQLite store) implement all of them, and
:class:`Store` is the whole of one as ``sidecar run`` and the commands open it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
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


@dataclass(frozen=True, slots=True)
class QueryFilter:
    provider: str | None = None
    model: str | None = None
    status: int | None = None
    errors_only: bool = False
    since: str | None = None  # RFC 3339 lower bound on @timestamp
    until: str | None = None
    user: str | None = None
    service: str | None = None
    limit: int | None = 100


class Sink(Protocol):
    """What the shipper writes through."""

    name: str  # the ``sink`` label of the shipper's metrics

    def write(self, docs: list[SpoolDoc], stop: threading.Event) -> WriteResult:
        """Store or dead-letter every document; see the module docstring."""

    def dead_letter(self, raw: bytes, reason: str) -> None:
        """Keep a line that can never be indexed (malformed JSON, torn line) where an operator can see it."""

    def healthy(self) -> bool:
        """Reachable and ready."""


class DigestStore(Protocol):
    """Signed segment digests and chain markers (written by the shipper, read by `sidecar audit`)."""

    def write_digest(self, doc: dict[str, Any]) -> None:
        """Store a digest or marker, create-only (idempotent: a segment digest's id is the segment's, and
        the same segment always gives the same digest)."""

    def latest_digest(self, chain_id: str) -> dict[str, Any] | None:
        """The newest digest (highest ``sidecar.digest.seq``) of a sidecar chain, or None."""

    def digests(self) -> list[dict[str, Any]]:
        """Every digest in the store (unreadable ones as stubs that verify rejects)."""

    def heads(self) -> list[dict[str, Any]]:
        """The newest digest of every sidecar chain (what `sidecar audit anchor` exports)."""


class AnomalyStore(Protocol):
    def write_anomaly(self, doc: dict[str, Any]) -> None:
        """Store an anomaly document from the detector (idempotent: keyed by its ``event.id``)."""


class RecordReader(Protocol):
    """What the commands read: records, the erasure and hold ledger, and the store's own findings."""

    @property
    def where(self) -> str:
        """For messages: the store file or the index pattern."""

    def query(self, f: QueryFilter, *, content: bool = True) -> Iterator[dict[str, Any]]:
        """Record documents matching ``f`` in (@timestamp, id) order; ``content=False`` leaves out the
        request and response content (readers judging metadata only, such as advice)."""

    def stored_records(self) -> Iterator[tuple[str, str | dict[str, Any]]]:
        """(stored id, document as stored) of every record, for verification."""

    def store_problems(self) -> Iterator[tuple[str, str]]:
        """(where, what is wrong) that the store can see in itself (e.g. rebuilt query columns)."""

    def events(self) -> list[dict[str, Any]]:
        """The erasure / hold ledger in seq order (empty when the store has none yet)."""


class Store(Sink, DigestStore, AnomalyStore, RecordReader, Protocol):
    """One whole store, as `sidecar run` and the commands open and close it."""

    def open(self) -> None:
        """Connect and install what the store needs (schema, templates). Idempotent."""

    def close(self) -> None: ...


CONTENT_FIELDS = ("sidecar.request.content", "sidecar.response.content")
