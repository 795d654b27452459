"""The raw facts of one model call, gathered on the application's thread.

Gathering is deliberately dumb (references, byte counts, timestamps) so the call
pays almost nothing; parsing, redaction and serialization happen later, on the
spool writer's thread (see ``sidecar.record.build``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from sidecar.providers import Endpoint

TAIL_BYTES = 64 * 1024  # kept past the cap: a stream's usage and finish reason come last


class BodyTee:
    """Keeps the first ``cap`` bytes of a body and its last ``TAIL_BYTES``, and counts all of it."""

    __slots__ = ("_head_len", "cap", "first_at", "head", "size", "tail", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head: list[bytes] = []
        self._head_len = 0
        self.tail: list[bytes] = []
        self.size = 0
        self.truncated = False
        self.first_at: float | None = None

    def add(self, chunk: bytes) -> None:
        n = len(chunk)
        if n == 0:
            return
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.size += n
        room = self.cap - self._head_len
        if room >= n:
            self.head.append(chunk)
            self._head_len += n
            return
        if room > 0:
            self.head.append(chunk[:room])
            self._head_len += room
            chunk = chunk[room:]
        self.truncated = True
        self.tail.append(chunk)
        if sum(len(c) for c in self.tail) > 2 * TAIL_BYTES:
            joined = b"".join(self.tail)[-TAIL_BYTES:]
            self.tail = [joined]

    def head_bytes(self) -> bytes:
        return b"".join(self.head)

    def tail_bytes(self) -> bytes:
        return b"".join(self.tail)[-TAIL_BYTES:]


@dataclass(slots=True)
class CallCapture:
    endpoint: Endpoint
    client: str  # httpx | httpx2 | requests
    method: str
    url: str
    host: str
    port: int | None
    path: str
    request_headers: list[tuple[str, str]]
    start_ns: int
    start_perf: float
    user_id: str | None = None
    conversation_id: str | None = None
    span: Span | None = None
    span_owned: bool = False  # we end the span (the instrumentor left it open for us)
    request_body: bytes | None = None
    request_size: int | None = None
    request_truncated: bool = False
    request_tail: bytes | None = None  # last bytes of a body over the cap
    request_tee: BodyTee | None = None  # a streamed request body, observed as it is sent
    status_code: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response: BodyTee | None = None
    response_decoded: bool = False  # the bytes seen are already content-decoded (requests)
    end_perf: float | None = None
    exception: BaseException | None = None
    stream_outcome: str | None = None
    timeout: float | None = None
    timeout_known: bool = False
    resend_count: int | None = None
    connection_reused: bool | None = None
    cache_hit: bool = False
    streamed: bool = False
    _finished: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def trace_hex(self) -> str | None:
        """The call's trace id (hex), when it has a valid span."""
        ctx = self.span.get_span_context() if self.span is not None else None
        return format(ctx.trace_id, "032x") if ctx is not None and ctx.is_valid else None

    def span_hex(self) -> str | None:
        ctx = self.span.get_span_context() if self.span is not None else None
        return format(ctx.span_id, "016x") if ctx is not None and ctx.is_valid else None

    def finish(self, sink: Callable[[CallCapture], Any], *, outcome: str | None = None,
               exception: BaseException | None = None) -> None:
        """Hand the call to the pipeline exactly once, whatever ends it first (end, error, close, GC)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.end_perf = time.perf_counter()
        if outcome is not None:
            self.stream_outcome = outcome
        if exception is not None and self.exception is None:
            self.exception = exception
        sink(self)
