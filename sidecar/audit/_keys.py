"""Integrity keys: one secret role (``integrity``), split into sub-keys that never serve two purposes.

``sidecar.redact`` derives two roles from the configured secret with distinct labels: the pseudonym
key (placeholders, fingerprints) and the integrity key handed here. From the integrity key come:

* the record-chain key (HMAC-SHA256 over a record's field digests and its predecessor's hash);
* the field key (keyed digests of each field, so an erased field's digest reveals nothing);
* the digest-signing key (signatures of segment digests and chain markers);
* the key id, stamped on every record and digest so that after a rotation the verifier picks the
  right key from its ring.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

_LABEL = b"llm-audit-sidecar/integrity/v2/"


def _sub(key: bytes, role: str) -> bytes:
    return hmac.digest(key, _LABEL + role.encode("ascii"), "sha256")


class IntegrityKey:
    """The sub-keys of one integrity key (see the module docstring)."""

    __slots__ = ("chain", "fields", "fields_hasher", "key_id", "signing")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("an integrity key must not be empty")
        self.chain = _sub(key, "record-chain")
        self.fields = _sub(key, "record-fields")
        self.fields_hasher = hashlib.blake2b(key=self.fields, digest_size=32)  # copied per field: cheaper
        self.signing = _sub(key, "digest-signing")
        self.key_id = _sub(key, "key-id").hex()[:16]

    def __repr__(self) -> str:  # never the key material
        return f"IntegrityKey(key_id={self.key_id!r})"


class KeyRing:
    """The current integrity key first, then older ones still needed to verify what they signed."""

    def __init__(self, keys: Iterable[IntegrityKey]) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise ValueError("a key ring needs at least one key")
        self._by_id = {k.key_id: k for k in reversed(self.keys)}

    @property
    def current(self) -> IntegrityKey:
        return self.keys[0]

    def get(self, key_id: object) -> IntegrityKey | None:
        return self._by_id.get(key_id) if isinstance(key_id, str) else None

    @property
    def ids(self) -> list[str]:
        return [k.key_id for k in self.keys]


def hash_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
