"""Signed digests: one per shipped spool segment, chained per producer (CloudTrail-style).

A digest states which records a segment held (producer, first and last sequence and id,
count, the chain hash before the first and after the last) and links to the previous
digest of the same producer. It is hashed and signed with a key derived from the HMAC
key, so a verifier holding the key can tell a genuine digest from a forged one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from sidecar.audit._chain import chain_of

_KEY_LABEL = b"llm-audit-sidecar digest signing v1"
SIGNED_FIELDS = (
    "sidecar.digest.id", "sidecar.producer.id", "sidecar.digest.first_id", "sidecar.digest.last_id",
    "sidecar.digest.first_sequence", "sidecar.digest.last_sequence", "sidecar.digest.count",
    "sidecar.digest.chain_start", "sidecar.digest.chain_head", "sidecar.digest.prev", "@timestamp",
)


def signing_key(key: bytes) -> bytes:
    """A separate key for signatures, so pseudonym tags and signatures never share a key."""
    return hmac.new(key, _KEY_LABEL, hashlib.sha256).digest()


def digest_hash(doc: dict[str, Any]) -> str:
    body = json.dumps({k: doc.get(k) for k in SIGNED_FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def sign(doc: dict[str, Any], key: bytes) -> dict[str, Any]:
    h = digest_hash(doc)
    doc["sidecar.digest.hash"] = h
    doc["sidecar.digest.signature"] = hmac.new(signing_key(key), h.encode(), hashlib.sha256).hexdigest()
    return doc


def signature_ok(doc: dict[str, Any], key: bytes) -> bool:
    h = digest_hash(doc)
    expected = hmac.new(signing_key(key), h.encode(), hashlib.sha256).hexdigest()
    return doc.get("sidecar.digest.hash") == h and hmac.compare_digest(str(doc.get("sidecar.digest.signature")),
                                                                         expected)


def _sequence(doc_id: str) -> int | None:
    tail = doc_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


class DigestBuilder:
    """Accumulates a segment's chain facts batch by batch. Its state lives in the checkpoint
    (``partial`` and ``last``), saved atomically with the offsets, so a restart resumes it."""

    def __init__(self, key: bytes, partial: dict[str, dict[str, Any]], last: dict[str, str]) -> None:
        self.key = key
        self.partial = partial  # segment stem -> facts so far
        self.last = last  # producer -> hash of its latest digest

    def add(self, segment: str, start: int, end: int, raws: list[tuple[str, bytes]]) -> None:
        """``raws``: (doc id, raw document) of the delivered records at spool offsets [start, end).
        A batch seen again after a failed attempt (start before what was added) is skipped."""
        p = self.partial.get(segment)
        if p is not None and start < p["end"]:
            return
        for doc_id, raw in raws:
            chain = chain_of(raw)
            seq = _sequence(doc_id)
            if chain is None or seq is None:
                continue  # not a chained record (written by something else): not covered
            if p is None:
                p = self.partial[segment] = {"producer": doc_id.rsplit("-", 1)[0], "first_id": doc_id,
                                             "first_sequence": seq, "chain_start": chain[0], "count": 0, "end": 0}
            p["last_id"], p["last_sequence"], p["chain_head"] = doc_id, seq, chain[1]
            p["count"] += 1
        if p is not None:
            p["end"] = end

    def finish(self, segment: str) -> dict[str, Any] | None:
        """The signed digest of a fully shipped segment (None if it held no chained record).
        Nothing changes until :meth:`done` is called after the digest was stored."""
        p = self.partial.get(segment)
        if p is None:
            return None
        producer = p["producer"]
        doc: dict[str, Any] = {
            "@timestamp": dt.datetime.now(tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sidecar.digest.id": segment,
            "sidecar.producer.id": producer,
            "sidecar.digest.first_id": p["first_id"],
            "sidecar.digest.last_id": p["last_id"],
            "sidecar.digest.first_sequence": p["first_sequence"],
            "sidecar.digest.last_sequence": p["last_sequence"],
            "sidecar.digest.count": p["count"],
            "sidecar.digest.chain_start": p["chain_start"],
            "sidecar.digest.chain_head": p["chain_head"],
            "sidecar.digest.prev": self.last.get(producer, ""),
        }
        return sign(doc, self.key)

    def done(self, segment: str, doc: dict[str, Any]) -> None:
        self.partial.pop(segment, None)
        self.last[doc["sidecar.producer.id"]] = doc["sidecar.digest.hash"]
