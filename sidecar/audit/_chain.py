"""The per-producer keyed chain carried by every record, committing to each field separately.

The spool writer appends three fields to each document, last::

    "sidecar.chain.key_id": id of the integrity key (see _keys.py)
    "sidecar.chain.prev":   the previous record's hash ("" for a producer's first record)
    "sidecar.chain.hash":   HMAC(chain key, "v2" | prev | root)

``root`` is SHA-256 over ``len(name) name field-digest`` of every field but ``prev`` and ``hash``,
in name order, and a field digest is keyed BLAKE2b-256 (field key) over ``name NUL`` and the
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
    t = type(value)
    if t is str:
        return b"s" + str.encode(value, "utf-8", "surrogatepass")
    if t is int:
        return b"i" + str(value).encode("ascii")
    if t is float:
        return b"f" + repr(value).encode("ascii")
    return b"j" + canonical(value)  # bool, None, lists, objects (and int/str subclasses)


def _digest(key: IntegrityKey, name_bytes: bytes, value: Any) -> bytes:
    h = key.fields_hasher.copy()
    h.update(name_bytes + b"\0" + _value_bytes(value))
    return h.digest()


def field_digest(key: IntegrityKey, name: str, value: Any) -> str:
    """The keyed digest of one field, as kept in ``sidecar.erased`` when the field is erased."""
    return _digest(key, name.encode("utf-8", "surrogatepass"), value).hex()


def _root(doc: dict[str, Any], key: IntegrityKey) -> bytes:
    """SHA-256 over the fields' digests in name order, each as ``len(name) name digest``."""
    erased = doc.get(ERASED)
    kept = {str(k): bytes.fromhex(str(v)) for k, v in erased.items()} if isinstance(erased, dict) else {}
    names = sorted(doc.keys() | kept.keys()) if kept else sorted(doc)
    base, parts = key.fields_hasher, []
    for name in names:
        if name in _NOT_FIELDS:
            continue
        nb = name.encode("utf-8", "surrogatepass")
        if name in kept:
            d = kept[name]
        else:
            h = base.copy()
            h.update(nb + b"\0" + _value_bytes(doc[name]))
            d = h.digest()
        parts.append(len(nb).to_bytes(4, "big") + nb + d)
    return hashlib.sha256(b"".join(parts)).digest()


def link(key: IntegrityKey, prev: str, root: bytes) -> str:
    return hmac.digest(key.chain, b"v2\n" + prev.encode("ascii") + b"\n" + root, "sha256").hex()


def chain_line(line: bytes, prev: str, key: IntegrityKey) -> tuple[bytes, str]:
    """``line`` is a serialized JSON object (without chain fields); returns it chained, and its hash."""
    doc = json.loads(line)
    doc[KEY_ID] = key.key_id
    h = link(key, prev, _root(doc, key))
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
        expected = link(key, prev, _root(doc, key))
    except (TypeError, ValueError, UnicodeError):
        return "mismatch"
    return None if hmac.compare_digest(expected, h) else "mismatch"
