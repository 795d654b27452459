"""Signed digests: one per shipped spool segment, chained across all producers (CloudTrail-style).

A segment digest states which records a segment held (producer, first and last sequence and id,
count, the chain hash before the first and after the last). Every digest a sidecar writes, of any
producer, also carries its place in that sidecar's own chain: ``sidecar.chain.id`` (the sidecar
instance), ``sidecar.digest.seq`` (1, 2, 3...) and ``sidecar.digest.prev`` (the previous digest's
hash). Removing a producer's records *and* its digests from the middle therefore breaks a signed
link. A chain begins with a signed ``start`` marker; a sidecar that lost its checkpoint writes a
signed ``reset`` marker (linked to the newest digest it finds in the store, when it finds one), so
the verifier reports the discontinuity once instead of a forged digest forever.

Each digest's ``hash`` is SHA-256 over its signed fields in canonical form, and its ``signature``
an HMAC of that hash with the signing sub-key named by ``key_id`` (see _keys.py).
A segment digest is deterministic (its time is its last record's), so a digest written again after
a crash is byte-for-byte the one already stored.
"""

from __future__ import annotations

import secrets
from typing import Any

from sidecar.audit._chain import chain_of
from sidecar.audit._keys import IntegrityKey, KeyRing
from sidecar.audit._signing import SignedFields
from sidecar.clock import format_utc

KIND = "sidecar.digest.kind"  # segment | start | reset
CHAIN_ID = "sidecar.chain.id"
SEQ = "sidecar.digest.seq"
PREV = "sidecar.digest.prev"
HASH = "sidecar.digest.hash"
SIGNATURE = "sidecar.digest.signature"
KEY_ID = "sidecar.digest.key_id"


_SIGNED = SignedFields(hash=HASH, signature=SIGNATURE, key_id=KEY_ID, name="digest")


def sign(doc: dict[str, Any], key: IntegrityKey) -> dict[str, Any]:
    return _SIGNED.sign(doc, key)


def signature_problem(doc: dict[str, Any], keys: KeyRing) -> str | None:
    """None for a genuine digest; else why not."""
    return _SIGNED.problem(doc, keys)


def _sequence(doc_id: str) -> int | None:
    tail = doc_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def new_chain_id() -> str:
    return secrets.token_hex(8)


class DigestBuilder:
    """Accumulates a segment's chain facts batch by batch and links digests into the sidecar chain.

    Its state lives in the checkpoint (``partial`` per segment, ``chain`` = {id, seq, head}), saved
    atomically with the offsets, so a restart resumes it. ``reset_reason``: the checkpoint was lost
    or unreadable; the next digest written is preceded by a signed reset marker."""

    def __init__(self, key: IntegrityKey, partial: dict[str, dict[str, Any]], chain: dict[str, Any],
                 reset_reason: str | None = None) -> None:
        self.key = key
        self.partial = partial  # segment stem -> facts so far
        self.chain = chain  # {"id": sidecar chain id, "seq": last seq written, "head": hash of that digest}
        self.reset_reason = reset_reason

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
                continue  # not a chained record (written by something else): verify reports it
            if p is None:
                p = self.partial[segment] = {"producer": doc_id.rsplit("-", 1)[0], "first_id": doc_id,
                                             "first_sequence": seq, "chain_start": chain[0], "count": 0, "end": 0}
            p["last_id"], p["last_sequence"], p["chain_head"] = doc_id, seq, chain[1]
            p["ts"] = _timestamp_of(raw) or p.get("ts") or format_utc()
            p["count"] += 1
        if p is not None:
            p["end"] = end

    def needs_marker(self) -> bool:
        return not self.chain.get("id") or self.reset_reason is not None

    def marker(self, found_head: dict[str, Any] | None) -> dict[str, Any]:
        """The signed marker that begins a chain (``start``) or continues it after a lost checkpoint
        (``reset``). ``found_head``: the newest digest of this chain found in the store (reset only)."""
        reset = self.reset_reason is not None and bool(self.chain.get("id"))
        # A reset that finds nothing of its chain in the store cannot continue it: it begins a new chain
        # that names the old one, so the two never hold two digests with the same seq.
        chain_id = str(self.chain["id"]) if reset and found_head else new_chain_id()
        doc: dict[str, Any] = {
            "@timestamp": format_utc(),
            "sidecar.digest.id": f"{'reset' if reset else 'start'}-{secrets.token_hex(8)}",
            KIND: "reset" if reset else "start",
            CHAIN_ID: chain_id,
            SEQ: int(found_head[SEQ]) + 1 if found_head else 1,
            PREV: str(found_head[HASH]) if found_head else "",
        }
        if reset:
            doc["sidecar.digest.reason"] = self.reset_reason
            if chain_id != self.chain["id"]:
                doc["sidecar.digest.reset_of"] = self.chain["id"]
        return sign(doc, self.key)

    def finish(self, segment: str) -> dict[str, Any] | None:
        """The signed digest of a fully shipped segment (None if it held no chained record).
        Nothing changes until :meth:`done` is called after the digest was stored."""
        p = self.partial.get(segment)
        if p is None:
            return None
        doc: dict[str, Any] = {
            "@timestamp": p["ts"],
            "sidecar.digest.id": segment,
            KIND: "segment",
            CHAIN_ID: self.chain["id"],
            SEQ: int(self.chain["seq"]) + 1,
            PREV: self.chain["head"],
            "sidecar.producer.id": p["producer"],
            "sidecar.digest.first_id": p["first_id"],
            "sidecar.digest.last_id": p["last_id"],
            "sidecar.digest.first_sequence": p["first_sequence"],
            "sidecar.digest.last_sequence": p["last_sequence"],
            "sidecar.digest.count": p["count"],
            "sidecar.digest.chain_start": p["chain_start"],
            "sidecar.digest.chain_head": p["chain_head"],
        }
        return sign(doc, self.key)

    def done(self, doc: dict[str, Any]) -> None:
        """``doc`` (a marker or a segment digest) is stored: it is the chain's new head."""
        if doc[KIND] == "segment":
            self.partial.pop(str(doc["sidecar.digest.id"]), None)
        else:
            self.reset_reason = None
        self.chain.update({"id": doc[CHAIN_ID], "seq": doc[SEQ], "head": doc[HASH]})


def head_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The anchor line for a digest: what ``sidecar audit verify --anchor`` checks later."""
    return {"sidecar.chain.id": doc[CHAIN_ID], "sidecar.digest.seq": doc[SEQ], "sidecar.digest.hash": doc[HASH],
            "sidecar.digest.id": doc["sidecar.digest.id"], "@timestamp": doc["@timestamp"]}


def _timestamp_of(raw: bytes) -> str | None:
    i = raw.find(b'"@timestamp":"')
    if i < 0 or i > 400:
        return None
    start = i + len(b'"@timestamp":"')
    end = raw.find(b'"', start)
    return raw[start:end].decode("ascii", "replace") if 0 < end - start < 40 else None
