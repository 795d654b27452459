"""Elasticsearch sink: bulk ``create`` with the record's own id into daily indices.

Delivery: every document of a ``write`` call ends up either stored (HTTP 201, or 409 =
already there from an earlier attempt) or dead-lettered, or ``write`` raises and nothing of
the batch is acknowledged. Transient failures (connection errors, timeouts, 429, 5xx, for
the whole request or single items) are retried with jittered exponential backoff, re-sending
only the items that failed. A 413 halves the request. Any other per-item 4xx can never
succeed: the document goes to ``{prefix}-deadletter-YYYY.MM.DD`` with Elasticsearch's reason,
or to a local JSON-lines file if that fails too.

HTTP goes through the one cluster client (:class:`sidecar.es.EsClient`, on ``elastic-transport``):
a pool of nodes with failover, Cloud id, TLS pinning, gzip, and OpenTelemetry suppressed. The bulk
body is assembled from the spooled bytes without parsing them and the per-item results are read
here (the typed client's helpers count 409 as an error and retry nothing by default).

The parts, one module each: requests and errors (``_es_cluster``), bulk bodies and answers
(``_es_bulk``), dead letters (``_es_deadletter``), digests and anomalies (``_es_side``), reading
(``_es_read``); this class puts them together as one :class:`sidecar.ship.Store`.
"""

from __future__ import annotations

import json
import logging
import pathlib
import random
import threading
import time
from collections import deque

from sidecar.backoff import backoff_delay
from sidecar.es import ClientOptions, EsClient, split_urls
from sidecar.ship import templates
from sidecar.ship._es_bulk import BULK_PATH, Answer, IndexNames, Item, Reject, chunks, items, read_answer
from sidecar.ship._es_cluster import DeadLetterError, ElasticsearchError, Transient, short
from sidecar.ship._es_deadletter import DeadLetters, line_entry, reject_entry, utcnow
from sidecar.ship._es_read import EsRecords
from sidecar.ship._es_side import EsSideIndices
from sidecar.ship._sink import SinkStopped, WriteResult
from sidecar.spool import SpoolDoc

__all__ = ["DeadLetterError", "ElasticsearchError", "ElasticsearchSink"]

log = logging.getLogger("sidecar.ship.elasticsearch")


class SinkCounters:
    """Monotonic since the sink was made; read by the metrics layer and the tests."""

    def __init__(self) -> None:
        self.stored = self.duplicates = self.dead_lettered = self.retries = 0
        self.bulk_requests = self.bulk_failures = self.bytes_sent = 0
        self.last_bulk_seconds = 0.0
        self.last_error: str | None = None


