"""The spool document: one record line as the reader hands it on.

A producer writes each record as one JSON line whose fixed prefix carries the record's id and time; the
reader returns the line unchanged with those two values, and the shipper passes it to a sink as is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpoolDoc:
    """One spooled record, as the shipper hands it to a sink.

    ``raw`` is the JSON document exactly as written by the application (no newline);
    ``doc_id`` and ``day`` (``YYYY.MM.DD`` of ``@timestamp``) are read from its fixed prefix.
    """

    doc_id: str
    day: str
    raw: bytes
