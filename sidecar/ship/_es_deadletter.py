"""Dead letters of the Elasticsearch sink: documents the cluster will never take, kept with its reason in
``{prefix}-deadletter-YYYY.MM.DD``, or in a local JSON-lines file when that index refuses them too."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import pathlib
import threading
from typing import Any

from sidecar.backoff import backoff_delay
from sidecar.clock import format_utc
from sidecar.files import open_private, private_dir, write_all
from sidecar.ship._es_bulk import BULK_PATH, RETRYABLE_ITEM, RETRYABLE_REQUEST, Reject, create_line, item_statuses
from sidecar.ship._es_cluster import DeadLetterError, EsCluster, Transient, short

log = logging.getLogger("sidecar.ship.elasticsearch")

_ATTEMPTS = 3
Entry = tuple[str, dict[str, Any]]  # (dead letter id, document)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def deadletter_doc(raw: bytes, error_type: str, reason: str, now: dt.datetime,
                   origin: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dead letter of ``raw``; ``origin``: the item's status, index and id when the cluster refused it."""
    doc: dict[str, Any] = {"@timestamp": format_utc(now),
                           "error.type": error_type, "error.reason": reason, **(origin or {})}
    try:
        doc["sidecar.original"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        doc["sidecar.original"] = raw.decode("utf-8", errors="replace")
        doc["sidecar.original_base64"] = base64.b64encode(raw).decode("ascii")
    return doc


def line_entry(raw: bytes, reason: str, now: dt.datetime) -> Entry:
    """A spool line that is no record (malformed JSON, torn line), keyed by its content."""
    return "line-" + hashlib.sha256(raw).hexdigest()[:40], deadletter_doc(raw, "malformed_line", reason, now)


def reject_entry(reject: Reject, now: dt.datetime) -> Entry:
    item = reject.item
    origin = {"sidecar.item_status": reject.status, "sidecar.original_index": item.index,
              "sidecar.original_id": item.doc.doc_id}
    doc = deadletter_doc(item.doc.raw, reject.error_type, reject.reason, now, origin)
    return hashlib.sha256(f"{item.index}\0{item.doc.doc_id}".encode()).hexdigest()[:40], doc


class DeadLetters:
    """Stores dead letters: the index first (a few attempts), then the local file; raises
    :class:`DeadLetterError` when neither takes them."""

    def __init__(self, cluster: EsCluster, directory: pathlib.Path | None, backoff_initial: float,
                 backoff_max: float) -> None:
        self.cluster = cluster
        self.directory = directory
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.file_writes = 0

    def store(self, entries: list[Entry], now: dt.datetime, stop: threading.Event) -> None:
        """Index the dead letters; whatever the index does not take goes to the local file."""
        index_json = json.dumps(f"{self.cluster.index_prefix}-deadletter-{now:%Y.%m.%d}").encode()
        pending, failure = entries, ""
        for attempt in range(_ATTEMPTS):
            if attempt and stop.wait(backoff_delay(attempt - 1, base=self.backoff_initial, cap=self.backoff_max)):
                break
            pending, failure, hard = self._attempt(pending, index_json)
            if not pending:
                return
            if hard:
                break
        self._write_local(pending, now, failure)

    def _attempt(self, pending: list[Entry], index_json: bytes) -> tuple[list[Entry], str, bool]:
        """One bulk request of the pending dead letters: (still pending, why, whether retrying is futile)."""
        body = b"".join(create_line(index_json, doc_id) + json.dumps(doc, ensure_ascii=False).encode() + b"\n"
                        for doc_id, doc in pending)
        try:
            resp = self.cluster.request("POST", BULK_PATH, body, ndjson=True)
        except Transient as exc:
            return pending, exc.reason, False
        if resp.status != 200:
            failure = f"HTTP {resp.status}: {short(resp.body.decode(errors='replace'))}"
            return pending, failure, not (resp.status in RETRYABLE_REQUEST or resp.status >= 500)
        try:
            statuses = item_statuses(resp)
        except ValueError as exc:
            return pending, str(exc), False
        refused = [(entry, status) for entry, status in zip(pending, statuses, strict=False)
                   if not (200 <= status < 300 or status == 409)]
        hard = any(status not in RETRYABLE_ITEM for _, status in refused)
        return [e for e, _ in refused], f"{len(refused)} dead letters refused by the dead-letter index", hard

    def _write_local(self, entries: list[Entry], now: dt.datetime, failure: str) -> None:
        if self.directory is None:
            raise DeadLetterError(f"dead-letter index failed ({failure}) and no local dead-letter directory is set")
        path = self.directory / f"deadletter-{now:%Y%m%d}.jsonl"
        data = b"".join(json.dumps({"_id": doc_id, **doc, "sidecar.deadletter_failure": failure},
                                   ensure_ascii=False).encode() + b"\n" for doc_id, doc in entries)
        try:
            private_dir(self.directory)  # dead letters hold whole records: private like the store
            fd = open_private(path, os.O_WRONLY | os.O_APPEND)
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeadLetterError(f"dead-letter index failed ({failure}) and writing {path.name} failed: "
                                  f"{exc}") from exc
        self.file_writes += len(entries)
        log.error("%d dead letters written to %s (index failed: %s)", len(entries), path, failure)
