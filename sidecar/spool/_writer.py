"""Application side of the spool: one background thread per process appends records.

Segment files live in one flat directory shared with the sidecar. Each process
writes only its own files, named ``{producer}-{segment:06d}-{created_ms}`` with
suffix ``.open`` while written and ``.jsonl`` once sealed, so producers never need
a lock. Each line is one finished JSON document. A call never waits for the
writer, except with ``fsync="always"``, where it returns once its record is on disk.
"""

from __future__ import annotations

import collections
import logging
import os
import pathlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.audit import IntegrityKey, chain_line, chain_of
from sidecar.files import open_private, private_dir
from sidecar.telemetry import Metrics

log = logging.getLogger("sidecar.spool")

_WAKE_AT = 256
_YIELD_EVERY = 0.002
OPEN_SUFFIX = ".open"
SEALED_SUFFIX = ".jsonl"


_DROP_LOGS = 60
_TRACE_IN_LINE = re.compile(rb'"trace\.id":"([0-9a-f]{32})"')


def _trace_of_item(item: Any) -> str | None:
    try:
        trace = item.trace_hex()
        return trace if isinstance(trace, str) else None
    except Exception:
        return None


def _trace_of_line(line: bytes) -> str | None:
    m = _TRACE_IN_LINE.search(line, 0, 4096)
    return m.group(1).decode() if m else None


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    directory: pathlib.Path
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval: float = 0.5
    segment_bytes: int = 16 * 1024 * 1024
    segment_seconds: float = 30.0
    queue_size: int = 10_000
    max_bytes: int = 1024 * 1024 * 1024
    linger: float = 0.05  # longest a record waits in the queue before the writer looks
    group: int | None = None  # shared group: spool 2770, segments 0640 (else 0700 / 0600)
    chain_key: IntegrityKey | None = None  # None: a random key (records chained but unverifiable)


