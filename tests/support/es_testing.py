"""Helpers the cluster-client tests share across Elasticsearch, OpenSearch and the TLS server:
a loopback handler that answers JSON, a point-in-time walk checked while it runs, and the ``_bulk``
bodies of a plain loader (also the baseline of bench/shipper.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
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


def bulk_bodies(prefix: str, docs: Iterable[tuple[str, str, bytes]], batch_bytes: int) -> Iterator[bytes]:
    """``_bulk`` bodies of ``create`` lines for (id, day, source) documents into ``{prefix}-{day}``, each
    body at most ``batch_bytes`` long unless a single document is longer: a plain loader's baseline."""
    body: list[bytes] = []
    size = 0
    for doc_id, day, raw in docs:
        line = json.dumps({"create": {"_index": f"{prefix}-{day}", "_id": doc_id}}).encode() + b"\n" + raw + b"\n"
        if size + len(line) > batch_bytes and body:
            yield b"".join(body)
            body, size = [], 0
        body.append(line)
        size += len(line)
    if body:
        yield b"".join(body)