class ElasticsearchSink(EsSideIndices, EsRecords, SinkCounters):
    """Ships spooled documents to Elasticsearch; see the module docstring."""

    name = "elasticsearch"

    def __init__(self, url: str | EsClient, *, index_prefix: str = "llm-audit", api_key: str | None = None,
                 username: str | None = None, password: str | None = None, ca_file: str | None = None,
                 verify_tls: bool = True, batch_max_bytes: int = 5_000_000, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, max_retries: int | None = None, timeout: float = 30.0,
                 deadletter_dir: pathlib.Path | None = None, number_of_replicas: int | str = "0-1",
                 number_of_shards: int = 1, retention_policy: str | None = None,
                 tls_fingerprint: str | None = None, gzip: bool = False) -> None:
        """``url``: one node URL, several comma-separated, or a ready :class:`EsClient` (whose
        connection settings then win over the ones here). ``number_of_replicas``: a count, or an
        ``index.auto_expand_replicas`` range such as ``"0-1"``."""
        if batch_max_bytes <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial or timeout <= 0:
            raise ValueError("batch_max_bytes, backoff_initial, timeout must be > 0 and backoff_max >= backoff_initial")
        client = url if isinstance(url, EsClient) else EsClient(ClientOptions(
            urls=tuple(split_urls(url)), api_key=api_key, username=username, password=password, ca_file=ca_file,
            fingerprint=tls_fingerprint, verify_tls=verify_tls, gzip=gzip, timeout=timeout))
        EsSideIndices.__init__(self, client, index_prefix, number_of_replicas)
        SinkCounters.__init__(self)
        self.batch_max_bytes, self.timeout = batch_max_bytes, timeout
        self.backoff_initial, self.backoff_max, self.max_retries = backoff_initial, backoff_max, max_retries
        self.number_of_shards, self.retention_policy = number_of_shards, retention_policy
        self.template_names = templates.template_names(index_prefix)
        self.deadletters = DeadLetters(self, deadletter_dir, backoff_initial, backoff_max)
        self._rng = random.Random()
        self._failures = 0  # consecutive failed attempts, drives the backoff
        self._templates_installed = False
        self._index_names = IndexNames(index_prefix)
        self._lock = threading.Lock()

    @property
    def deadletter_file_writes(self) -> int:
        return self.deadletters.file_writes

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Install (or overwrite with the same content) the audit, dead-letter, anomaly and digest templates."""
        names, prefix, replicas = self.template_names, self.index_prefix, self.number_of_replicas
        bodies = {
            "audit": templates.audit_template(prefix, retention_policy=self.retention_policy,
                                              number_of_replicas=replicas, number_of_shards=self.number_of_shards),
            "deadletter": templates.deadletter_template(prefix, number_of_replicas=replicas),
            "anomalies": templates.anomaly_template(prefix, number_of_replicas=replicas),
            "digests": templates.digest_template(prefix, number_of_replicas=replicas),
        }
        for kind, body in bodies.items():
            path = f"/_index_template/{names[kind]}"
            try:
                resp = self.request("PUT", path, json.dumps(body).encode())
            except Transient as exc:
                raise ElasticsearchError(f"cannot install index templates: {exc.reason}") from exc
            if resp.status >= 300:
                raise ElasticsearchError(f"PUT {path}: HTTP {resp.status}: "
                                         f"{short(resp.body.decode(errors='replace'))}")
        self._templates_installed = True
        log.info("index templates installed: %s", ", ".join(names.values()))

    def healthy(self) -> bool:
        """Cluster reachable and the audit template present."""
        try:
            resp = self.request("HEAD", f"/_index_template/{self.template_names['audit']}", timeout=5.0)
        except Transient:
            return False
        return resp.status == 200

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ delivery

    def write(self, docs: list[SpoolDoc], stop: threading.Event) -> WriteResult:
        result = WriteResult()
        if not docs:
            return result
        with self._lock:
            if not self._templates_installed:
                self._open_with_retry(stop, result)
            queue: deque[list[Item]] = deque(chunks(items(docs, self._index_names), self.batch_max_bytes))
            attempts = 0  # retry rounds for this write, checked against max_retries
            while queue:
                chunk = queue.popleft()
                retry = self._send(chunk, queue, result, stop)
                if retry:
                    attempts += 1
                    if self.max_retries is not None and attempts > self.max_retries:
                        raise ElasticsearchError(
                            f"gave up after {self.max_retries} retries: {self.last_error}; "
                            f"{sum(len(c) for c in queue) + len(retry)} documents not delivered")
                    self._backoff(stop, result)
                    # Failed items go first, in their original order, before untouched chunks.
                    queue.extendleft(reversed(list(chunks(retry, self.batch_max_bytes))))
        return result

    def dead_letter(self, raw: bytes, reason: str) -> None:
        """Keep a line that can never be indexed; raises :class:`DeadLetterError` if no place would take it."""
        now = utcnow()
        with self._lock:
            self.deadletters.store([line_entry(raw, reason, now)], now, threading.Event())
            self.dead_lettered += 1

    def _send(self, chunk: list[Item], queue: deque[list[Item]], result: WriteResult,
              stop: threading.Event) -> list[Item]:
        """Send one bulk request; settle what can be settled; return the items to retry."""
        body = b"".join(item.payload for item in chunk)
        started = time.perf_counter()
        self.bulk_requests += 1
        try:
            resp = self.request("POST", BULK_PATH, body, ndjson=True)
        except Transient as exc:
            return self._whole_failure(chunk, exc.reason)
        finally:
            self.last_bulk_seconds = time.perf_counter() - started
        self.bytes_sent += len(body)
        answer = read_answer(chunk, resp)
        if answer.failure is not None:
            return self._whole_failure(chunk, answer.failure)
        if answer.split:  # too large (413) or refused as a whole: halve it to isolate the culprit
            log.warning("bulk of %d documents (%d bytes) refused with HTTP %d; splitting", len(chunk), len(body),
                        resp.status)
            half = len(chunk) // 2
            queue.extendleft((chunk[half:], chunk[:half]))
            return []
        self._settle(answer, len(chunk), result, stop)
        return answer.retry

    def _settle(self, answer: Answer, sent: int, result: WriteResult, stop: threading.Event) -> None:
        self.stored += answer.stored
        self.duplicates += answer.duplicates
        result.stored += answer.stored + answer.duplicates
        result.duplicates += answer.duplicates
        if answer.rejects:
            self._dead_letter_items(answer.rejects, result, stop)
        if answer.retry:
            self.last_error = f"{len(answer.retry)} of {sent} bulk items rejected with a retryable status"
            self.bulk_failures += 1
            log.warning("%s; retrying them", self.last_error)
        else:
            self._failures = 0

    def _whole_failure(self, chunk: list[Item], reason: str) -> list[Item]:
        self.bulk_failures += 1
        self.last_error = reason
        log.warning("bulk of %d documents failed: %s; will retry", len(chunk), reason)
        return chunk

    def _backoff(self, stop: threading.Event, result: WriteResult) -> None:
        delay = backoff_delay(self._failures, base=self.backoff_initial, cap=self.backoff_max, rng=self._rng)
        self._failures += 1
        self.retries += 1
        result.retries += 1
        if stop.wait(delay):
            raise SinkStopped(f"stopped while waiting {delay:.1f}s to retry ({self.last_error})")

    def _open_with_retry(self, stop: threading.Event, result: WriteResult) -> None:
        attempts = 0
        while True:
            try:
                self.open()
                return
            except ElasticsearchError as exc:
                self.last_error = str(exc)
                log.warning("%s; will retry", exc)
                attempts += 1
                if self.max_retries is not None and attempts > self.max_retries:
                    raise
                self._backoff(stop, result)

    def _dead_letter_items(self, rejects: list[Reject], result: WriteResult, stop: threading.Event) -> None:
        now = utcnow()
        for r in rejects:
            result.errors.append(f"{r.item.doc.doc_id}: {r.error_type}: {short(r.reason, 200)}")
            log.error("document %s rejected by %s (%d %s): dead-lettered", r.item.doc.doc_id, r.item.index,
                      r.status, r.error_type)
        self.deadletters.store([reject_entry(r, now) for r in rejects], now, stop)
        self.dead_lettered += len(rejects)
        result.dead_lettered += len(rejects)
