"""Helpers the cluster-client tests share across Elasticsearch, OpenSearch and the TLS server:
a loopback handler that answers JSON, and a point-in-time walk checked while it runs."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from sidecar.es import EsClient, scan

CONTENT = "sidecar.request.content"


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler; ``answer_json`` sends a 200 with a JSON body."""

    def answer_json(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def walk_holding_pit(client: EsClient, pattern: str, open_pits: Callable[[], int], *, page: int,
                     during: Callable[[], None] = lambda: None) -> list[tuple[str, dict[str, Any]]]:
    """Walks ``pattern`` with ``scan`` (request content left out of ``_source``) and returns the hits.

    Asserts that the walk holds a point in time once it has begun, that it is closed at the end, and
    that no hit carries the excluded content. ``during`` runs after the first hit (e.g. more writes)."""
    before = open_pits()
    walk = scan(client, pattern, ["event.id"], page=page, source={"excludes": [CONTENT]})
    first = next(walk)
    assert open_pits() > before  # the walk holds a point in time (one context per shard)...
    during()
    got = [first, *walk]
    assert open_pits() == before  # ...and closes it at the end
    assert all(CONTENT not in src for _, src in got)
    return got
