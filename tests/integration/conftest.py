"""Fixtures for integration tests against real servers.

``elasticsearch_url``: a real single-node Elasticsearch, started once per session with
``bash scripts/elasticsearch.sh up`` (or the one named by ``SIDECAR_TEST_ES_URL``). If it cannot
start, every test that needs it FAILS with the server's log tail. It is left running at the end
(``make es-down`` / ``bash scripts/elasticsearch.sh down`` stops it).

``es``: a small REST helper for assertions; ``es_prefix``: a unique index prefix per test whose
indices and templates are deleted afterwards; ``fault_proxy``: a loopback HTTP proxy in front of
the real server that injects 429/503/413 answers, connection resets and stalls on ``_bulk``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from sidecar.record import AuditRecord
from sidecar.spool.document import SpoolDoc

REPO = Path(__file__).resolve().parents[2]
ES_SCRIPT = REPO / "scripts" / "elasticsearch.sh"
ES_LOG = REPO / ".es" / "logs" / "sidecar-test.log"


# --------------------------------------------------------------------------- the server


def _start_server(script: Path, args: list[str], what: str, log: Path) -> str:
    """Run ``script up ...``; its last stdout line is the URL (or URLs). Fails the test (never skips)
    with the script's output and the server's log tail when it cannot start."""
    try:
        proc = subprocess.run(["bash", str(script), "up", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {script.name} up: {exc}\n{_log_tail(log)}", pytrace=False)
    lines = proc.stdout.strip().splitlines()
    value = lines[-1].strip() if lines else ""
    if proc.returncode != 0 or not value.startswith("http://"):
        pytest.fail(f"{what} did not start (exit {proc.returncode}).\n--- stdout ---\n{proc.stdout[-3000:]}\n"
                    f"--- stderr ---\n{proc.stderr[-6000:]}\n--- log tail ---\n{_log_tail(log)}", pytrace=False)
    return value


def _log_tail(log: Path, lines: int = 80) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    env_url = os.environ.get("SIDECAR_TEST_ES_URL")
    if env_url:
        return env_url.rstrip("/")
    return _start_server(ES_SCRIPT, [], "Elasticsearch", ES_LOG)


@pytest.fixture(scope="session")
def es_cluster_urls() -> list[str]:
    """The node URLs of a real 3-node Elasticsearch cluster (``elasticsearch.sh up --nodes 3``, or the
    comma-separated ``SIDECAR_TEST_ES_CLUSTER_URLS``). Left running at the end (``make test`` stops it)."""
    env_urls = os.environ.get("SIDECAR_TEST_ES_CLUSTER_URLS")
    value = env_urls or _start_server(ES_SCRIPT, ["--nodes", "3"], "the 3-node Elasticsearch cluster",
                                      REPO / ".es" / "cluster" / "node1" / "logs" / "sidecar-test-cluster.log")
    urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
    assert len(urls) == 3, f"expected three node URLs, got {value!r}"
    return urls


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A real single-node OpenSearch (``opensearch.sh up``, or ``SIDECAR_TEST_OS_URL``)."""
    env_url = os.environ.get("SIDECAR_TEST_OS_URL")
    if env_url:
        return env_url.rstrip("/")
    return _start_server(REPO / "scripts" / "opensearch.sh", [], "OpenSearch",
                         REPO / ".os" / "logs" / "sidecar-test-os.log")


