"""Signing a document, the one way digests and ledger events share.

A document's ``hash`` is SHA-256 over its signed fields (all but the hash and the signature) in
canonical form, after a domain prefix; its ``signature`` is an HMAC-SHA256 of the prefix and that
hash with the signing sub-key named by its ``key_id``. The prefix keeps the kinds of document apart:
a ledger event can never pass for a digest, nor the reverse (digests use the empty prefix).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from sidecar.audit._chain import canonical
from sidecar.audit._keys import IntegrityKey, KeyRing, hash_hex


@dataclass(frozen=True)
class SignedFields:
    """Where a kind of document keeps its hash, signature and key id, and the domain it is signed in."""

    hash: str
    signature: str
    key_id: str
    domain: bytes = b""
    name: str = "document"  # what the document is called in a problem

    def hash_of(self, doc: dict[str, Any]) -> str:
        return hash_hex(self.domain + canonical({k: v for k, v in doc.items() if k not in (self.hash, self.signature)}))

    def _mac(self, key: IntegrityKey, doc_hash: str) -> str:
        return hmac.digest(key.signing, self.domain + doc_hash.encode("ascii"), "sha256").hex()

    def sign(self, doc: dict[str, Any], key: IntegrityKey) -> dict[str, Any]:
        """Sets the key id, hash and signature of ``doc`` (in place) and returns it."""
        doc[self.key_id] = key.key_id
        doc.pop(self.hash, None)
        doc.pop(self.signature, None)
        doc_hash = self.hash_of(doc)
        doc[self.hash] = doc_hash
        doc[self.signature] = self._mac(key, doc_hash)
        return doc

    def problem(self, doc: dict[str, Any], keys: KeyRing) -> str | None:
        """None when ``doc`` is signed by a key of the ring and unchanged since; else why not."""
        key = keys.get(doc.get(self.key_id))
        if key is None:
            return f"signed with a key not in the ring ({str(doc.get(self.key_id))[:20]!r})"
        try:
            doc_hash = self.hash_of(doc)
        except (TypeError, ValueError, UnicodeError):
            return f"unreadable {self.name}"
        if doc.get(self.hash) != doc_hash or not hmac.compare_digest(str(doc.get(self.signature)),
                                                                      self._mac(key, doc_hash)):
            return "signature does not verify"
        return None
