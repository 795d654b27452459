"""The last steps: field values -> the record document (schema names and order) -> the spool line."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from sidecar.record.schema import SCHEMA_VERSION, AuditRecord

_SURROGATE = re.compile("[\ud800-\udfff]")

# (attribute, document name) in schema order. Building the document straight from these skips
# pydantic's construct/dump (~30 us a record); tests check built documents equal the model's dump.
_FIELDS = tuple((name, info.alias or name) for name, info in AuditRecord.model_fields.items())
_NAMES = frozenset(name for name, _ in _FIELDS)
_ORDER = {alias: n for n, (_, alias) in enumerate(_FIELDS)}
_DEFAULTS = {"schema_version": SCHEMA_VERSION}


def document(**values: Any) -> dict[str, Any]:
    """The document of a record: schema names in schema order, ``None`` fields left out."""
    unknown = values.keys() - _NAMES
    if unknown:
        raise TypeError(f"not record fields: {sorted(unknown)}")
    values = {**_DEFAULTS, **values}
    return {alias: v for name, alias in _FIELDS if (v := values.get(name)) is not None}


def with_counts(doc: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """``doc`` built with ``redaction_counts=counts`` (filled since) and a ``redaction_total``
    placeholder: the total set, or both left out when nothing was redacted. They sit in their
    schema place already: no sort."""
    if counts:
        doc["sidecar.redaction.total"] = sum(counts.values())
    else:
        doc.pop("sidecar.redaction.counts", None)
        doc.pop("sidecar.redaction.total", None)
    return doc


def reorder(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(doc.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))


def encode(doc: dict[str, Any]) -> bytes:
    """The spool line of ``doc``: strict JSON in UTF-8. orjson writes it when it can; what it refuses
    (a lone surrogate, an integer past 64 bits) and a top-level NaN or infinity (orjson would write
    null where the record leaves the field out) take the standard library's path."""
    if not any(isinstance(v, float) and not math.isfinite(v) for v in doc.values()):
        try:
            return orjson.dumps(doc)
        except TypeError:  # orjson.JSONEncodeError
            pass
    return _encode_std(doc)


def _encode_std(doc: dict[str, Any]) -> bytes:
    """Lone surrogates (from ``\\udc00`` escapes in a body) cannot be written as UTF-8: they become
    U+FFFD, and the record says so."""
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or an infinity: not JSON, and the index would refuse the record
        doc = {k: _null_non_finite(v) for k, v in doc.items() if not (isinstance(v, float) and not math.isfinite(v))}
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        note = doc.get("sidecar.content.note")
        doc["sidecar.content.note"] = f"{note},lone_surrogates_replaced" if note else "lone_surrogates_replaced"
        doc = reorder(doc)
        return _SURROGATE.sub("\ufffd", json.dumps(doc, ensure_ascii=False, separators=(",", ":"))).encode("utf-8")


def _null_non_finite(value: Any) -> Any:
    """``value`` with NaN and infinities inside it as null (as orjson writes them): a field is left
    out for its own NaN, a structure (messages, tool arguments) is kept without them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _null_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_non_finite(v) for v in value]
    return value
