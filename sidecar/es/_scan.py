"""Read every matching document of an index pattern, page by page, with memory independent of its size.

A point in time (PIT) freezes the indices' view for the whole walk, so documents indexed, deleted
or merged meanwhile neither appear twice nor vanish; ``search_after`` on the caller's sort (plus
the PIT's own tiebreaker) moves through it without the deep-paging cost of ``from``. Only one page
(``page`` hits, with ``_source`` cut to what the caller asked for) is held at a time.

The PIT API differs: Elasticsearch (7.10+) has ``POST <pattern>/_pit`` and ``DELETE _pit``;
OpenSearch (2.4+) has ``POST <pattern>/_search/point_in_time`` and ``DELETE _search/point_in_time``.
Where neither is served (older servers, a proxy allowing only ``_search``), the walk falls back to
``search_after`` alone, which is still exact for the sidecar's readers because every sort they ask
for ends in a unique field.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sidecar.errors import ServerError
from sidecar.es._client import EsClient, EsHttpError, EsUnavailable, Response

log = logging.getLogger("sidecar.es")

KEEP_ALIVE = "2m"
SEARCH_TIMEOUT = 120.0


class ScanError(ServerError, RuntimeError):
    """A search failed (the cluster answered an error, or could not be reached)."""


@dataclass(slots=True)
class _Pit:
    flavour: str  # "elasticsearch" | "opensearch"
    id: str


def distribution(client: EsClient) -> str:
    """``opensearch`` or ``elasticsearch`` (from ``GET /``), cached on the client."""
    cached = getattr(client, "_distribution", None)
    if isinstance(cached, str):
        return cached
    resp = client.request("GET", "/")
    body = resp.json() if resp.status == 200 else None
    version = body.get("version") if isinstance(body, dict) else None
    flavour = "opensearch" if isinstance(version, dict) and version.get("distribution") == "opensearch" \
        else "elasticsearch"
    client._distribution = flavour  # type: ignore[attr-defined]
    return flavour


def _open_pit(client: EsClient, pattern: str) -> _Pit | None:
    target = urllib.parse.quote(pattern, safe="*,-")
    flavour = distribution(client)
    if flavour == "opensearch":
        path = f"/{target}/_search/point_in_time?keep_alive={KEEP_ALIVE}&expand_wildcards=open"
        key = "pit_id"
    else:
        path = f"/{target}/_pit?keep_alive={KEEP_ALIVE}&ignore_unavailable=true"
        key = "id"
    resp = client.request("POST", path, timeout=SEARCH_TIMEOUT)
    body = resp.json()
    if resp.status == 200 and isinstance(body, dict) and isinstance(body.get(key), str):
        return _Pit(flavour, body[key])
    if resp.status == 404 and "index_not_found" in resp.text(2000):
        return None  # nothing matches the pattern: the plain search below answers "no hits"
    log.info("no point in time on %s (HTTP %d: %s); paging with search_after alone", flavour, resp.status,
             resp.text(200))
    return None


def _close_pit(client: EsClient, pit: _Pit) -> None:
    try:
        if pit.flavour == "opensearch":
            client.request("DELETE", "/_search/point_in_time", {"pit_id": [pit.id]})
        else:
            client.request("DELETE", "/_pit", {"id": pit.id})
    except EsUnavailable:
        pass  # it expires by itself after KEEP_ALIVE


def scan(client: EsClient, pattern: str, sort: list[str], *, query: dict[str, Any] | None = None,
         source: Any = None, page: int = 1000) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``_id``, ``_source``) of every document of ``pattern`` matching ``query``, ascending by ``sort``.

    ``sort`` must end in a field unique per document (the fallback without a PIT relies on it);
    ``source`` is the ``_source`` filter (a list of fields, or ``{"includes": .., "excludes": ..}``).
    Raises :class:`ScanError` when a search fails.
    """
    try:
        pit = _open_pit(client, pattern)
    except EsUnavailable as exc:
        raise ScanError(f"search failed: {exc.reason}") from exc
    try:
        yield from _pages(client, pattern, sort, query, source, page, pit)
    finally:
        if pit is not None:
            _close_pit(client, pit)


def _pages(client: EsClient, pattern: str, sort: list[str], query: dict[str, Any] | None, source: Any,
           page: int, pit: _Pit | None) -> Iterator[tuple[str, dict[str, Any]]]:
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {
            "size": page,
            # unmapped_type: an index of the pattern without the field (a new one, a foreign one)
            # sorts its documents first instead of failing the whole search.
            "sort": [{f: {"order": "asc"} if f.startswith("_") else {"order": "asc", "unmapped_type": "keyword"}}
                     for f in sort],
            "query": query or {"match_all": {}},
            "track_total_hits": False,
        }
        if source is not None:
            body["_source"] = source
        if after is not None:
            body["search_after"] = after
        if pit is not None:
            body["pit"] = {"id": pit.id, "keep_alive": KEEP_ALIVE}
            path = "/_search"
        else:
            path = f"/{urllib.parse.quote(pattern, safe='*,-')}/_search?ignore_unavailable=true&allow_no_indices=true"
        resp = _search(client, path, body, pattern)
        parsed = resp.json() or {}
        if pit is not None and isinstance(parsed.get("pit_id"), str):
            pit.id = parsed["pit_id"]  # the id may change between pages; always send the newest
        hits = (parsed.get("hits") or {}).get("hits") or []
        for h in hits:
            yield h["_id"], h.get("_source") or {}
        if len(hits) < page:
            return
        after = hits[-1]["sort"]


def _search(client: EsClient, path: str, body: dict[str, Any], pattern: str) -> Response:
    try:
        resp = client.request("POST", path, body, timeout=SEARCH_TIMEOUT)
    except EsUnavailable as exc:
        raise ScanError(f"search failed: {exc.reason}") from exc
    if resp.status != 200:
        raise ScanError(f"search {pattern}: HTTP {resp.status}: {resp.text()}")
    return resp


__all__ = ["EsHttpError", "ScanError", "distribution", "scan"]