class ES:
    """Minimal REST helper for assertions (plain urllib3, no client library)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))

    def request(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> Any:
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
        resp = self.http.request(method, self.url + path, body=data, headers=headers)
        if ok and resp.status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {resp.status}: {resp.data[:2000]!r}")
        return json.loads(resp.data) if resp.data else None

    def refresh(self, pattern: str) -> None:
        self.request("POST", f"/{pattern}/_refresh?expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true")

    def count(self, pattern: str) -> int:
        self.refresh(pattern)
        return int(self.request("GET", f"/{pattern}/_count?allow_no_indices=true")["count"])

    def ids(self, pattern: str) -> list[str]:
        """Every ``_id`` in the indices matching ``pattern`` (duplicates kept, sorted)."""
        self.refresh(pattern)
        out: list[str] = []
        body: dict[str, Any] = {"size": 5000, "sort": ["_doc"], "_source": False, "query": {"match_all": {}}}
        res = self.request("POST", f"/{pattern}/_search?allow_no_indices=true", body)
        hits = res["hits"]["hits"]
        assert res["hits"]["total"]["value"] <= 5000 or len(hits) == 5000
        out.extend(h["_id"] for h in hits)
        assert len(out) < 5000, "ids() helper is for small test sets"
        return sorted(out)

    def search(self, pattern: str, size: int = 100) -> list[dict[str, Any]]:
        self.refresh(pattern)
        res = self.request("POST", f"/{pattern}/_search?allow_no_indices=true", {"size": size, "sort": ["_doc"]})
        return list(res["hits"]["hits"])

    def indices(self, pattern: str) -> list[str]:
        res = self.request("GET", f"/_cat/indices/{pattern}?format=json&expand_wildcards=all", ok=(200, 404))
        return sorted(row["index"] for row in (res or []))

    def cleanup(self, prefix: str) -> None:
        for index in self.indices(f"{prefix}-*"):
            self.request("DELETE", f"/{index}", ok=(200, 404))
        res = self.request("GET", f"/_index_template/{prefix}-*", ok=(200, 404)) or {}
        for tpl in res.get("index_templates", []):
            self.request("DELETE", f"/_index_template/{tpl['name']}", ok=(200, 404))


@pytest.fixture(scope="session")
def es(elasticsearch_url: str) -> ES:
    return ES(elasticsearch_url)


def _unique_prefix(server: ES, letter: str) -> Iterator[str]:
    """A unique index prefix starting with ``letter``; its indices and templates are deleted afterwards."""
    prefix = f"{letter}{uuid.uuid4().hex[:10]}"
    yield prefix
    server.cleanup(prefix)


@pytest.fixture
def es_prefix(es: ES) -> Iterator[str]:
    """A unique index prefix; the test's indices and templates are deleted afterwards."""
    yield from _unique_prefix(es, "t")


# --------------------------------------------------------------------------- the fault proxy


@dataclass
class Fault:
    kind: str  # "status", "reset", "stall", "pass"
    status: int = 0
    seconds: float = 0.0
    after_forward: bool = False  # reset/stall after ES has processed the request (response lost)


class FaultProxy:
    """A threaded loopback HTTP/1.1 proxy in front of a real server.

    Everything is forwarded untouched, except ``_bulk`` requests while faults are queued:
    ``fail_bulk(n, 429)`` answers the next n with that status and an Elasticsearch-style JSON
    error; ``reset_bulk(n)`` resets the connection (before or after forwarding); ``stall_bulk``
    holds the request without answering, then closes. ``max_bulk_bytes`` answers 413 to larger
    bodies. ``bulk_items`` records the number of documents in every ``_bulk`` request seen,
    ``bulk_log`` also its size and what the proxy did with it.
    """

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.max_bulk_bytes: int | None = None
        self.bulk_items: list[int] = []
        self.bulk_log: list[tuple[int, int, str]] = []  # (documents, bytes, "ok" or the fault) per _bulk
        self.faults_served: list[str] = []
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def pass_bulk(self, n: int) -> None:
        """Let the next n ``_bulk`` requests through (to place later faults after them)."""
        with self._lock:
            self._faults.extend(Fault("pass") for _ in range(n))

    def fail_bulk(self, n: int, status: int = 429) -> None:
        with self._lock:
            self._faults.extend(Fault("status", status=status) for _ in range(n))

    def reset_bulk(self, n: int, *, after_forward: bool = False) -> None:
        with self._lock:
            self._faults.extend(Fault("reset", after_forward=after_forward) for _ in range(n))

    def stall_bulk(self, n: int, seconds: float, *, after_forward: bool = False) -> None:
        with self._lock:
            self._faults.extend(Fault("stall", seconds=seconds, after_forward=after_forward) for _ in range(n))

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _next_fault(self, body: bytes) -> Fault | None:
        items = body.count(b"\n") // 2
        with self._lock:
            self.bulk_items.append(items)
            fault: Fault | None = None
            if self.max_bulk_bytes is not None and len(body) > self.max_bulk_bytes:
                fault = Fault("status", status=413)
            elif self._faults:
                fault = self._faults.popleft()
                if fault.kind == "pass":
                    fault = None
            outcome = "ok" if fault is None else fault.kind if fault.kind != "status" else str(fault.status)
            if fault is not None:
                self.faults_served.append(outcome)
            self.bulk_log.append((items, len(body), outcome))
            return fault

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(self.path).path
        fault = self.owner._next_fault(body) if path.rstrip("/").endswith("/_bulk") else None
        if fault is None:
            self._relay(*self._forward(body))
            return
        if fault.kind == "status":
            self._answer_error(fault.status)
            return
        if fault.after_forward:
            self._forward(body)  # Elasticsearch processes it; the answer never reaches the client
        if fault.kind == "stall":
            deadline = time.monotonic() + fault.seconds
            while time.monotonic() < deadline and not self.owner._closing.is_set():
                time.sleep(0.05)
        self._reset()

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP], data
        finally:
            conn.close()

    def _relay(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _answer_error(self, status: int) -> None:
        if status == 413:
            data = b""
        else:
            etype = "es_rejected_execution_exception" if status == 429 else "unavailable_shards_exception"
            data = json.dumps(
                {
                    "error": {
                        "root_cause": [{"type": etype, "reason": "injected by the fault proxy"}],
                        "type": etype,
                        "reason": "injected by the fault proxy",
                    },
                    "status": status,
                }
            ).encode()
        self._relay(status, [("Content-Type", "application/json")], data)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "host",
    }
)


