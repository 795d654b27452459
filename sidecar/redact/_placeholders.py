"""Placeholders: ``<TYPE:hmac8>``, a keyed pseudonym of a value in its canonical form."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import unquote

from ._errors import RedactionError
from ._views import compat_fold

__all__ = ["TAG_CACHE", "Keyed"]

#: Entries kept in each per-instance memo (tags, short strings, key names) before it is emptied.
TAG_CACHE = 4096


def _canonical(type_name: str, value: str) -> str:
    """Canonical form hashed for a placeholder, so one number written two ways gets one tag."""
    if not value.isascii():
        value = compat_fold(value)  # full-width and other compatibility forms hash as ASCII
    if "%" in value and type_name != "SECRET":
        value = unquote(value)
    if type_name in ("CREDIT_CARD", "US_SSN"):
        return "".join(c for c in value if c.isdigit())
    if type_name == "PHONE":
        digits = "".join(c for c in value.split("x")[0].split("ext")[0] if c.isdigit())
        if digits.startswith("00"):
            digits = digits[2:]
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        return digits
    if type_name in ("IBAN", "CN_ID"):
        return value.replace(" ", "").upper()
    if type_name == "EMAIL":
        return value.lower()
    return value


class Keyed:
    """The keyed half of a redactor: tags for values, digests for other purposes, both remembered."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or not key:
            raise RedactionError("the HMAC key must be non-empty bytes")
        self._mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
        self._tags: dict[tuple[str, str], str] = {}
        self._derived: dict[str, Any] = {}

    def fingerprint(self, value: str) -> str:
        """The 8-hex keyed pseudonym of ``value`` alone (no normalization)."""
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()[:8]

    def placeholder(self, type_name: str, value: str) -> str:
        """``<TYPE:hmac8>`` for ``value`` (canonicalized by type first, see ``Redactor``)."""
        # The same values come back call after call (a user's e-mail in every turn, the request
        # echoed in the response): remember recent tags rather than re-hashing them.
        key = (type_name, value)
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) >= TAG_CACHE:
                self._tags.clear()
            tag = self._tags[key] = f"<{type_name}:{self.fingerprint(_canonical(type_name, value))}>"
        return tag

    def keyed_digest(self, purpose: str, data: bytes, size: int = 16) -> str:
        """Hex HMAC of ``data`` under a key derived for ``purpose`` (retry groups, cache keys):
        a value derived from content that nobody without the key can test guesses against."""
        derived = self._derived.get(purpose)
        if derived is None:
            mac = self._mac.copy()
            mac.update(b"\x00derive\x00" + purpose.encode())
            derived = self._derived[purpose] = hmac.new(mac.digest(), digestmod=hashlib.sha256)
        mac = derived.copy()
        mac.update(data)
        return mac.hexdigest()[:size]

