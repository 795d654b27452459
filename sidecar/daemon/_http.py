"""The sidecar's /metrics and /healthz listener, bounded so that no client can starve the shipper.

* a connection waits in a selector until its first bytes arrive, so idle sockets never hold a worker;
  the waiting room is bounded (``max_waiting``: a few per worker, at most half the process's file
  descriptors) and, when full, closes its oldest silent connection, so a new client such as a
  health probe always gets in, whatever a flood of idle sockets does;
* a fixed pool of worker threads (``max_connections``) and a short queue; a connection that finds
  both full is closed at once (file descriptors and threads stay bounded whatever arrives);
* deadlines close any connection that has not sent its request line and headers within
  ``header_timeout`` or is idle longer than ``idle_timeout`` (slow-drip clients included);
* one request per connection (HTTP/1.0), responses built before the first byte is written;
* a client that goes away mid-response (broken pipe, reset) is counted, never a traceback.

/metrics is prometheus_client's own ``MetricsHandler`` (content negotiation, gzip, ``name[]``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import resource
import selectors
import socket
import threading
import time
import typing
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
    """An HTTPServer with a fixed worker pool, a waiting room and deadlines (see the module docstring)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], *, max_connections: int = 64,
                 header_timeout: float = 10.0, idle_timeout: float = 30.0, max_waiting: int | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.max_connections = max_connections
        self.max_waiting = max_waiting or _waiting_room(max_connections)
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.shed = 0  # connections closed at once: the oldest silent one when the waiting room is full
        self.timed_out = 0  # connections closed at their deadline
        self.client_errors = 0  # clients that went away mid-exchange
        self._pending: queue.Queue[tuple[socket.socket, Any]] = queue.Queue(maxsize=max_connections)
        self._arrivals: queue.SimpleQueue[tuple[socket.socket, Any]] = queue.SimpleQueue()
        self._waiting: dict[socket.socket, tuple[float, Any]] = {}  # silent so far: (deadline, address)
        self._deadlines: dict[socket.socket, float] = {}  # handed to a worker
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        super().__init__(address, handler)  # binds: raises OSError when the address is taken
        self._threads = [threading.Thread(target=self._work, name=f"sidecar-http-{n}", daemon=True)
                         for n in range(max_connections)]
        self._threads.append(threading.Thread(target=self._dispatch, name="sidecar-http-dispatch", daemon=True))
        self._threads.append(threading.Thread(target=self._reap, name="sidecar-http-reaper", daemon=True))
        for t in self._threads:
            t.start()

    # -- accepting: a connection waits in a selector until it sends something ------------

    def process_request(self, request: Any, client_address: Any) -> None:
        self._arrivals.put((request, client_address))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _dispatch(self) -> None:
        """Idle connections never hold a worker: only one whose first bytes arrived is queued for one.
        A full waiting room closes its oldest silent connection, so a new client (a probe) always gets
        in, whatever a flood of idle sockets does."""
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=min(1.0, self.header_timeout / 4)):
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    sock = typing.cast(socket.socket, key.fileobj)
                    sel.unregister(sock)
                    deadline, address = self._waiting.pop(sock)
                    self._hand_over(sock, address, deadline)
                self._admit(sel)
                self._expire(sel)

    def _admit(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                request, address = self._arrivals.get_nowait()
            except queue.Empty:
                return
            if len(self._waiting) >= self.max_waiting:
                oldest = min(self._waiting, key=lambda s: self._waiting[s][0])
                self._drop(sel, oldest)
                self.shed += 1
            self._waiting[request] = (time.monotonic() + self.header_timeout, address)
            sel.register(request, selectors.EVENT_READ)

    def _expire(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for sock in [s for s, (deadline, _) in self._waiting.items() if deadline < now]:
            self._drop(sel, sock)
            self.timed_out += 1

    def _drop(self, sel: selectors.BaseSelector, sock: socket.socket) -> None:
        sel.unregister(sock)
        del self._waiting[sock]
        self.shutdown_request(sock)

    def _hand_over(self, request: socket.socket, address: Any, deadline: float) -> None:
        with self._lock:
            self._deadlines[request] = deadline
        try:
            self._pending.put_nowait((request, address))
        except queue.Full:  # every worker busy and the queue full: shed, never a thread each
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
        """Deadlines of the connections a worker holds (a client that drips its headers)."""
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
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")


def _waiting_room(max_connections: int) -> int:
    """Silent connections kept open at once: a few per worker, and never more than half the file
    descriptors this process may open (the shipper needs the rest)."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        soft = 1024
    limit = soft // 2 if soft != resource.RLIM_INFINITY else 4096
    return max(16, min(max_connections * 8, limit))


def serve_health(listen: tuple[str, int], shipper: Any, registry: Any, stale_after: float, *, max_connections: int = 64,
                 header_timeout: float = 10.0, idle_timeout: float = 30.0) -> BoundedHTTPServer:
    """Start the listener on ``(host, port)`` in a background thread; returns the server (``shutdown()``)."""
    host, port = listen
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
    server = BoundedHTTPServer((host, port), handler,
                               max_connections=max_connections, header_timeout=header_timeout,
                               idle_timeout=idle_timeout)
    threading.Thread(target=server.serve_forever, name="sidecar-http", daemon=True).start()
    return server