@pytest.fixture
def docs_factory() -> Any:
    """The :func:`make_docs` builder (test modules cannot import conftest under importlib mode)."""
    return make_docs


def _proxy_in_front(url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(url)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def fault_proxy(elasticsearch_url: str) -> Iterator[FaultProxy]:
    yield from _proxy_in_front(elasticsearch_url)


@pytest.fixture(scope="session")
def opensearch(opensearch_url: str) -> ES:
    """The REST helper, on OpenSearch."""
    return ES(opensearch_url)


@pytest.fixture
def os_prefix(opensearch: ES) -> Iterator[str]:
    """A unique index prefix on OpenSearch; its indices and templates are deleted afterwards."""
    yield from _unique_prefix(opensearch, "o")


@pytest.fixture
def os_fault_proxy(opensearch_url: str) -> Iterator[FaultProxy]:
    """The fault proxy in front of OpenSearch."""
    yield from _proxy_in_front(opensearch_url)


# --------------------------------------------------------------------------- documents


def make_docs(
    n: int, *, day: str = "2026.03.14", start: int = 0, bad: frozenset[int] = frozenset(), producer: str = "p1"
) -> list[SpoolDoc]:
    """``n`` spool documents built from the real record schema, all dated ``day``.

    Documents whose position is in ``bad`` carry ``gen_ai.usage.input_tokens: "not-a-number"``,
    which the long mapping rejects.
    """
    y, m, d = day.split(".")
    docs: list[SpoolDoc] = []
    for i in range(start, start + n):
        rec = AuditRecord.model_validate(
            {
                "event.id": f"{producer}-{i:08d}",
                "@timestamp": f"{y}-{m}-{d}T10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z",
                "sidecar.producer.id": producer,
                "sidecar.sequence": i,
                "service.name": "checkout",
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 100 + i % 50,
                "gen_ai.usage.output_tokens": 20 + i % 7,
                "http.response.status_code": 200 if i % 10 else 429,
                "event.duration": 123456789,
                "sidecar.request.content": "Summarise the attached note for <EMAIL:1a2b3c>.",
                "sidecar.redaction.counts": {"email": 1},
            }
        )
        doc = rec.to_document()
        if i - start in bad:
            doc["gen_ai.usage.input_tokens"] = "not-a-number"
        docs.append(SpoolDoc(doc_id=rec.event_id, day=day, raw=json.dumps(doc, separators=(",", ":")).encode()))
    return docs
