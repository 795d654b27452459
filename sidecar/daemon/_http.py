"""The sidecar's /metrics and /healthz listener, bounded so that no client can starve the shipper.

* a fixed pool of worker threads (``max_connections``) and a short queue; a connection that finds
  both full is closed at once (file descriptors and threads stay bounded whatever arrives);
* a reaper closes any connection that has not sent its request line and headers within
  ``header_timeout`` or is idle longer than ``idle_timeout`` (slow-drip clients included);
* one request per connection (HTTP/1.0), responses built before the first byte is written;
* a client that goes away mid-response (broken pipe, reset) is counted, never a traceback.

/metrics is prometheus_client's own ``MetricsHandler`` (content negotiation, gzip, ``name[]``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from http.server import HTTPServer
from typing import Any

from prometheus_client.exposition import MetricsHandler

log = logging.getLogger("sidecar.http")

HEALTH_PATHS = ("/healthz", "/healthz/ready", "/healthz/live")
_QUIET = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, OSError)


class _Handler(MetricsHandler):
    """/metrics; /healthz/live (the loop is turning); /healthz and /healthz/ready (sink reachable)."""

    live: Callable[[], bool] = staticmethod(lambda: True)
    ready: Callable[[], bool] = staticmethod(lambda: True)
    server: BoundedHTTPServer

    def handle(self) -> None:
        try:
            super().handle()
        except _QUIET:
            self.server.client_errors += 1

    def do_GET(self) -> None:
        self.server.headers_done(self.connection)
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/metrics":
            super().do_GET()
            return
        if path in HEALTH_PATHS:
            ok = self.live() if path.endswith("/live") else (self.live() and self.ready())
            body, code = (b"ok\n" if ok else b"not ready\n"), (200 if ok else 503)
        else:
            body, code = b"not found\n", 404
        self.send_response(code)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BoundedHTTPServer(HTTPServer):
    """An HTTPServer with a fixed worker pool, a bounded queue and deadlines (see the module docstring)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], *, max_connections: int = 64,
                 header_timeout: float = 10.0, idle_timeout: float = 30.0) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.shed = 0  # connections closed at once because every worker was busy
        self.timed_out = 0  # connections the reaper closed
        self.client_errors = 0  # clients that went away mid-exchange
        self._pending: queue.Queue[tuple[socket.socket, Any]] = queue.Queue(maxsize=max_connections)
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        super().__init__(address, handler)  # binds: raises OSError when the address is taken
        self._threads = [threading.Thread(target=self._work, name=f"sidecar-http-{n}", daemon=True)
                         for n in range(max_connections)]
        self._threads.append(threading.Thread(target=self._reap, name="sidecar-http-reaper", daemon=True))
        for t in self._threads:
            t.start()

    # -- accepting ------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._deadlines[request] = time.monotonic() + self.header_timeout
        try:
            self._pending.put_nowait((request, client_address))
        except queue.Full:
            self.shed += 1
            self._forget(request)
            self.shutdown_request(request)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                request, address = self._pending.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                request.settimeout(self.idle_timeout)
                self.finish_request(request, address)
            except _QUIET:
                self.client_errors += 1
            except Exception:
                log.debug("http handler failed", exc_info=True)
            finally:
                self._forget(request)
                self.shutdown_request(request)

    def headers_done(self, request: socket.socket) -> None:
        """The request is read: from now on only the idle timeout applies (the response is small)."""
        with self._lock:
            if request in self._deadlines:
                self._deadlines[request] = time.monotonic() + self.idle_timeout

    def _forget(self, request: Any) -> None:
        with self._lock:
            self._deadlines.pop(request, None)

    def _reap(self) -> None:
        while not self._stopping.wait(min(1.0, self.header_timeout / 4)):
            now = time.monotonic()
            with self._lock:
                late = [s for s, t in self._deadlines.items() if t < now]
                for s in late:
                    del self._deadlines[s]
            for s in late:
                self.timed_out += 1
                with contextlib.suppress(OSError):  # wakes the worker blocked on it; it closes the socket
                    s.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.client_errors += 1  # never a traceback on stderr for a client's misbehaviour

    def server_close(self) -> None:
        self._stopping.set()
        super().server_close()


def serve_health(listen: str, shipper: Any, registry: Any, stale_after: float, *, max_connections: int = 64,
                 header_timeout: float = 10.0, idle_timeout: float = 30.0) -> BoundedHTTPServer:
    """Start the listener on ``host:port`` in a background thread; returns the server (``shutdown()``)."""
    host, _, port = listen.rpartition(":")
    probe = {"at": 0.0, "ok": False}
    lock = threading.Lock()

    def ready() -> bool:
        # Asked of the sink itself (at most every 2 s): while a write is retrying against a
        # cluster that went away, the shipping loop cannot report on it.
        with lock:
            if time.monotonic() - probe["at"] > 2.0:
                probe["ok"] = bool(shipper.sink.healthy())
                probe["at"] = time.monotonic()
            return bool(probe["ok"])

    handler = type("Health", (_Handler,), {
        "live": staticmethod(lambda: time.monotonic() - shipper.last_turn < stale_after or shipper.busy),
        "ready": staticmethod(ready),
        "registry": registry,
    })
    server = BoundedHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), handler,
                               max_connections=max_connections, header_timeout=header_timeout,
                               idle_timeout=idle_timeout)
    threading.Thread(target=server.serve_forever, name="sidecar-http", daemon=True).start()
    return server
