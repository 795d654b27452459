"""The two places records live, opened for the commands: as a whole :class:`~sidecar.ship.Store` (reading:
`audit verify`, `audit anchor`, `advise`) and behind what `sidecar erase` and `sidecar hold` need of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sidecar.audit.holds import sql_clause
from sidecar.config import ShipperSettings
from sidecar.ship import SqliteStore, Store

if TYPE_CHECKING:
    from sidecar.ship.es_erase import Hit

Build = Callable[[dict[str, Any] | None], dict[str, Any]]
Found = tuple["Hit", dict[str, Any]]  # (where the record is, its document)


def open_store(settings: ShipperSettings) -> Store:
    """The configured store for reading; the embedded one must exist (FileNotFoundError otherwise)."""
    from sidecar.daemon._sinks import make_sink

    if not settings.elasticsearch_url and not settings.embedded_store_path.exists():
        raise FileNotFoundError(f"no embedded store at {settings.embedded_store_path}")
    return make_sink(settings)


class RecordStore(Protocol):
    """What erasure and holds need: the ledger, matching records, replacing them, and making the old bytes go."""

    @property
    def where(self) -> str: ...

    def events(self) -> list[dict[str, Any]]: ...

    def append_event(self, build: Build) -> dict[str, Any]: ...

    def matching(self, field: str, value: str) -> list[Found]: ...

    def replace(self, items: list[Found]) -> list[str]:
        """Store each new document in place of the version found; one line per record not replaced."""

    def purge(self) -> tuple[str, bool]:
        """Make the replaced versions leave the store's files: (what was done, whether it finished)."""

    def holds_changed(self, holds: list[dict[str, Any]]) -> str: ...

    def close(self) -> None: ...


class EmbeddedRecords:
    """The embedded SQLite store: rows by id; erasure by in-place UPDATE, then WAL truncation and VACUUM."""

    def __init__(self, settings: ShipperSettings) -> None:
        if not settings.embedded_store_path.exists():
            raise FileNotFoundError(f"no embedded store at {settings.embedded_store_path}")
        self.store = SqliteStore(settings.embedded_store_path)
        self.store.open()
        self.where = self.store.where

    def events(self) -> list[dict[str, Any]]:
        return self.store.events()

    def append_event(self, build: Build) -> dict[str, Any]:
        return self.store.append_event(build)

    def matching(self, field: str, value: str) -> list[Found]:
        from sidecar.ship.es_erase import Hit

        return [(Hit("records", rid, 0, 0, doc), doc) for rid, doc in self.store.matching(field, value)]

    def replace(self, items: list[Found]) -> list[str]:
        changed = self.store.replace_docs([(hit.doc_id, doc) for hit, doc in items])
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
        from sidecar.daemon._sinks import elasticsearch_sink

        self.sink = elasticsearch_sink(settings)
        self.where = self.sink.where
        self._touched: set[str] = set()  # indices whose documents were replaced: merged by purge()

    def events(self) -> list[dict[str, Any]]:
        return self.sink.events()

    def append_event(self, build: Build) -> dict[str, Any]:
        from sidecar.ship.es_erase import append_event

        return append_event(self.sink, build)

    def matching(self, field: str, value: str) -> list[Found]:
        from sidecar.ship.es_erase import matching

        return [(hit, hit.source) for hit in matching(self.sink, field, value)]

    def replace(self, items: list[Found]) -> list[str]:
        from sidecar.ship.es_erase import replace

        self._touched |= {hit.index_name for hit, _ in items}
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


def open_records(settings: ShipperSettings) -> RecordStore:
    return ElasticRecords(settings) if settings.elasticsearch_url else EmbeddedRecords(settings)
