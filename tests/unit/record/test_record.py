"""The record schema is the single source of truth for the docs and the README."""

from __future__ import annotations

import json
import pathlib

from sidecar.config import AppSettings, ShipperSettings
from sidecar.record import AuditRecord, field_types, markdown_fields

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_document_key_order_and_names() -> None:
    r = AuditRecord(event_id="p-1", timestamp="2026-11-25T00:00:00.000000Z", provider="openai",
                    request_content="x", input_tokens=3)
    raw = r.to_json()
    assert raw.startswith('{"event.id":"p-1","@timestamp":"2026-11-25T00:00:00.000000Z"')
    doc = json.loads(raw)
    assert doc["gen_ai.usage.input_tokens"] == 3
    assert "gen_ai.usage.output_tokens" not in doc  # empty fields are left out
    assert list(doc)[-1] == "sidecar.request.content"  # content last


def test_every_field_has_a_storage_type_and_a_description() -> None:
    types = field_types()
    assert set(types.values()) <= {"keyword", "text", "date", "long", "double", "boolean", "object", "json"}
    assert all(info.description for info in AuditRecord.model_fields.values())
    for name in ("gen_ai.request.model", "gen_ai.usage.input_tokens", "http.response.status_code", "error.type",
                 "user.id", "trace.id", "url.full", "server.address"):
        assert name in types


def test_docs_record_md_matches_the_schema() -> None:
    text = (REPO / "docs" / "record.md").read_text()
    assert text.endswith(markdown_fields()), "docs/record.md is stale: regenerate it from markdown_fields()"


def test_readme_lists_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    every = {**AppSettings.model_fields, **ShipperSettings.model_fields}
    missing = [f"SIDECAR_{n.upper()}" for n in every if f"`SIDECAR_{n.upper()}`" not in readme]
    assert missing == []
    assert readme.count("make demo") >= 1 and readme.count("make test") >= 1
