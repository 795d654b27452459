"""Bulk requests of the Elasticsearch sink: the body built from the spooled bytes without parsing them,
and what each answer means for each document (stored, already there, retry, dead letter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sidecar.es import Response
from sidecar.ship._es_cluster import short
from sidecar.spool import SpoolDoc

BULK_PATH = "/_bulk?filter_path=errors,items.*.status,items.*.error"
RETRYABLE_ITEM = frozenset({429, 500, 502, 503, 504})
# Whole-request answers that say "not now" or "not you": nothing was stored, and dead-lettering
# everything because of a wrong key or an overloaded proxy would be wrong, so they are retried.
RETRYABLE_REQUEST = frozenset({401, 403, 404, 407, 408, 429})
# Item errors about the index, not the document: a write block (403 FORBIDDEN/8 "index write" set
# by an operator; 429 for the disk flood-stage block) or a missing index when the cluster does
# not auto-create indices. They are fixed on the cluster, so the documents are held and retried
# rather than dead-lettered (the last_error and retry counters make the stall visible).
_RETRYABLE_ITEM_TYPES = frozenset({"cluster_block_exception", "index_not_found_exception"})


@dataclass(slots=True)
class Item:
    doc: SpoolDoc
    index: str
    payload: bytes  # action line + source line, both newline-terminated


@dataclass(slots=True)
class Reject:
    """An item the cluster will never take: it goes to the dead letters with the cluster's reason."""

    item: Item
    status: int
    error_type: str
    reason: str


@dataclass(slots=True)
class Answer:
    """What one bulk answer settled. ``failure`` set: the whole request failed and every item is retried;
    ``split``: the request as a whole was refused, halve it (or dead-letter its single item)."""

    stored: int = 0
    duplicates: int = 0
    retry: list[Item] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    failure: str | None = None
    split: bool = False


def create_line(index_json: bytes, doc_id: str) -> bytes:
    return b'{"create":{"_index":' + index_json + b',"_id":' + json.dumps(doc_id).encode() + b"}}\n"


class IndexNames:
    """``{prefix}-YYYY.MM.DD`` and its JSON form per day, cached (bounded)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._cache: dict[str, tuple[str, bytes]] = {}

    def __call__(self, day: str) -> tuple[str, bytes]:
        cached = self._cache.get(day)
        if cached is None:
            index = f"{self.prefix}-{day}"
            cached = (index, json.dumps(index).encode())
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[day] = cached
        return cached


def items(docs: list[SpoolDoc], names: IndexNames) -> list[Item]:
    out: list[Item] = []
    for doc in docs:
        index, index_json = names(doc.day)
        out.append(Item(doc, index, create_line(index_json, doc.doc_id) + doc.raw + b"\n"))
    return out


def chunks(items: list[Item], max_bytes: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    size = 0
    for item in items:
        n = len(item.payload)
        if chunk and size + n > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


def read_answer(chunk: list[Item], resp: Response) -> Answer:
    """Settle what the answer to one bulk request of ``chunk`` settles."""
    if resp.status == 413:
        if len(chunk) > 1:
            return Answer(split=True)
        return Answer(rejects=[Reject(chunk[0], 413, "request_entity_too_large",
                                      "single document over the cluster's http.max_content_length")])
    if resp.status in RETRYABLE_REQUEST or resp.status >= 500:
        return Answer(failure=f"HTTP {resp.status}: {short(resp.body.decode(errors='replace'))}")
    if resp.status >= 300:  # the request as a whole was refused (e.g. a line broke the bulk framing)
        if len(chunk) > 1:
            return Answer(split=True)
        reason = error_reason(resp.body) or f"HTTP {resp.status}"
        return Answer(rejects=[Reject(chunk[0], resp.status, error_type(resp.body), reason)])
    try:
        parsed = resp.json()
        results = parsed["items"] if parsed.get("errors", True) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return Answer(failure=f"unreadable bulk response ({len(resp.body)} bytes)")
    if results is None:  # errors: false -> every item created
        return Answer(stored=len(chunk))
    if not isinstance(results, list) or len(results) != len(chunk):
        return Answer(failure="bulk response item count does not match the request")
    return _per_item(chunk, results)


def _per_item(chunk: list[Item], results: list[Any]) -> Answer:
    answer = Answer()
    for item, res in zip(chunk, results, strict=True):
        info = next(iter(res.values())) if isinstance(res, dict) and res else {}
        status = int(info.get("status", 0)) if isinstance(info, dict) else 0
        if 200 <= status < 300:
            answer.stored += 1
        elif status == 409:
            answer.duplicates += 1
        elif status in RETRYABLE_ITEM or status >= 500 or status == 0:
            answer.retry.append(item)
        else:
            err = info.get("error") or {}
            etype = str(err.get("type", f"http_{status}")) if isinstance(err, dict) else f"http_{status}"
            if etype in _RETRYABLE_ITEM_TYPES:
                answer.retry.append(item)
            else:
                answer.rejects.append(Reject(item, status, etype, item_reason(err)))
    return answer


def item_statuses(resp: Response) -> list[int]:
    """The per-item statuses of a bulk answer; empty when every item succeeded. Raises ValueError when
    the answer cannot be read."""
    try:
        parsed = resp.json()
        if not parsed.get("errors"):
            return []
        return [int(next(iter(r.values())).get("status", 0)) for r in parsed["items"]]
    except (KeyError, TypeError, AttributeError, StopIteration) as exc:
        raise ValueError("unreadable bulk response") from exc


def item_reason(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)
    reason = str(err.get("reason", ""))
    cause = err.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        reason = f"{reason} (caused by {cause.get('type', '')}: {cause['reason']})"
    return reason


def error_type(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["type"])
    except (ValueError, KeyError, TypeError):
        return "request_refused"


def error_reason(body: bytes) -> str:
    try:
        return item_reason(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return ""
