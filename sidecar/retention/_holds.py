"""Legal holds for the retention enforcer and `retention verify` (see docs/erasure.md).

Holds are signed events in the ledger (``events`` table of the embedded store, ``{prefix}-events`` in
the cluster). They are checked with the configured key; when no key can be read here (a host that
runs only retention), every hold that is well formed is honoured: keeping a record too long is the
safe side of a mistake about a legal hold.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from sidecar.audit import IntegrityKey, KeyRing
from sidecar.audit.holds import sql_clause
from sidecar.audit.ledger import KIND, SEQ, Ledger, read_ledger
from sidecar.config import ShipperSettings

log = logging.getLogger("sidecar.retention")


def holds_in_force(settings: ShipperSettings | None, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not events:
        return []
    ring = _ring(settings) if settings is not None else None
    if ring is None:
        log.warning("no HMAC key to check legal holds with: honouring every hold found")
        shaped = [e for e in events if isinstance(e.get(SEQ), int) and e.get(KIND) in ("hold", "hold_release")]
        return Ledger(sorted(shaped, key=lambda e: int(e[SEQ]))).holds()
    ledger = read_ledger(events, ring)
    for kind, where, detail, _ in ledger.problems:
        log.warning("ledger %s at %s: %s", kind, where, detail)
    return ledger.holds()


def _ring(settings: ShipperSettings) -> KeyRing | None:
    from sidecar.redact import RedactionError, derive, load_or_create_key

    if not settings.hmac_key and not settings.key_file.exists():
        return None
    try:
        secret = load_or_create_key(settings.hmac_key_text(), settings.key_file)
        return KeyRing([IntegrityKey(derive(secret, "integrity"))])
    except (RedactionError, OSError):
        return None


def store_events(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    try:
        rows = conn.execute("SELECT doc FROM events ORDER BY seq").fetchall()
    except sqlite3.OperationalError:  # no ledger yet
        return []
    out = []
    for (d,) in rows:
        try:
            doc = json.loads(d)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def store_clause(holds: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """SQL condition true for held ``records`` rows."""
    return sql_clause(holds)


def cluster_events(settings: ShipperSettings) -> tuple[Any, list[dict[str, Any]]]:
    """(an Elasticsearch sink to copy with, the ledger events)."""
    from sidecar.es import EsClient
    from sidecar.ship.elasticsearch import ElasticsearchSink

    sink = ElasticsearchSink(EsClient.from_settings(settings), index_prefix=settings.index_prefix, max_retries=2,
                             timeout=settings.elasticsearch_timeout)
    return sink, sink.events()


def keep_held_in_cluster(settings: ShipperSettings) -> str:
    """Copy every held document of the daily indices into the hold index and say so ("" with no hold);
    raises when it cannot (the caller then deletes nothing this pass)."""
    from sidecar.ship.es_erase import copy_held, hold_index

    sink, events = cluster_events(settings)
    try:
        holds = holds_in_force(settings, events)
        copied = copy_held(sink, holds) if holds else 0
    finally:
        sink.close()
    if not holds:
        return ""
    return f"{len(holds)} legal holds: {copied} held documents copied to {hold_index(settings.index_prefix)}"


def check_hold_index(settings: ShipperSettings, oldest_kept: str) -> tuple[list[str], list[str]]:
    """(notes, problems) about ``{prefix}-hold``: a copy that no hold keeps and that is older than the
    limit (``oldest_kept``, an RFC 3339 time) outstayed retention."""
    from sidecar.audit.holds import holds_doc
    from sidecar.ship.es_erase import hold_index, search

    sink, events = cluster_events(settings)
    index = hold_index(settings.index_prefix)
    try:
        holds = holds_in_force(settings, events)
        copies = [src for _, _, _, _, src in search(sink, index, {"match_all": {}})]
    finally:
        sink.close()
    stale = [c for c in copies if str(c.get("@timestamp", "")) < oldest_kept and not any(holds_doc(h, c)
                                                                                           for h in holds)]
    notes = [f"{len(holds)} legal holds in force; {len(copies)} held documents in {index}"] if holds or copies else []
    problems = [f"{len(stale)} documents in {index} are past the limit and under no legal hold"] if stale else []
    return notes, problems
