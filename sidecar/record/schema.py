"""The one audit record schema.

Every model call becomes one :class:`AuditRecord`. Its JSON form (dotted ECS and
``gen_ai.*`` names, ``None`` fields left out) is the document written to the spool,
indexed by Elasticsearch, stored by the embedded store and printed by
``sidecar query --json``. The Elasticsearch mapping is derived from the field
metadata below (see :func:`field_types`), so a new field needs one line here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# Storage type of each field, read by the index template generator and the docs.
# keyword: exact-match ids and labels; text: redacted free text (also a keyword sub-field);
# date, long, double, boolean: as named; object: counts by redaction type.
# json: structured GenAI messages, kept in the document but not indexed field by field
# (their keys are the callers' tool arguments: unbounded, and any depth).
FieldType = Literal["keyword", "text", "date", "long", "double", "boolean", "object", "json"]


def _f(alias: str, kind: FieldType, description: str) -> Any:
    return Field(default=None, alias=alias, json_schema_extra={"es_type": kind}, description=description)


class AuditRecord(BaseModel):
    """One model call, as an auditor sees it. Field order is the document's key order:
    ``event.id`` and ``@timestamp`` come first so the shipper can read them without parsing,
    and the (large) content fields come last so metric derivation can stop before them."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=False)

    event_id: str = Field(alias="event.id", json_schema_extra={"es_type": "keyword"},
                          description="Deterministic record id: producer id and sequence number.")
    timestamp: str = Field(alias="@timestamp", json_schema_extra={"es_type": "date"},
                           description="When the call started, RFC 3339 UTC with microseconds.")
    event_duration: int | None = _f("event.duration", "long", "Call duration in nanoseconds, to the end of the body.")
    event_outcome: str | None = _f("event.outcome", "keyword", "success or failure (ECS).")
    schema_version: int = Field(default=SCHEMA_VERSION, alias="sidecar.schema_version",
                                json_schema_extra={"es_type": "long"}, description="Version of this schema.")
    producer_id: str | None = _f("sidecar.producer.id", "keyword", "Random id of the writing process.")
    sequence: int | None = _f("sidecar.sequence", "long", "Position of the record in its producer's stream.")
    service_name: str | None = _f("service.name", "keyword", "The application's service name.")
    host_name: str | None = _f("host.name", "keyword", "Host the application runs on.")
    trace_id: str | None = _f("trace.id", "keyword", "Trace of the call's span, when tracing is on.")
    span_id: str | None = _f("span.id", "keyword", "The call's span.")
    user_id: str | None = _f("user.id", "keyword", "Caller identity from the context helper, a header or the body.")
    conversation_id: str | None = _f(
        "gen_ai.conversation.id", "keyword",
        "Conversation (session, thread): conversation_context(), the configured header, or the body's own "
        "field (OpenAI Responses conversation / previous_response_id), redacted.")
    credential_fingerprint: str | None = _f(
        "sidecar.credential.fingerprint", "keyword", "Keyed HMAC fingerprint of the API key sent; never the key."
    )
    credential_location: str | None = _f(
        "sidecar.credential.location", "keyword", "Where the key was sent: header or query."
    )
    provider: str | None = _f("gen_ai.provider.name", "keyword", "Model provider (OpenTelemetry GenAI names).")
    api_format: str | None = _f("sidecar.api_format", "keyword", "Wire format: openai, anthropic, gemini, palm, ollama")
    operation: str | None = _f("gen_ai.operation.name", "keyword", "chat, text_completion, embeddings, ...")
    request_model: str | None = _f("gen_ai.request.model", "keyword", "Model asked for, redacted.")
    request_max_tokens: int | None = _f("gen_ai.request.max_tokens", "long", "Output token limit asked for.")
    request_temperature: float | None = _f("gen_ai.request.temperature", "double", "Sampling temperature.")
    request_top_p: float | None = _f("gen_ai.request.top_p", "double", "Nucleus sampling.")
    request_top_k: float | None = _f("gen_ai.request.top_k", "double", "Top-k sampling.")
    request_stop_sequences: list[str] | None = _f("gen_ai.request.stop_sequences", "keyword",
                                                  "Stop sequences, redacted.")
    request_frequency_penalty: float | None = _f("gen_ai.request.frequency_penalty", "double", "Frequency penalty.")
    request_presence_penalty: float | None = _f("gen_ai.request.presence_penalty", "double", "Presence penalty.")
    request_seed: int | None = _f("gen_ai.request.seed", "long", "Sampling seed.")
    request_stream: bool | None = _f("gen_ai.request.stream", "boolean", "Whether a streamed response was asked for.")
    response_id: str | None = _f("gen_ai.response.id", "keyword", "Provider's id of the completion.")
    response_model: str | None = _f("gen_ai.response.model", "keyword", "Model that answered, redacted.")
    response_finish_reasons: list[str] | None = _f(
        "gen_ai.response.finish_reasons", "keyword", "Why generation stopped, one per choice."
    )
    input_tokens: int | None = _f("gen_ai.usage.input_tokens", "long", "Prompt tokens.")
    output_tokens: int | None = _f("gen_ai.usage.output_tokens", "long", "Completion tokens.")
    cache_read_input_tokens: int | None = _f(
        "gen_ai.usage.cache_read.input_tokens", "long", "Prompt tokens served from the provider's cache."
    )
    cache_creation_input_tokens: int | None = _f(
        "gen_ai.usage.cache_creation.input_tokens", "long", "Prompt tokens written to the provider's cache."
    )
    cost_usd: float | None = _f("sidecar.cost.usd", "double",
                                "Price of the call in USD from the price database or the prices file; "
                                "absent when the model's price is unknown.")
    cost_input_usd: float | None = _f("sidecar.cost.input_usd", "double",
                                      "Part of the cost for uncached input tokens.")
    cost_output_usd: float | None = _f("sidecar.cost.output_usd", "double",
                                       "Part of the cost for output tokens (reasoning included).")
    cost_cache_read_usd: float | None = _f("sidecar.cost.cache_read_usd", "double",
                                           "Part of the cost for input tokens read from the cache.")
    cost_cache_write_usd: float | None = _f("sidecar.cost.cache_write_usd", "double",
                                            "Part of the cost for input tokens written to the cache.")
    cost_source: str | None = _f("sidecar.cost.source", "keyword",
                                 "Where the price came from: prices_file or genai-prices <version>.")
    time_to_first_chunk: float | None = _f(
        "gen_ai.response.time_to_first_chunk", "double", "Seconds from the request to the first body byte."
    )
    http_method: str | None = _f("http.request.method", "keyword", "HTTP method.")
    url_full: str | None = _f("url.full", "keyword", "Request URL with credentials and secret parameters masked.")
    url_path: str | None = _f("url.path", "keyword", "Request path, redacted.")
    server_address: str | None = _f("server.address", "keyword", "Host called.")
    server_port: int | None = _f("server.port", "long", "Port called.")
    http_client: str | None = _f("sidecar.http.client", "keyword", "httpx, httpx2 or requests.")
    url_scheme: str | None = _f("url.scheme", "keyword", "http or https (TLS).")
    client_timeout: float | None = _f("sidecar.client.timeout", "double",
                                      "Read timeout the client had configured, in seconds (absent: unknown or none).")
    client_timeout_set: bool | None = _f("sidecar.client.timeout_set", "boolean",
                                         "Whether the client had any timeout configured (when it can be read).")
    connection_reused: bool | None = _f("sidecar.connection.reused", "boolean",
                                        "The call went over a kept-alive connection (httpx, httpx2).")
    resend_count: int | None = _f("http.request.resend_count", "long",
                                  "Attempt number of a retried request (0 = first), from the SDK's retry header.")
    retry_group: str | None = _f("sidecar.retry.group", "keyword",
                                 "Same for attempts of one logical request: keyed HMAC of method, URL path and body.")
    retry_delay: float | None = _f("sidecar.retry.delay", "double",
                                   "Seconds between the previous attempt of this group ending and this one starting.")
    cache_hit: bool | None = _f("sidecar.cache.hit", "boolean",
                                "Answered from a client-side cache (requests-cache, hishel): no server call, "
                                "no tokens spent.")
    transport_phase: str | None = _f("sidecar.transport.phase", "keyword",
                                     "Where a call without a response failed: connect, read, write, pool, tls.")
    status_code: int | None = _f("http.response.status_code", "long", "HTTP status; absent when no response came.")
    error_type: str | None = _f("error.type", "keyword", "Status code as a string, or the exception's class name.")
    error_code: str | None = _f("error.code", "keyword", "Provider's error code or type from the error body, redacted.")
    error_message: str | None = _f("error.message", "text", "Provider's error message, redacted.")
    retry_after: float | None = _f("sidecar.response.retry_after", "double", "Seconds the server asked to wait.")
    request_bytes: int | None = _f("http.request.body.bytes", "long", "Request body size as sent.")
    response_bytes: int | None = _f("http.response.body.bytes", "long", "Response body size as received.")
    response_content_encoding: str | None = _f("sidecar.response.content_encoding", "keyword", "gzip, deflate, ...")
    stream_outcome: str | None = _f(
        "sidecar.stream.outcome", "keyword", "completed, closed_early, error or abandoned (streamed bodies)."
    )
    redaction_counts: dict[str, int] | None = _f(
        "sidecar.redaction.counts", "object", "What redaction masked, counted by type; never the values."
    )
    redaction_total: int | None = _f("sidecar.redaction.total", "long", "Sum of the redaction counts.")
    content_truncated: bool | None = _f("sidecar.content.truncated", "boolean", "A captured body hit the size cap.")
    content_note: str | None = _f("sidecar.content.note", "keyword",
                                     "Why content is absent, partial or altered (docs/record.md lists the notes).")
    request_content: str | None = _f("sidecar.request.content", "text", "Request body, redacted and size-capped.")
    response_content: str | None = _f(
        "sidecar.response.content", "text", "Response body (streamed: the assembled text), redacted and size-capped."
    )
    system_instructions: list[dict[str, Any]] | None = _f(
        "gen_ai.system_instructions", "json", "System prompt parts, separate from the chat history (conventions' "
        "shape), redacted.")
    input_messages: list[dict[str, Any]] | None = _f(
        "gen_ai.input.messages", "json", "Chat history sent: role and typed parts (text, tool_call, "
        "tool_call_response, reasoning, blob, uri, file), redacted; media as type, size and keyed hash.")
    output_messages: list[dict[str, Any]] | None = _f(
        "gen_ai.output.messages", "json", "Messages returned, one per choice, with finish_reason; streamed "
        "responses assembled from text and tool-call argument deltas; redacted.")
    tool_definitions: list[dict[str, Any]] | None = _f(
        "gen_ai.tool.definitions", "json", "Tools offered to the model: type, name, description, parameters; "
        "redacted.")


    # Set by the spool writer, always last: see sidecar/audit/_chain.py.
    chain_key_id: str | None = _f("sidecar.chain.key_id", "keyword", "Id of the integrity key the chain hash uses.")
    chain_prev: str | None = _f("sidecar.chain.prev", "keyword", "Hash of the producer's previous record.")
    chain_hash: str | None = _f("sidecar.chain.hash", "keyword",
                                "Keyed HMAC over chain.prev and the digests of this document's fields.")

    def to_document(self) -> dict[str, Any]:
        """The indexed form: dotted names, empty fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def field_types() -> dict[str, FieldType]:
    """Document field name -> storage type, in schema order."""
    out: dict[str, FieldType] = {}
    for name, info in AuditRecord.model_fields.items():
        extra = info.json_schema_extra
        assert isinstance(extra, dict), name
        out[info.alias or name] = extra["es_type"]  # type: ignore[assignment]
    return out


def markdown_fields() -> str:
    """The field reference in docs/record.md (a test keeps that file equal to this)."""
    lines = ["| field | type | meaning |", "| --- | --- | --- |"]
    for name, info in AuditRecord.model_fields.items():
        extra = info.json_schema_extra
        assert isinstance(extra, dict), name
        lines.append(f"| `{info.alias or name}` | {extra['es_type']} | {info.description} |")
    return "\n".join(lines) + "\n"
