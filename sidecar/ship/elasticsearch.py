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
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import pathlib
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sidecar.backoff import backoff_delay
from sidecar.clock import format_utc
from sidecar.errors import ServerError, SidecarError
from sidecar.es import ClientOptions, EsClient, EsUnavailable, Response, scan, split_urls
from sidecar.es import ScanError as _ScanError
from sidecar.files import open_private, private_dir, write_all
from sidecar.ship._sink import SinkStopped, WriteResult
from sidecar.ship.templates import (
    anomaly_template,
    audit_template,
    deadletter_template,
    digest_template,
    template_names,
)
from sidecar.spool import SpoolDoc

log = logging.getLogger("sidecar.ship.elasticsearch")

_RETRYABLE_ITEM = frozenset({429, 500, 502, 503, 504})
# Whole-request answers that say "not now" or "not you": nothing was stored, and dead-lettering
# everything because of a wrong key or an overloaded proxy would be wrong, so they are retried.
_RETRYABLE_REQUEST = frozenset({401, 403, 404, 407, 408, 429})
# Item errors about the index, not the document: a write block (403 FORBIDDEN/8 "index write" set
# by an operator; 429 for the disk flood-stage block) or a missing index when the cluster does
# not auto-create indices. They are fixed on the cluster, so the documents are held and retried
# rather than dead-lettered (the last_error and retry counters make the stall visible).
_RETRYABLE_ITEM_TYPES = frozenset({"cluster_block_exception", "index_not_found_exception"})
_DEADLETTER_ATTEMPTS = 3


class ElasticsearchError(ServerError, RuntimeError):
    """Elasticsearch refused or could not be reached and the sink gave up (``max_retries`` or ``open``)."""


class DeadLetterError(SidecarError, RuntimeError):
    """A document could be neither indexed nor dead-lettered (index and local file both failed)."""


@dataclass(slots=True)
class _Item:
    doc: SpoolDoc
    index: str
    payload: bytes  # action line + source line, both newline-terminated


