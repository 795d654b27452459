"""Which record fields are written as they are, and which pass the redactor.

Every string the sidecar writes passes the redactor, except the fields listed in ``SAFE``, whose
values are safe by construction (ids and hashes made here, times, enums, the operator's own
configuration). ``REDACTED_WHERE_BUILT`` fields pass a redactor made for their shape (a URL, a
body) where they are built. Any other string field, including one added to the schema later,
goes through ``RecordBuilder``'s final pass (``REDACTED``), cut to its bound after redaction.
A test walks the schema and fails for a string field that is in none of these sets.
"""

from __future__ import annotations

__all__ = ["BOUNDS", "REDACTED", "REDACTED_WHERE_BUILT", "SAFE"]

#: field -> why its value is safe to write as it is
SAFE: dict[str, str] = {
    "event.id": "producer id and sequence number, made here",
    "@timestamp": "a time formatted here",
    "event.outcome": "success or failure",
    "sidecar.producer.id": "random id made here",
    "service.name": "the operator's configuration",
    "host.name": "this machine's name",
    "trace.id": "hex id made by the tracer",
    "span.id": "hex id made by the tracer",
    "sidecar.credential.fingerprint": "keyed HMAC, never the key",
    "sidecar.credential.location": "header or query",
    "gen_ai.provider.name": "from the endpoint table or the operator's host rules",
    "sidecar.api_format": "from the endpoint table",
    "gen_ai.operation.name": "from the endpoint table",
    "sidecar.http.client": "httpx, httpx2 or requests",
    "url.scheme": "http, https or other (set from a fixed list)",
    "sidecar.retry.group": "keyed HMAC",
    "sidecar.transport.phase": "one of a fixed list",
    "sidecar.stream.outcome": "one of a fixed list",
    "sidecar.content.note": "notes made here from a fixed vocabulary",
    "sidecar.redaction.counts": "rule names (a fixed set) and numbers",
    "sidecar.chain.prev": "a hash",
    "sidecar.chain.hash": "a hash",
    "sidecar.chain.key_id": "id of the integrity key, derived from it by HMAC here",
    "sidecar.cost.source": "prices_file or the price database's name and version",
}

#: fields redacted where they are built, by a redactor made for their shape
REDACTED_WHERE_BUILT: dict[str, str] = {
    "url.full": "Redactor.redact_url (credentials, secret parameters, then the content rules)",
    "error.message": "Redactor.redact_bounded",
    "sidecar.request.content": "Redactor.redact_json / redact_bounded",
    "sidecar.response.content": "Redactor.redact_json / redact_bounded",
    "gen_ai.system_instructions": "Redactor.redact_json, then every string cut to the content budget",
    "gen_ai.input.messages": "Redactor.redact_json, then every string cut to the content budget",
    "gen_ai.output.messages": "Redactor.redact_json, then every string cut to the content budget",
    "gen_ai.tool.definitions": "Redactor.redact_json, then every string cut to the content budget",
}

#: fields (or list items) redacted by the final pass, with their bound in characters
REDACTED: dict[str, int] = {
    "user.id": 256,
    "gen_ai.conversation.id": 256,
    "gen_ai.request.model": 256,
    "gen_ai.request.stop_sequences": 256,
    "gen_ai.response.id": 256,
    "gen_ai.response.model": 256,
    "gen_ai.response.finish_reasons": 64,
    "http.request.method": 32,
    "url.path": 2048,
    "server.address": 256,
    "error.type": 128,
    "error.code": 256,
    "sidecar.response.content_encoding": 64,
}

#: bound of a string field that is in none of the sets above (one added later)
DEFAULT_BOUND = 256
BOUNDS = REDACTED
