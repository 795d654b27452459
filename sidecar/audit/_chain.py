"""The per-producer hash chain carried by every record.

The spool writer appends two fields to each document, last:
``"sidecar.chain.prev"`` (the previous record's hash, ``""`` for a producer's first record)
and ``"sidecar.chain.hash"`` = SHA-256 over ``prev`` and the document bytes before these
fields. The verifier rebuilds those bytes from any store by re-serialising the parsed
document without the two fields (key order is preserved by every store we write to).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

PREV = "sidecar.chain.prev"
HASH = "sidecar.chain.hash"
_TAIL = re.compile(rb',"sidecar\.chain\.prev":"([0-9a-f]{64}|)","sidecar\.chain\.hash":"([0-9a-f]{64})"\}$')


def link(prev: str, body: bytes) -> str:
    return hashlib.sha256(prev.encode("ascii") + b"\n" + body).hexdigest()


def chain_line(line: bytes, prev: str) -> tuple[bytes, str]:
    """``line`` is a serialized JSON object; returns it with the chain fields and its hash."""
    h = link(prev, line)
    return line[:-1] + b',"' + PREV.encode() + b'":"' + prev.encode() + b'","' + HASH.encode() + b'":"' + \
        h.encode() + b'"}', h


def chain_of(raw: bytes) -> tuple[str, str] | None:
    """(prev, hash) read from the end of a spooled line without parsing it."""
    m = _TAIL.search(raw)
    return (m.group(1).decode(), m.group(2).decode()) if m else None


def body_of(doc: dict[str, Any]) -> bytes:
    """The bytes the hash covers, rebuilt from a parsed document."""
    rest = {k: v for k, v in doc.items() if k not in (PREV, HASH)}
    return json.dumps(rest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check(doc: dict[str, Any]) -> bool:
    """The document's own hash matches its content and its stated predecessor."""
    prev, h = doc.get(PREV), doc.get(HASH)
    return isinstance(prev, str) and isinstance(h, str) and link(prev, body_of(doc)) == h