class _Waiter:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class SpoolWriter:
    """``submit`` items; the thread turns each into a line with ``process`` and appends it."""

    def __init__(self, config: SpoolConfig, producer_id: str, process: Callable[[Any, int], bytes | None],
                 metrics: Metrics) -> None:
        self.config = config
        self.producer_id = producer_id
        self._process = process
        self._metrics = metrics
        self._chain_key = config.chain_key or IntegrityKey(os.urandom(32))
        self._queue: collections.deque[tuple[Any, _Waiter | None]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._seq = 0
        self._chain_head = ""
        self._segment_no = 0
        self._fd: int | None = None
        self._path: pathlib.Path | None = None
        self._segment_size = 0
        self._segment_started = 0.0
        self._last_fsync = 0.0
        self._dirty = False
        self._spool_size_checked = 0.0
        self._spool_full = False
        self._last_warning: dict[str, float] = {}
        self._drop_log: dict[str, tuple[float, int, int]] = {}  # reason -> (minute start, lines, unlogged)
        self.written = 0
        self.dropped = 0

    # -- application thread --------------------------------------------------

    def submit(self, item: Any) -> bool:
        """Queue one item; False (and counted) when it had to be dropped."""
        waiter = _Waiter() if self.config.fsync == "always" else None
        with self._cond:
            if len(self._queue) >= self.config.queue_size:
                self._drop("queue_full", 1, [_trace_of_item(item)])
                return False
            self._queue.append((item, waiter))
            if self._thread is None:
                self._start()
            # Wake the writer only when someone waits or a batch has built up: a wake-up per call
            # costs more (thread switches, GIL hand-offs) than the record itself. Otherwise the
            # writer picks the queue up within `linger` seconds.
            if waiter is not None or len(self._queue) >= _WAKE_AT:
                self._cond.notify()
        if waiter is not None:
            waiter.done.wait(timeout=30.0)
            return waiter.ok
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (and fsynced unless fsync='never')."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, seal the segment, stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None
            self._stopping = False

    def reset_after_fork(self, producer_id: str) -> None:
        """In a forked child: the parent's thread and file are not ours."""
        self.producer_id = producer_id
        self._cond = threading.Condition(threading.Lock())
        self._queue.clear()
        self._thread = None
        self._stopping = False
        self._busy = False  # the parent's writer may have been mid-batch: not ours to wait for
        self._fd = None
        self._path = None
        self._dirty = False
        self._segment_size = 0
        self._seq = 0
        self._chain_head = ""
        self._segment_no = 0
        self._last_warning = {}

    # -- writer thread ---------------------------------------------------------

    _busy = False

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sidecar-spool-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    timeout = min(self._next_timer(), self.config.linger)
                    self._cond.wait(timeout)
                    if not self._queue:
                        break
                batch = list(self._queue)
                self._queue.clear()
                stopping = self._stopping
                self._busy = bool(batch)
            try:
                if batch:
                    self._write_batch(batch)
                self._timers()
            except Exception as exc:  # the writer thread must survive anything
                self._metrics.internal_errors.labels("spool").inc()
                self._warn("crash", f"spool writer error ({type(exc).__name__})")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if stopping and not batch:
                with self._cond:
                    if self._queue:
                        continue
                self._seal()
                return

    def _next_timer(self) -> float:
        if self._fd is None:
            return 1.0
        waits = [self.config.segment_seconds - (time.monotonic() - self._segment_started)]
        if self._dirty and self.config.fsync == "interval":
            waits.append(self.config.fsync_interval - (time.monotonic() - self._last_fsync))
        return max(min(waits), 0.01)

    def _timers(self) -> None:
        now = time.monotonic()
        if self._fd is not None and now - self._segment_started >= self.config.segment_seconds:
            self._seal()
        elif self._dirty and self.config.fsync == "interval" and now - self._last_fsync >= self.config.fsync_interval:
            self._fsync()

    def _write_batch(self, batch: list[tuple[Any, _Waiter | None]]) -> None:
        lines: list[bytes] = []
        waiters: list[_Waiter] = []
        yielded = time.perf_counter()
        for item, waiter in batch:
            if waiter is not None:
                waiters.append(waiter)
            try:
                line = self._process(item, self._seq + 1)
            except Exception as exc:
                line = None
                self._metrics.internal_errors.labels("pipeline").inc()
                # the class only: a message or a traceback's values may quote the call's content
                self._warn("pipeline", f"could not build an audit record ({type(exc).__name__})")
            if line is None:
                self._drop("pipeline_failed", 1, [_trace_of_item(item)])
                continue
            # Sequence numbers and the hash chain advance only for records that are written,
            # so a dropped record never looks like a deleted one to the verifier.
            self._seq += 1
            line, self._chain_head = chain_line(line, self._chain_head, self._chain_key)
            lines.append(line)
            # Hand the GIL back every couple of milliseconds of work: an application thread waiting
            # for it then waits about that long, not for a whole batch (p99 latency), while short
            # batches run through without extra thread switches (p50).
            now = time.perf_counter()
            if now - yielded > _YIELD_EVERY:
                time.sleep(0)
                yielded = time.perf_counter()
        chunks: list[list[bytes]] = []
        chunk: list[bytes] = []
        room = self.config.segment_bytes - self._segment_size if self._fd is not None else self.config.segment_bytes
        for line in lines:  # cut the batch where the segment reaches its size
            if chunk and room - len(line) - 1 < 0:
                chunks.append(chunk)
                chunk, room = [], self.config.segment_bytes
            chunk.append(line)
            room -= len(line) + 1
        if chunk:
            chunks.append(chunk)
        ok = True
        for n, part in enumerate(chunks):
            if n:
                self._seal()
            if not self._append(part):
                # Later lines are chained to the failed ones: give them back too.
                rest = [line for later in chunks[n + 1:] for line in later]
                if rest:
                    self._seq -= len(rest)
                    self._drop("write_failed", len(rest), [_trace_of_line(line) for line in rest])
                ok = False
                break
        if waiters:
            for w in waiters:
                w.ok = ok
                w.done.set()

    def _append(self, lines: list[bytes]) -> bool:
        if self._over_cap():
            self._rewind(lines)
            self._drop("spool_full", len(lines), [_trace_of_line(line) for line in lines])
            return False
        data = b"".join(line + b"\n" for line in lines)
        try:
            if self._fd is None or self._segment_size >= self.config.segment_bytes:
                self._seal()
                self._open_segment()
            assert self._fd is not None
            start = self._segment_size
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError:
                # Cut a torn write back so the next record starts on a fresh line.
                try:
                    os.ftruncate(self._fd, start)
                except OSError:
                    self._seal()
                raise
            self._segment_size += len(data)
            self._dirty = True
            if self.config.fsync == "always":
                self._fsync()
        except OSError as exc:
            self._metrics.spool_write_failures.inc()
            self._rewind(lines)
            self._drop("write_failed", len(lines), [_trace_of_line(line) for line in lines])
            self._warn("write", f"spool write failed ({exc.strerror or exc}); {len(lines)} records dropped")
            return False
        self.written += len(lines)
        self._metrics.records_spooled.inc(len(lines))
        self._metrics.spool_bytes.inc(len(data))
        return True

    def _rewind(self, lines: list[bytes]) -> None:
        """Lines that were not written give back their sequence numbers and chain links.
        (Only the last chunk of a batch can fail after earlier ones were written.)"""
        if not lines:
            return
        self._seq -= len(lines)
        first = chain_of(lines[0])
        if first is not None:
            self._chain_head = first[0]

    def _over_cap(self) -> bool:
        cap = self.config.max_bytes
        if not cap:
            return False
        now = time.monotonic()
        if now - self._spool_size_checked > 1.0:
            self._spool_size_checked = now
            total = 0
            try:
                with os.scandir(self.config.directory) as it:
                    for entry in it:
                        if entry.is_file():
                            total += entry.stat().st_size
            except OSError:
                return False
            self._spool_full = total >= cap
        return self._spool_full

    def _open_segment(self) -> None:
        self._segment_no += 1
        name = f"{self.producer_id}-{self._segment_no:06d}-{int(time.time() * 1000)}{OPEN_SUFFIX}"
        path = self.config.directory / name
        # Private files only, in a directory nobody else prepared, never through a symlink. An unsafe
        # directory raises UnsafePathError (an OSError): the records are dropped, counted and logged.
        private_dir(self.config.directory, self.config.group, shared=True)
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND, self.config.group, exclusive=True)
        self._path = path
        self._segment_size = 0
        self._segment_started = time.monotonic()

    def _fsync(self) -> None:
        if self._fd is not None and self.config.fsync != "never":
            os.fsync(self._fd)
        self._dirty = False
        self._last_fsync = time.monotonic()

    def _seal(self) -> None:
        if self._fd is None or self._path is None:
            return
        try:
            if self.config.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._path.rename(self._path.with_suffix(SEALED_SUFFIX))
        except OSError as exc:
            self._warn("seal", f"could not seal spool segment: {exc}")
        self._fd = None
        self._path = None
        self._dirty = False

    def _drop(self, reason: str, n: int, traces: list[str | None]) -> None:
        """Count a drop by reason and log it with the calls' trace ids (at most ``_DROP_LOGS`` lines a
        minute per reason; the lines after that are counted and named in the next one)."""
        self.dropped += n
        self._metrics.records_dropped.labels(reason).inc(n)
        now = time.monotonic()
        window, logged, unlogged = self._drop_log.get(reason, (now, 0, 0))
        if now - window >= 60.0:
            window, logged = now, 0
        if logged >= _DROP_LOGS:
            self._drop_log[reason] = (window, logged, unlogged + n)
            return
        ids = ",".join(t or "-" for t in traces[:20]) + (",..." if len(traces) > 20 else "")
        more = f"; {unlogged} more dropped since the last line" if unlogged else ""
        log.warning("audit records dropped: %s (%d); trace ids %s%s", reason, n, ids, more)
        self._drop_log[reason] = (window, logged + 1, 0)

    def _warn(self, key: str, message: str, exc_info: bool = False) -> None:
        """Log a problem at most once per minute per kind: loud, not a flood."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -1e9) >= 60.0:
            self._last_warning[key] = now
            log.warning(message, exc_info=exc_info)
