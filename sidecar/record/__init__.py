"""The audit record: its one schema, the facts captured around a call, and the build from those facts to
the redacted document written to the spool.

Only the schema is imported here, so reading the schema (the index template generator, the docs) does not
pull in the build and its redactor."""

from sidecar.record.schema import SCHEMA_VERSION, AuditRecord, FieldType, field_types, markdown_fields

__all__ = ["SCHEMA_VERSION", "AuditRecord", "FieldType", "field_types", "markdown_fields"]
