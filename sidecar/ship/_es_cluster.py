"""The Elasticsearch store's requests: one client, one index prefix, and the two errors its callers see.

Every part of the store (bulk delivery, dead letters, side indices, readers, erasure) talks to the
cluster through :class:`EsCluster`: :meth:`EsCluster.request` turns "no node reachable" into
:class:`Transient` (worth retrying), :meth:`EsCluster.call` turns any failure into
:class:`ElasticsearchError` (the caller gives up).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from sidecar.errors import ServerError, SidecarError
from sidecar.es import EsClient, EsUnavailable, Response, scan
from sidecar.es import ScanError as _ScanError

Source = dict[str, Any] | list[str] | bool | None  # a _source filter
IGNORE_MISSING = "ignore_unavailable=true&allow_no_indices=true"


class ElasticsearchError(ServerError, RuntimeError):
    """Elasticsearch refused or could not be reached and the sink gave up (``max_retries`` or ``open``)."""


class DeadLetterError(SidecarError, RuntimeError):
    """A document could be neither indexed nor dead-lettered (index and local file both failed)."""


class Transient(SidecarError):
    """A failure worth retrying; ``reason`` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def daily(prefix: str, kind: str, timestamp: str) -> str:
    """``{prefix}-{kind}-YYYY.MM.DD`` from an RFC 3339 timestamp."""
    return f"{prefix}-{kind}-{timestamp[:10].replace('-', '.')}"


class EsCluster:
    """The client and index prefix every part of the Elasticsearch store shares."""

    def __init__(self, client: EsClient, index_prefix: str, number_of_replicas: int | str) -> None:
        if index_prefix != index_prefix.lower() or not index_prefix or index_prefix.startswith(("_", "-", "+")):
            raise ValueError(f"invalid index prefix {index_prefix!r}: lowercase, not starting with _ - +")
        self._client = client
        self.url = client.url
        self.index_prefix = index_prefix
        self.number_of_replicas = number_of_replicas

    @property
    def client(self) -> EsClient:
        """The cluster client (shared with the readers of ``sidecar run``)."""
        return self._client

    def request(self, method: str, path: str, body: bytes | None = None, *, ndjson: bool = False,
                timeout: float | None = None) -> Response:
        """One HTTP exchange through the client. No node reachable raises :class:`Transient`."""
        try:
            return self._client.request(method, path, body, ndjson=ndjson, timeout=timeout)
        except EsUnavailable as exc:
            raise Transient(exc.reason) from exc

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201),
             ndjson: bytes | None = None, timeout: float = 120.0) -> Any:
        """A JSON request whose answer must have one of the ``ok`` statuses; the parsed answer, or None."""
        data = ndjson if ndjson is not None else (json.dumps(body).encode() if body is not None else None)
        where = f"{method} {path.split('?')[0]}"
        try:
            resp = self.request(method, path, data, ndjson=ndjson is not None, timeout=timeout)
        except Transient as exc:
            raise ElasticsearchError(f"{where}: {exc.reason}") from exc
        if resp.status not in ok:
            raise ElasticsearchError(f"{where}: HTTP {resp.status}: {short(resp.body.decode(errors='replace'))}")
        return resp.json() if resp.body else None

    def status(self, method: str, path: str, body: bytes | None = None) -> int:
        """The HTTP status only (e.g. HEAD, or a create whose 409 the caller handles)."""
        try:
            return self.request(method, path, body).status
        except Transient as exc:
            raise ElasticsearchError(f"{method} {path.split('?')[0]}: {exc.reason}") from exc

    def refresh(self, pattern: str) -> None:
        self.call("POST", f"/{pattern}/_refresh?{IGNORE_MISSING}")

    def scan(self, pattern: str, sort: list[str], page: int = 1000, query: dict[str, Any] | None = None,
             source: Source = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``_id``, ``_source``) of the documents in ``pattern`` matching ``query`` (default: all), in a
        point in time paged with ``search_after`` (see :func:`sidecar.es.scan`); ``source`` filters
        ``_source``. ``sort`` must end in a field unique per document."""
        try:
            yield from scan(self._client, pattern, sort, query=query, source=source, page=page)
        except _ScanError as exc:
            raise ElasticsearchError(str(exc)) from exc

    def create_one(self, kind: str, doc_id: str, doc: dict[str, Any]) -> None:
        """Create ``doc`` in the daily ``kind`` index of its timestamp; a 409 means it is already there."""
        path = f"/{daily(self.index_prefix, kind, doc['@timestamp'])}/_create/{quote(doc_id, safe='')}"
        try:
            resp = self.request("PUT", path, json.dumps(doc).encode())
        except Transient as exc:
            raise ElasticsearchError(f"{kind} document not stored: {exc.reason}") from exc
        if resp.status not in (200, 201, 409):
            reason = short(resp.body.decode(errors="replace"))
            raise ElasticsearchError(f"{kind} document not stored: HTTP {resp.status}: {reason}")
