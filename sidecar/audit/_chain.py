"""The per-producer keyed chain carried by every record, committing to each field separately.

The spool writer appends three fields to each document, last::

    "sidecar.chain.key_id": id of the integrity key (see _keys.py)
    "sidecar.chain.prev":   the previous record's hash ("" for a producer's first record)
    "sidecar.chain.hash":   HMAC(chain key, "v2" | prev | root)

``root`` is SHA-256 over the sorted list of ``name NUL field-digest`` lines of every field but
``prev`` and ``hash``, and a field digest is keyed BLAKE2b-256 (field key) over ``name NUL`` and the
value's canonical bytes: a type tag and the UTF-8 text for strings, the decimal or ``repr`` form for
numbers, and sorted compact JSON for lists and objects.
Committing per field (not to one serialized blob) lets a later erasure replace a content field
by its digest (``"sidecar.erased": {name: digest}``) and the chain still verify, while nobody
without the key can compute the digest of a value, so nothing can be swapped in. Stores may
reorder keys or nested keys: the canonical form sorts them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from sidecar.audit._keys import IntegrityKey, KeyRing

PREV = "sidecar.chain.prev"
HASH = "sidecar.chain.hash"
KEY_ID = "sidecar.chain.key_id"
ERASED = "sidecar.erased"  # {field name: field digest} of erased fields (their values are gone)
_NOT_FIELDS = (PREV, HASH, ERASED)
_TAIL = re.compile(rb',"sidecar\.chain\.prev":"([0-9a-f]{64}|)","sidecar\.chain\.hash":"([0-9a-f]{64})"\}$')


def canonical(value: Any) -> bytes:
    """Canonical JSON (sorted keys, compact), for digests and signed documents."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8",
                                                                                             "surrogatepass")


def _value_bytes(value: Any) -> bytes:
    # Cheap forms for the common scalar types (the writer hashes every field of every record).
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bool) or value is None:
        return b"j" + canonical(value)
    if isinstance(value, int):
        return b"i" + str(value).encode("ascii")
    if isinstance(value, float):
        return b"f" + repr(value).encode("ascii")
    return b"j" + canonical(value)


def field_digest(key: IntegrityKey, name: str, value: Any) -> str:
    data = name.encode("utf-8", "surrogatepass") + b"\0" + _value_bytes(value)
    return hashlib.blake2b(data, key=key.fields, digest_size=32).hexdigest()


def field_digests(doc: dict[str, Any], key: IntegrityKey) -> dict[str, str]:
    """Every committed field's digest; an erased field's comes from the ``sidecar.erased`` map."""
    erased = doc.get(ERASED)
    out = {name: field_digest(key, name, value) for name, value in doc.items() if name not in _NOT_FIELDS}
    if isinstance(erased, dict):
        out.update({str(k): str(v) for k, v in erased.items()})
    return out


def root_of(digests: dict[str, str]) -> bytes:
    lines = "".join(f"{name}\0{d}\n" for name, d in sorted(digests.items()))
    return hashlib.sha256(lines.encode("utf-8", "surrogatepass")).digest()


def link(key: IntegrityKey, prev: str, root: bytes) -> str:
    return hmac.digest(key.chain, b"v2\n" + prev.encode("ascii") + b"\n" + root, "sha256").hex()


def chain_line(line: bytes, prev: str, key: IntegrityKey) -> tuple[bytes, str]:
    """``line`` is a serialized JSON object (without chain fields); returns it chained, and its hash."""
    doc = json.loads(line)
    doc[KEY_ID] = key.key_id
    h = link(key, prev, root_of(field_digests(doc, key)))
    tail = f',"{KEY_ID}":"{key.key_id}","{PREV}":"{prev}","{HASH}":"{h}"}}'.encode("ascii")
    return line.rstrip()[:-1] + tail, h


def chain_of(raw: bytes) -> tuple[str, str] | None:
    """(prev, hash) read from the end of a spooled line without parsing it."""
    m = _TAIL.search(raw)
    return (m.group(1).decode(), m.group(2).decode()) if m else None


def check(doc: dict[str, Any], keys: KeyRing) -> str | None:
    """None when the document's hash matches its fields and stated predecessor under the key it
    names; otherwise why not (``unknown key`` when the ring lacks its key, ``mismatch``)."""
    prev, h = doc.get(PREV), doc.get(HASH)
    if not isinstance(prev, str) or not isinstance(h, str):
        return "mismatch"
    key = keys.get(doc.get(KEY_ID))
    if key is None:
        return f"unknown key {str(doc.get(KEY_ID))[:20]!r}"
    try:
        expected = link(key, prev, root_of(field_digests(doc, key)))
    except (TypeError, ValueError, UnicodeError):
        return "mismatch"
    return None if hmac.compare_digest(expected, h) else "mismatch"
