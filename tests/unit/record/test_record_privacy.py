"""The choke point: every string field of the record is either safe by construction or redacted."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from capture_factory import builder, capture

from sidecar.record import AuditRecord
from sidecar.record.build import document
from sidecar.record.privacy import REDACTED, REDACTED_WHERE_BUILT, SAFE

SECRET = "AKIAIOSFODNN7EXAMPL3"  # an AWS access key id shape
MAIL = "someone@example.org"


def _holds_text(annotation: Any) -> bool:
    """True for str, list[str], str | None ... (any string the document can hold)."""
    if annotation is str:
        return True
    return any(_holds_text(a) for a in typing.get_args(annotation))


STRING_FIELDS = {info.alias or name: name for name, info in AuditRecord.model_fields.items()
                 if _holds_text(info.annotation)}


def test_every_string_field_is_redacted_or_allow_listed() -> None:
    classified = set(SAFE) | set(REDACTED) | set(REDACTED_WHERE_BUILT)
    missing = sorted(set(STRING_FIELDS) - classified)
    assert not missing, f"string fields neither redacted nor allow-listed as safe: {missing}"
    # and the sets are disjoint and name real fields only
    assert not (set(SAFE) & set(REDACTED)) and not (set(SAFE) & set(REDACTED_WHERE_BUILT))
    assert not (set(REDACTED) & set(REDACTED_WHERE_BUILT))
    aliases = {info.alias or name for name, info in AuditRecord.model_fields.items()}
    assert classified <= aliases, sorted(classified - aliases)


@pytest.mark.parametrize("alias", sorted(REDACTED))
def test_final_pass_redacts_every_redacted_field(alias: str) -> None:
    b = builder()
    name = STRING_FIELDS[alias]
    annotation = AuditRecord.model_fields[name].annotation
    value: Any = [f"x {SECRET} {MAIL}"] if "list" in str(annotation) else f"x {SECRET} {MAIL}"
    doc = document(event_id="p0-1", timestamp="2026-01-01T00:00:00.000000Z", **{name: value})
    counts: dict[str, int] = {}
    b.redaction.final_pass(doc, counts)
    raw = json.dumps(doc)
    assert SECRET not in raw and MAIL not in raw and "<AWS_ACCESS_KEY:" in raw
    # counts say what was kept (a short bound keeps the first placeholder only)
    assert counts["AWS_ACCESS_KEY"] == 1 and counts.get("EMAIL", 0) == raw.count("<EMAIL:")


def test_a_string_field_outside_every_list_is_redacted_too() -> None:
    """Default deny: a key the lists do not know (a field added later) still goes through the redactor."""
    doc = {"event.id": "p0-1", "some.new.field": f"k {SECRET}"}
    builder().redaction.final_pass(doc, {})
    assert SECRET not in doc["some.new.field"]


def test_a_built_record_leaks_nothing_from_url_model_params_and_errors() -> None:
    tenant = "tenant.admin%40example.org"
    url = f"https://gw.example.com/{MAIL}/v1/chat/completions?notify={tenant}&key=AIzaSy{'B' * 33}"
    body = json.dumps({"model": f"ft:gpt-4o:{MAIL}:x", "stop": [f"password={SECRET}", "4111 1111 1111 1111"],
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    err = json.dumps({"error": {"code": f"bad {MAIL}", "message": "x" * 4090 + " " + SECRET}}).encode()
    for capture_content in (True, False):
        cap = capture(url, body=body, response=err, status=400)
        doc = builder(capture_content=capture_content).build(cap, 1)
        raw = json.dumps(doc, ensure_ascii=False)
        AuditRecord.model_validate(doc)
        for leak in (MAIL, "tenant.admin", SECRET, SECRET[:19], "AIzaSy", "4111 1111", "someone"):
            assert leak not in raw, (leak, capture_content)
        assert doc["error.message"].endswith(">") or "<" not in doc["error.message"][-30:]
