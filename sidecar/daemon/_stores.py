"""The two places records live, behind what `sidecar erase` and `sidecar hold` need of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sidecar.audit.holds import sql_clause
from sidecar.config import ShipperSettings

Build = Callable[[dict[str, Any] | None], dict[str, Any]]


class EmbeddedRecords:
    """The embedded SQLite store: rows by id; erasure by in-place UPDATE, then WAL truncation and VACUUM."""

    def __init__(self, settings: ShipperSettings) -> None:
        from sidecar.ship import SqliteStore

        if not settings.embedded_store_path.exists():
            raise FileNotFoundError(f"no embedded store at {settings.embedded_store_path}")
        self.store = SqliteStore(settings.embedded_store_path)
        self.store.open()
        self.where = str(settings.embedded_store_path)

    def events(self) -> list[dict[str, Any]]:
        return self.store.events()

    def append_event(self, build: Build) -> dict[str, Any]:
        return self.store.append_event(build)

    def matching(self, field: str, value: str) -> list[tuple[Any, dict[str, Any]]]:
        return list(self.store.matching(field, value))

    def replace(self, items: list[tuple[Any, dict[str, Any]]]) -> list[str]:
        changed = self.store.replace_docs([(str(loc), doc) for loc, doc in items])
        return [] if changed == len(items) else [f"{len(items) - changed} records vanished while being erased"]

    def purge(self) -> tuple[str, bool]:
        started = time.perf_counter()
        problem = self.store.purge()
        if problem:
            return f"erased bytes may remain on disk: {problem}; run the erase again when it is idle", False
        return (f"secure_delete, WAL checkpoint(TRUNCATE), VACUUM, checkpoint(TRUNCATE) in "
                f"{time.perf_counter() - started:.2f}s"), True

    def holds_changed(self, holds: list[dict[str, Any]]) -> str:
        clause, args = sql_clause(holds)
        return f"{len(self.store.held_ids(clause, args))} records held in the store"

    def close(self) -> None:
        self.store.close()


class ElasticRecords:
    """Elasticsearch / OpenSearch: daily indices plus the hold index (see sidecar/ship/es_erase.py)."""

    def __init__(self, settings: ShipperSettings) -> None:
        from sidecar.daemon._sinks import make_sink

        self.sink = make_sink(settings)
        self.where = f"Elasticsearch {settings.index_prefix}-*"
        self._touched: set[str] = set()  # indices whose documents were replaced: merged by purge()

    def events(self) -> list[dict[str, Any]]:
        from sidecar.ship.es_erase import read_events

        return read_events(self.sink)

    def append_event(self, build: Build) -> dict[str, Any]:
        from sidecar.ship.es_erase import append_event

        return append_event(self.sink, build)

    def matching(self, field: str, value: str) -> list[tuple[Any, dict[str, Any]]]:
        from sidecar.ship.es_erase import matching

        return [(hit, hit[4]) for hit in matching(self.sink, field, value)]

    def replace(self, items: list[tuple[Any, dict[str, Any]]]) -> list[str]:
        from sidecar.ship.es_erase import replace

        self._touched |= {loc[0] for loc, _ in items}
        return replace(self.sink, items)

    def purge(self) -> tuple[str, bool]:
        from sidecar.ship.es_erase import expunge

        started = time.perf_counter()
        left = expunge(self.sink, self._touched)
        took = time.perf_counter() - started
        if left:
            return (f"{left} old document versions are still in segments after {took:.1f}s of "
                    "_forcemerge?only_expunge_deletes=true (retention leases); run the erase again later"), False
        return f"old versions merged away (flush, _forcemerge?only_expunge_deletes=true) in {took:.2f}s", True

    def holds_changed(self, holds: list[dict[str, Any]]) -> str:
        from sidecar.ship.es_erase import copy_held, drop_released, hold_index

        copied = copy_held(self.sink, holds)
        dropped = drop_released(self.sink, holds)
        return f"{copied} held documents in {hold_index(self.sink.index_prefix)}; {dropped} released copies removed"

    def close(self) -> None:
        self.sink.close()


def open_records(settings: ShipperSettings) -> EmbeddedRecords | ElasticRecords:
    return ElasticRecords(settings) if settings.elasticsearch_url else EmbeddedRecords(settings)
