"""Verified erasure: which fields go, which records match, and the erased form of a record.

An erased field leaves the document; its keyed field digest (see _chain.py) goes into
``sidecar.erased``, so the record's chain hash still verifies and nobody without the key can put a
value back. What the audit needs stays: time, ids, model, status, tokens, cost, durations, the chain.

Field classes (``sidecar erase --fields``):

* ``content``: what was said: request and response bodies, structured messages, system
  instructions, tool definitions, provider error messages;
* ``personal``: who said it: user id and name, e-mail, the API key fingerprint, conversation id,
  client address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sidecar.audit._chain import ERASED, KEY_ID, field_digest
from sidecar.audit._keys import KeyRing
from sidecar.errors import SidecarError

FIELD_CLASSES: dict[str, tuple[str, ...]] = {
    "content": ("sidecar.request.content", "sidecar.response.content", "error.message", "gen_ai.input.messages",
                "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions",
                "gen_ai.prompt", "gen_ai.completion"),
    "personal": ("user.id", "user.name", "user.email", "sidecar.credential.fingerprint", "gen_ai.conversation.id",
                 "client.address"),
}
SELECTORS = {"user": "user.id", "key_fingerprint": "sidecar.credential.fingerprint",
             "conversation": "gen_ai.conversation.id", "record": "event.id"}
PSEUDONYM = re.compile(r"<[A-Z][A-Z0-9_]{0,40}:[0-9a-f]{8}>")
ERASED_VIEW = "<erased>"


class ErasureError(SidecarError):
    """A record that cannot be erased verifiably (its key is not in the ring): one line, exit 1."""


def field_names(classes: Iterable[str]) -> list[str]:
    names: list[str] = []
    for c in classes:
        if c not in FIELD_CLASSES:
            raise ValueError(f"unknown field class {c!r}: use " + " or ".join(FIELD_CLASSES))
        names.extend(FIELD_CLASSES[c])
    return names


@dataclass(frozen=True, slots=True)
class Selector:
    """Exactly one of: the field in SELECTORS it names, equal to ``value``."""

    by: str  # user | key_fingerprint | conversation | record
    value: str

    @property
    def field(self) -> str:
        return SELECTORS[self.by]

    def matches(self, doc: dict[str, Any]) -> bool:
        return doc.get(self.field) == self.value

    def describe(self) -> str:
        return f"{self.by.replace('_', '-')} {self.value}"


def erase_doc(doc: dict[str, Any], names: Iterable[str], keys: KeyRing) -> tuple[dict[str, Any], list[str]]:
    """The erased form of ``doc`` and the fields removed (none: ``doc`` unchanged)."""
    present = [n for n in names if n in doc]
    if not present:
        return doc, []
    key = keys.get(doc.get(KEY_ID))
    if key is None:
        raise ErasureError(f"record {doc.get('event.id')} was made with key {str(doc.get(KEY_ID))[:20]!r}, not in the "
                           "key ring: add the older secret with --keyring so its erased fields keep their digests")
    out = {k: v for k, v in doc.items() if k not in present}
    kept = dict(doc.get(ERASED) or {}) if isinstance(doc.get(ERASED), dict) else {}
    for name in present:
        kept[name] = field_digest(key, name, doc[name])
    out[ERASED] = dict(sorted(kept.items()))
    return out, present


def pseudonyms_in(doc: dict[str, Any], names: Iterable[str]) -> set[str]:
    """The pseudonym tags (``<TYPE:hmac8>``) in the given fields: the subject's, to deny in views."""
    found: set[str] = set()
    for n in names:
        value = doc.get(n)
        if value is not None:
            found.update(PSEUDONYM.findall(value if isinstance(value, str) else repr(value)))
    return found


def mask_denied(value: Any, tags: set[str]) -> Any:
    """``value`` with every denied pseudonym tag shown as ``<erased>`` (strings, lists, objects)."""
    if not tags:
        return value
    if isinstance(value, str):
        return PSEUDONYM.sub(lambda m: ERASED_VIEW if m.group(0) in tags else m.group(0), value)
    if isinstance(value, list):
        return [mask_denied(v, tags) for v in value]
    if isinstance(value, dict):
        return {k: mask_denied(v, tags) for k, v in value.items()}
    return value