class _Transient(SidecarError):
    """A failure worth retrying; ``reason`` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ElasticsearchSink:
    """Ships spooled documents to Elasticsearch; see the module docstring."""

    name = "elasticsearch"

    def __init__(
        self,
        url: str | EsClient,
        *,
        index_prefix: str = "llm-audit",
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        verify_tls: bool = True,
        batch_max_bytes: int = 5_000_000,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        max_retries: int | None = None,
        timeout: float = 30.0,
        deadletter_dir: pathlib.Path | None = None,
        number_of_replicas: int | str = "0-1",
        number_of_shards: int = 1,
        retention_policy: str | None = None,
        tls_fingerprint: str | None = None,
        gzip: bool = False,
    ) -> None:
        """``url``: one node URL, several comma-separated, or a ready :class:`EsClient` (whose
        connection settings then win over the ones here). ``number_of_replicas``: a count, or an
        ``index.auto_expand_replicas`` range such as ``"0-1"``."""
        if index_prefix != index_prefix.lower() or not index_prefix or index_prefix.startswith(("_", "-", "+")):
            raise ValueError(f"invalid index prefix {index_prefix!r}: lowercase, not starting with _ - +")
        if batch_max_bytes <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial or timeout <= 0:
            raise ValueError("batch_max_bytes, backoff_initial, timeout must be > 0 and backoff_max >= backoff_initial")
        if isinstance(url, EsClient):
            self._client = url
        else:
            self._client = EsClient(ClientOptions(
                urls=tuple(split_urls(url)), api_key=api_key, username=username, password=password,
                ca_file=ca_file, fingerprint=tls_fingerprint, verify_tls=verify_tls, gzip=gzip, timeout=timeout))
        self.url = self._client.url
        self.index_prefix = index_prefix
        self.batch_max_bytes = batch_max_bytes
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retries = max_retries
        self.timeout = timeout
        self.deadletter_dir = deadletter_dir
        self.number_of_replicas = number_of_replicas
        self.number_of_shards = number_of_shards
        self.retention_policy = retention_policy
        self.template_names = template_names(index_prefix)

        # Counters, read by the metrics layer (monotonic, since the sink was made).
        self.stored = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.deadletter_file_writes = 0
        self.retries = 0
        self.bulk_requests = 0
        self.bulk_failures = 0
        self.bytes_sent = 0
        self.last_bulk_seconds = 0.0
        self.last_error: str | None = None

        self._rng = random.Random()
        self._failures = 0  # consecutive failed attempts, drives the backoff
        self._templates_installed = False
        self._index_cache: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ HTTP

    @property
    def client(self) -> EsClient:
        """The cluster client (shared with the readers of ``sidecar run``)."""
        return self._client

    def _request(
        self, method: str, path: str, body: bytes | None = None, *, ndjson: bool = False, timeout: float | None = None
    ) -> Response:
        """One HTTP exchange through the client. No node reachable raises :class:`_Transient`."""
        try:
            return self._client.request(method, path, body, ndjson=ndjson, timeout=timeout)
        except EsUnavailable as exc:
            raise _Transient(exc.reason) from exc

    def _put_json(self, path: str, doc: dict[str, Any]) -> None:
        resp = self._request("PUT", path, json.dumps(doc).encode())
        if resp.status >= 300:
            raise ElasticsearchError(f"PUT {path}: HTTP {resp.status}: {_short(resp.body.decode(errors='replace'))}")

    # ------------------------------------------------------------------ Sink protocol

    def open(self) -> None:
        """Install (or overwrite with the same content) the audit, dead-letter and anomaly templates."""
        names = self.template_names
        try:
            self._put_json(
                f"/_index_template/{names['audit']}",
                audit_template(
                    self.index_prefix,
                    retention_policy=self.retention_policy,
                    number_of_replicas=self.number_of_replicas,
                    number_of_shards=self.number_of_shards,
                ),
            )
            self._put_json(
                f"/_index_template/{names['deadletter']}",
                deadletter_template(self.index_prefix, number_of_replicas=self.number_of_replicas),
            )
            self._put_json(
                f"/_index_template/{names['anomalies']}",
                anomaly_template(self.index_prefix, number_of_replicas=self.number_of_replicas),
            )
            self._put_json(
                f"/_index_template/{names['digests']}",
                digest_template(self.index_prefix, number_of_replicas=self.number_of_replicas),
            )
        except _Transient as exc:
            raise ElasticsearchError(f"cannot install index templates: {exc.reason}") from exc
        self._templates_installed = True
        log.info("index templates installed: %s", ", ".join(names.values()))

    def healthy(self) -> bool:
        """Cluster reachable and the audit template present."""
        try:
            resp = self._request("HEAD", f"/_index_template/{self.template_names['audit']}", timeout=5.0)
        except _Transient:
            return False
        return resp.status == 200

    def close(self) -> None:
        self._client.close()

    def write(self, docs: list[SpoolDoc], stop: threading.Event) -> WriteResult:
        result = WriteResult()
        if not docs:
            return result
        with self._lock:
            if not self._templates_installed:
                self._open_with_retry(stop, result)
            queue: deque[list[_Item]] = deque(self._chunks(self._items(docs)))
            attempts = 0  # retry rounds for this write, checked against max_retries
            while queue:
                chunk = queue.popleft()
                retry = self._send(chunk, queue, result, stop)
                if retry:
                    attempts += 1
                    if self.max_retries is not None and attempts > self.max_retries:
                        raise ElasticsearchError(
                            f"gave up after {self.max_retries} retries: {self.last_error}; "
                            f"{sum(len(c) for c in queue) + len(retry)} documents not delivered"
                        )
                    self._backoff(stop, result)
                    # Failed items go first, in their original order, before untouched chunks.
                    for part in reversed(list(self._chunks(retry))):
                        queue.appendleft(part)
        return result

    def scan(self, pattern: str, sort: list[str], page: int = 1000, query: dict[str, Any] | None = None,
             source: Any = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``_id``, ``_source``) of the documents in ``pattern`` matching ``query`` (default: all), in a
        point in time paged with ``search_after`` (see :func:`sidecar.es.scan`); ``source`` filters
        ``_source``. ``sort`` must end in a field unique per document."""
        try:
            yield from scan(self._client, pattern, sort, query=query, source=source, page=page)
        except _ScanError as exc:
            raise ElasticsearchError(str(exc)) from exc

    def write_digest(self, doc: dict[str, Any]) -> None:
        """Store a signed segment digest in ``{prefix}-digests-YYYY.MM.DD``; a 409 means it is already there."""
        self._create_one("digests", doc["sidecar.digest.id"], doc)

    def latest_digest(self, chain_id: str) -> dict[str, Any] | None:
        """The newest digest of a sidecar chain (after a refresh, so one just written is seen)."""
        pattern = f"{self.index_prefix}-digests-*"
        self._refresh(pattern)
        body = {"size": 1, "query": {"term": {"sidecar.chain.id": chain_id}},
                "sort": [{"sidecar.digest.seq": {"order": "desc", "unmapped_type": "long"}}]}
        path = f"/{pattern}/_search?ignore_unavailable=true&allow_no_indices=true"
        try:
            resp = self._request("POST", path, json.dumps(body).encode())
        except _Transient as exc:
            raise ElasticsearchError(f"search of {pattern} failed: {exc.reason}") from exc
        if resp.status != 200:
            raise ElasticsearchError(f"search {pattern}: HTTP {resp.status}: {_short(resp.body.decode())}")
        hits = resp.json().get("hits", {}).get("hits", [])
        return dict(hits[0]["_source"]) if hits else None

    def _refresh(self, pattern: str) -> None:
        try:
            self._request("POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
        except _Transient as exc:
            raise ElasticsearchError(f"refresh of {pattern} failed: {exc.reason}") from exc

    def heads(self) -> list[dict[str, Any]]:
        """The newest digest of every sidecar chain (what `sidecar audit anchor` exports)."""
        newest: dict[str, dict[str, Any]] = {}
        for _, doc in self.scan(f"{self.index_prefix}-digests-*", ["sidecar.digest.seq", "sidecar.digest.id"]):
            newest[str(doc.get("sidecar.chain.id"))] = doc
        return list(newest.values())

    def write_anomaly(self, doc: dict[str, Any]) -> None:
        """Store an anomaly document in ``{prefix}-anomalies-YYYY.MM.DD``; a 409 means it is already there."""
        self._create_one("anomalies", doc["event.id"], doc)

    def _create_one(self, kind: str, doc_id: str, doc: dict[str, Any]) -> None:
        index = f"{self.index_prefix}-{kind}-{doc['@timestamp'][:10].replace('-', '.')}"
        path = f"/{index}/_create/{quote(doc_id, safe='')}"
        try:
            resp = self._request("PUT", path, json.dumps(doc).encode())
        except _Transient as exc:
            raise ElasticsearchError(f"{kind} document not stored: {exc.reason}") from exc
        if resp.status not in (200, 201, 409):
            reason = _short(resp.body.decode(errors="replace"))
            raise ElasticsearchError(f"{kind} document not stored: HTTP {resp.status}: {reason}")

    def dead_letter(self, raw: bytes, reason: str) -> None:
        """Keep a line that can never be indexed; raises :class:`DeadLetterError` if no place would take it."""
        now = _utcnow()
        doc = self._deadletter_doc(raw, "malformed_line", reason, None, None, None, now)
        doc_id = "line-" + hashlib.sha256(raw).hexdigest()[:40]
        with self._lock:
            self._store_dead_letters([(doc_id, doc)], now, threading.Event())
            self.dead_lettered += 1

    # ------------------------------------------------------------------ bulk

    def _index_for(self, day: str) -> tuple[str, bytes]:
        cached = self._index_cache.get(day)
        if cached is None:
            index = f"{self.index_prefix}-{day}"
            cached = (index, json.dumps(index).encode())
            if len(self._index_cache) > 4096:
                self._index_cache.clear()
            self._index_cache[day] = cached
        return cached

    def _items(self, docs: list[SpoolDoc]) -> list[_Item]:
        items: list[_Item] = []
        for doc in docs:
            index, index_json = self._index_for(doc.day)
            action = b'{"create":{"_index":' + index_json + b',"_id":' + json.dumps(doc.doc_id).encode() + b"}}\n"
            items.append(_Item(doc, index, action + doc.raw + b"\n"))
        return items

    def _chunks(self, items: list[_Item]) -> Iterator[list[_Item]]:
        chunk: list[_Item] = []
        size = 0
        for item in items:
            n = len(item.payload)
            if chunk and size + n > self.batch_max_bytes:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += n
        if chunk:
            yield chunk

    def _send(
        self, chunk: list[_Item], queue: deque[list[_Item]], result: WriteResult, stop: threading.Event
    ) -> list[_Item]:
        """Send one bulk request; settle what can be settled; return the items to retry."""
        body = b"".join(item.payload for item in chunk)
        started = time.perf_counter()
        self.bulk_requests += 1
        try:
            resp = self._request("POST", "/_bulk?filter_path=errors,items.*.status,items.*.error", body, ndjson=True)
        except _Transient as exc:
            return self._whole_failure(chunk, exc.reason)
        finally:
            self.last_bulk_seconds = time.perf_counter() - started
        self.bytes_sent += len(body)

        if resp.status == 413:
            if len(chunk) > 1:
                half = len(chunk) // 2
                log.warning("bulk of %d documents (%d bytes) too large (413); splitting", len(chunk), len(body))
                queue.appendleft(chunk[half:])
                queue.appendleft(chunk[:half])
                return []
            self._dead_letter_items(
                [
                    (
                        chunk[0],
                        413,
                        "request_entity_too_large",
                        "single document over the cluster's http.max_content_length",
                    )
                ],
                result,
                stop,
            )
            return []
        if resp.status in _RETRYABLE_REQUEST or resp.status >= 500:
            return self._whole_failure(chunk, f"HTTP {resp.status}: {_short(resp.body.decode(errors='replace'))}")
        if resp.status >= 300:
            # The request as a whole was refused (e.g. a line broke the bulk framing): isolate the culprit.
            reason = _error_reason(resp.body) or f"HTTP {resp.status}"
            if len(chunk) > 1:
                half = len(chunk) // 2
                log.warning("bulk refused with HTTP %d (%s); splitting to isolate", resp.status, reason)
                queue.appendleft(chunk[half:])
                queue.appendleft(chunk[:half])
                return []
            self._dead_letter_items([(chunk[0], resp.status, _error_type(resp.body), reason)], result, stop)
            return []

        try:
            parsed = resp.json()
            items = parsed["items"] if parsed.get("errors", True) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._whole_failure(chunk, f"unreadable bulk response ({len(resp.body)} bytes)")
        if items is None:  # errors: false -> every item created
            self.stored += len(chunk)
            result.stored += len(chunk)
            self._failures = 0
            return []
        if not isinstance(items, list) or len(items) != len(chunk):
            return self._whole_failure(chunk, "bulk response item count does not match the request")

        retry: list[_Item] = []
        rejects: list[tuple[_Item, int, str, str]] = []
        stored = duplicates = 0
        for item, res in zip(chunk, items, strict=True):
            info = next(iter(res.values())) if isinstance(res, dict) and res else {}
            status = int(info.get("status", 0)) if isinstance(info, dict) else 0
            if 200 <= status < 300:
                stored += 1
            elif status == 409:
                duplicates += 1
            elif status in _RETRYABLE_ITEM or status >= 500 or status == 0:
                retry.append(item)
            else:
                err = info.get("error") or {}
                etype = str(err.get("type", f"http_{status}")) if isinstance(err, dict) else f"http_{status}"
                if etype in _RETRYABLE_ITEM_TYPES:
                    retry.append(item)
                    continue
                rejects.append((item, status, etype, _item_reason(err)))
        self.stored += stored
        self.duplicates += duplicates
        result.stored += stored + duplicates
        result.duplicates += duplicates
        if rejects:
            self._dead_letter_items(rejects, result, stop)
        if retry:
            self.last_error = f"{len(retry)} of {len(chunk)} bulk items rejected with a retryable status"
            self.bulk_failures += 1
            log.warning("%s; retrying them", self.last_error)
        else:
            self._failures = 0
        return retry

    def _whole_failure(self, chunk: list[_Item], reason: str) -> list[_Item]:
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

    # ------------------------------------------------------------------ dead letters

    def _deadletter_index(self, now: dt.datetime) -> str:
        return f"{self.index_prefix}-deadletter-{now:%Y.%m.%d}"

    @staticmethod
    def _deadletter_doc(
        raw: bytes,
        error_type: str,
        reason: str,
        status: int | None,
        original_index: str | None,
        original_id: str | None,
        now: dt.datetime,
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@timestamp": format_utc(now),
            "error.type": error_type,
            "error.reason": reason,
        }
        if status is not None:
            doc["sidecar.item_status"] = status
        if original_index is not None:
            doc["sidecar.original_index"] = original_index
        if original_id is not None:
            doc["sidecar.original_id"] = original_id
        try:
            doc["sidecar.original"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            doc["sidecar.original"] = raw.decode("utf-8", errors="replace")
            doc["sidecar.original_base64"] = base64.b64encode(raw).decode("ascii")
        return doc

    def _dead_letter_items(
        self, rejects: list[tuple[_Item, int, str, str]], result: WriteResult, stop: threading.Event
    ) -> None:
        now = _utcnow()
        entries: list[tuple[str, dict[str, Any]]] = []
        for item, status, etype, reason in rejects:
            doc = self._deadletter_doc(item.doc.raw, etype, reason, status, item.index, item.doc.doc_id, now)
            entries.append((_deadletter_id(item.index, item.doc.doc_id), doc))
            result.errors.append(f"{item.doc.doc_id}: {etype}: {_short(reason, 200)}")
            log.error("document %s rejected by %s (%d %s): dead-lettered", item.doc.doc_id, item.index, status, etype)
        self._store_dead_letters(entries, now, stop)
        self.dead_lettered += len(rejects)
        result.dead_lettered += len(rejects)

    def _store_dead_letters(
        self, entries: list[tuple[str, dict[str, Any]]], now: dt.datetime, stop: threading.Event
    ) -> None:
        """Index dead letters; whatever the index does not take goes to the local file."""
        index_json = json.dumps(self._deadletter_index(now))
        pending = entries
        failure = ""
        for attempt in range(_DEADLETTER_ATTEMPTS):
            if attempt and stop.wait(backoff_delay(attempt - 1, base=self.backoff_initial, cap=self.backoff_max,
                                                   rng=self._rng)):
                break
            body = b"".join(
                f'{{"create":{{"_index":{index_json},"_id":{json.dumps(doc_id)}}}}}\n'.encode()
                + json.dumps(doc, ensure_ascii=False).encode()
                + b"\n"
                for doc_id, doc in pending
            )
            try:
                resp = self._request(
                    "POST", "/_bulk?filter_path=errors,items.*.status,items.*.error", body, ndjson=True
                )
            except _Transient as exc:
                failure = exc.reason
                continue
            if resp.status != 200:
                failure = f"HTTP {resp.status}: {_short(resp.body.decode(errors='replace'))}"
                if resp.status in _RETRYABLE_REQUEST or resp.status >= 500:
                    continue
                break
            try:
                parsed = resp.json()
                statuses = (
                    []
                    if not parsed.get("errors")
                    else [int(next(iter(r.values())).get("status", 0)) for r in parsed["items"]]
                )
            except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
                failure = "unreadable bulk response"
                continue
            if not statuses:
                return
            keep: list[tuple[str, dict[str, Any]]] = []
            hard = False
            for entry, status in zip(pending, statuses, strict=False):
                if 200 <= status < 300 or status == 409:
                    continue
                keep.append(entry)
                hard = hard or status not in _RETRYABLE_ITEM
            pending = keep
            if not pending:
                return
            failure = f"{len(pending)} dead letters refused by the dead-letter index"
            if hard:
                break
        self._write_local(pending, now, failure)

    def _write_local(self, entries: list[tuple[str, dict[str, Any]]], now: dt.datetime, failure: str) -> None:
        if self.deadletter_dir is None:
            raise DeadLetterError(f"dead-letter index failed ({failure}) and no local dead-letter directory is set")
        path = self.deadletter_dir / f"deadletter-{now:%Y%m%d}.jsonl"
        try:
            private_dir(self.deadletter_dir)  # dead letters hold whole records: private like the store
            data = b"".join(
                json.dumps({"_id": doc_id, **doc, "sidecar.deadletter_failure": failure}, ensure_ascii=False).encode()
                + b"\n"
                for doc_id, doc in entries
            )
            fd = open_private(path, os.O_WRONLY | os.O_APPEND)
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeadLetterError(
                f"dead-letter index failed ({failure}) and writing {path.name} failed: {exc}"
            ) from exc
        self.deadletter_file_writes += len(entries)
        log.error("%d dead letters written to %s (index failed: %s)", len(entries), path, failure)


# ---------------------------------------------------------------------- helpers


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _deadletter_id(index: str, doc_id: str) -> str:
    return hashlib.sha256(f"{index}\0{doc_id}".encode()).hexdigest()[:40]


def _item_reason(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    reason = str(err.get("reason", ""))
    cause = err.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason = f"{reason} (caused by {cause.get('type', '')}: {cause['reason']})"
    return reason


def _error_type(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return "request_refused"


def _error_reason(body: bytes) -> str:
    try:
        return _item_reason(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return ""
