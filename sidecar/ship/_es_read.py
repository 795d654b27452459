"""Reading the Elasticsearch store: records (daily indices and the hold index) and the erasure / hold
ledger (``{prefix}-events``), for ``sidecar advise``, ``audit verify`` and erasure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sidecar.audit.ledger import EID, SEQ
from sidecar.ship._es_cluster import EsCluster
from sidecar.ship._sink import CONTENT_FIELDS, QueryFilter


def events_index(prefix: str) -> str:
    return f"{prefix}-events"


def hold_index(prefix: str) -> str:
    return f"{prefix}-hold"


def records_pattern(prefix: str) -> str:
    """Every place a record lives: the daily indices and the hold index."""
    return f"{prefix}-2*,{hold_index(prefix)}"


_TERMS = (("provider", "gen_ai.provider.name"), ("model", "gen_ai.request.model"),
          ("status", "http.response.status_code"), ("user", "user.id"), ("service", "service.name"))


def es_query(f: QueryFilter) -> dict[str, Any] | None:
    """The filter as an Elasticsearch query (None: everything)."""
    clauses: list[dict[str, Any]] = [{"term": {name: getattr(f, attr)}} for attr, name in _TERMS
                                     if getattr(f, attr) is not None]
    if f.errors_only:
        clauses.append({"exists": {"field": "error.type"}})
    bounds = {k: v for k, v in (("gte", f.since), ("lt", f.until)) if v}
    if bounds:
        clauses.append({"range": {"@timestamp": bounds}})
    return {"bool": {"filter": clauses}} if clauses else None


class EsRecords(EsCluster):
    """:class:`~sidecar.ship.RecordReader` on Elasticsearch."""

    @property
    def where(self) -> str:
        return f"Elasticsearch {self.index_prefix}-*"

    def query(self, f: QueryFilter, *, content: bool = True) -> Iterator[dict[str, Any]]:
        # Readers judging metadata leave the content out of _source: each hit shrinks from kilobytes
        # to a few hundred bytes.
        source = None if content else {"excludes": list(CONTENT_FIELDS)}
        hits = self.scan(f"{self.index_prefix}-2*", ["@timestamp", "event.id"], query=es_query(f), source=source)
        for n, (_, doc) in enumerate(hits):
            if f.limit is not None and n >= f.limit:
                return
            yield doc

    def stored_records(self) -> Iterator[tuple[str, str | dict[str, Any]]]:
        records = self.scan(records_pattern(self.index_prefix), ["sidecar.producer.id", "sidecar.sequence",
                                                                 "event.id"])
        yield from _held_once(records)

    def store_problems(self) -> Iterator[tuple[str, str]]:
        """None: the documents are all Elasticsearch keeps (no derived columns to disagree with them)."""
        yield from ()

    def events(self) -> list[dict[str, Any]]:
        index = events_index(self.index_prefix)
        self.refresh(index)
        return [doc for _, doc in self.scan(index, [SEQ, EID])]


def _held_once(records: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A held record is in its daily index and in the hold index: count identical copies once (a copy
    that differs is passed on, and verify reports the second record)."""
    seen: dict[str, dict[str, Any]] = {}
    for rid, doc in records:
        if seen.get(rid) == doc:
            continue
        seen.setdefault(rid, doc)
        yield rid, doc
