"""Erasure, legal holds and the event ledger on Elasticsearch / OpenSearch.

Through the sink's own request method (same connection, credentials, TLS, suppressed tracing).

* **Erasure is a per-document replace by id**, sent in ``_bulk`` with ``if_seq_no`` /
  ``if_primary_term``: the erased form of each record is computed here, because the kept digest is
  keyed and the key never goes to the cluster (an ``_update_by_query`` script could remove fields but
  not compute a keyed digest). A document changed meanwhile is a conflict, reported, never overwritten.
* **What remains after the replace**: the old version stays in its Lucene segment as a soft-deleted
  document, readable on disk and by a snapshot, until a merge drops it. :func:`expunge` sets the
  index's ``index.merge.policy.expunge_deletes_allowed`` to 0 (the default, 10%, leaves segments with
  fewer deletes unmerged), flushes, runs ``_forcemerge?only_expunge_deletes=true`` and repeats until
  ``_stats`` counts no deleted document in the affected indices (soft-deletes retention leases can
  hold them back for a short while). Snapshots taken before still hold the old version.
* **Holds use a hold index** ``{prefix}-hold`` with the audit mapping: held documents are copied there
  (same ``_id``, bulk ``create``) when the hold is placed and on every enforcer pass, so ILM or the
  enforcer can go on deleting whole daily indices. Verify reads it with the daily indices; a copy
  identical to its daily original counts once.
* **The ledger** is ``{prefix}-events``, one document per event with ``_id`` ``event-{seq}`` created
  with ``_create`` (409: someone else took that seq; read the head again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote

from sidecar.audit.holds import es_query, holds_doc
from sidecar.audit.ledger import EID, newest
from sidecar.record import field_types
from sidecar.ship._es_cluster import ElasticsearchError
from sidecar.ship._es_read import events_index, hold_index, records_pattern
from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.ship.templates import audit_mappings, replica_settings

__all__ = ["Hit", "append_event", "copy_held", "drop_released", "events_index", "expunge", "hold_index", "matching",
           "records_pattern", "replace", "search"]

class Hit(NamedTuple):
    """A record found, with the version a replace must match."""

    index_name: str
    doc_id: str
    seq_no: int
    primary_term: int
    source: dict[str, Any]


_EVENTS_MAPPING = {"dynamic": False, "properties": {
    "@timestamp": {"type": "date"}, "sidecar.event.seq": {"type": "long"}, "sidecar.event.kind": {"type": "keyword"},
    "sidecar.event.id": {"type": "keyword"}}}


def _ensure_index(sink: ElasticsearchSink, name: str, mappings: dict[str, Any]) -> None:
    if not _exists(sink, name):
        # 400 only when another writer created it meanwhile; any other refusal must not leave the index to
        # be made by dynamic mapping (ids as text cannot be sorted on).
        answer = sink.call("PUT", f"/{name}", {"settings": replica_settings(sink.number_of_replicas),
                                                "mappings": mappings}, ok=(200, 400))
        if isinstance(answer, dict) and "error" in answer and not _exists(sink, name):
            raise ElasticsearchError(f"PUT {name}: {json.dumps(answer)[:300]}")


def _exists(sink: ElasticsearchSink, name: str) -> bool:
    return sink.status("HEAD", f"/{name}") == 200


# ------------------------------------------------------------------ ledger


def append_event(sink: ElasticsearchSink, build: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
    """Create the next event (``build(head)``); retried when another writer took the same seq."""
    index = events_index(sink.index_prefix)
    _ensure_index(sink, index, _EVENTS_MAPPING)
    for _ in range(20):
        doc = build(newest(sink.events()))
        status = sink.status("PUT", f"/{index}/_create/{quote(doc[EID])}?refresh=true", json.dumps(doc).encode())
        if status in (200, 201):
            return doc
        if status != 409:
            raise ElasticsearchError(f"event not stored: HTTP {status}")
    raise ElasticsearchError("event not stored: the ledger head kept moving (20 attempts)")


# ------------------------------------------------------------------ records


def search(sink: ElasticsearchSink, pattern: str, query: dict[str, Any], page: int = 2000) -> Iterator[Hit]:
    """Every matching document with its place and version, paged by ``search_after`` on ``_id``-like order."""
    after: list[Any] | None = None
    sink.call("POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
    while True:
        body: dict[str, Any] = {"size": page, "query": query, "seq_no_primary_term": True,
                                "sort": [{"event.id": "asc"}, {"_index": "asc"}]}
        if after is not None:
            body["search_after"] = after
        res = sink.call("POST", f"/{pattern}/_search?ignore_unavailable=true&allow_no_indices=true", body)
        hits = res.get("hits", {}).get("hits", [])
        for h in hits:
            yield Hit(h["_index"], h["_id"], int(h["_seq_no"]), int(h["_primary_term"]), h["_source"])
        if len(hits) < page:
            return
        after = hits[-1]["sort"]


def matching(sink: ElasticsearchSink, field: str, value: str) -> Iterator[Hit]:
    """Records whose ``field`` equals ``value`` (a term query where the field is mapped, else filtered here)."""
    mapped = field in field_types()
    query = {"term": {field: value}} if mapped else {"match_all": {}}
    for hit in search(sink, records_pattern(sink.index_prefix), query):
        if mapped or hit[4].get(field) == value:
            yield hit


def replace(sink: ElasticsearchSink, hits: list[tuple[Hit, dict[str, Any]]], chunk: int = 500) -> list[str]:
    """Store each new document in place of the version read; returns one line per failed document."""
    errors: list[str] = []
    for start in range(0, len(hits), chunk):
        lines = []
        for (index, doc_id, seq_no, term, _), new in hits[start:start + chunk]:
            lines.append(json.dumps({"index": {"_index": index, "_id": doc_id, "if_seq_no": seq_no,
                                               "if_primary_term": term}}))
            lines.append(json.dumps(new, ensure_ascii=False))
        res = sink.call("POST", "/_bulk?refresh=true", ndjson=("\n".join(lines) + "\n").encode())
        for item in res.get("items", []):
            op = item.get("index", {})
            if op.get("status", 500) >= 300:
                errors.append(f"{op.get('_index')}/{op.get('_id')}: HTTP {op.get('status')} "
                              f"{(op.get('error') or {}).get('type', '')}")
    return errors


def expunge(sink: ElasticsearchSink, indices: set[str], wait: float = 120.0) -> int:
    """Merge away the old versions of replaced documents; returns the deleted documents still counted."""
    if not indices:
        return 0
    names = ",".join(quote(i) for i in sorted(indices))
    sink.call("PUT", f"/{names}/_settings", {"index.merge.policy.expunge_deletes_allowed": 0})
    deadline = time.monotonic() + wait
    while True:
        sink.call("POST", f"/{names}/_flush")
        sink.call("POST", f"/{names}/_forcemerge?only_expunge_deletes=true", timeout=600.0)
        stats = sink.call("GET", f"/{names}/_stats/docs")
        left = int(stats.get("_all", {}).get("primaries", {}).get("docs", {}).get("deleted", 0))
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(2.0)


# ------------------------------------------------------------------ holds


def copy_held(sink: ElasticsearchSink, holds: list[dict[str, Any]], pattern: str | None = None) -> int:
    """Copy every held document of ``pattern`` (default: all daily indices) into the hold index."""
    prefix = sink.index_prefix
    query = es_query(holds, set(field_types()))
    if query is None:
        return 0
    index = hold_index(prefix)
    _ensure_index(sink, index, audit_mappings())
    lines: list[str] = []
    copied = 0
    for _, doc_id, _, _, source in search(sink, pattern or f"{prefix}-2*", query):
        if any(holds_doc(h, source) for h in holds):
            lines += [json.dumps({"create": {"_index": index, "_id": doc_id}}), json.dumps(source, ensure_ascii=False)]
            copied += 1
        if len(lines) >= 1000:
            _bulk_create(sink, lines)
            lines = []
    if lines:
        _bulk_create(sink, lines)
    return copied


def _bulk_create(sink: ElasticsearchSink, lines: list[str]) -> None:
    res = sink.call("POST", "/_bulk?refresh=true", ndjson=("\n".join(lines) + "\n").encode())
    bad = [i["create"] for i in res.get("items", []) if i.get("create", {}).get("status", 500) not in (200, 201, 409)]
    if bad:
        raise ElasticsearchError(f"copying held documents: {len(bad)} failed, first: {bad[0].get('error')}")


def drop_released(sink: ElasticsearchSink, holds: list[dict[str, Any]]) -> int:
    """Delete the hold index's copies no hold keeps any more (their originals follow normal retention)."""
    index = hold_index(sink.index_prefix)
    if not _exists(sink, index):
        return 0
    gone = [(i, d) for i, d, _, _, src in search(sink, index, {"match_all": {}})
            if not any(holds_doc(h, src) for h in holds)]
    for start in range(0, len(gone), 1000):
        lines = [json.dumps({"delete": {"_index": i, "_id": d}}) for i, d in gone[start:start + 1000]]
        sink.call("POST", "/_bulk?refresh=true", ndjson=("\n".join(lines) + "\n").encode())
    return len(gone)
