"""Everything an instrumented process holds: settings, matcher, redactor, metrics, spool writer."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time
import weakref
from typing import Any

from sidecar.app._otel_metrics import OtelMetrics
from sidecar.app._span_redact import SpanRedactor
from sidecar.app._spans import apply_to_span, span_name
from sidecar.app.context import current_conversation, current_user
from sidecar.audit import IntegrityKey
from sidecar.config import AppSettings
from sidecar.files import resolve_group
from sidecar.providers import EndpointMatcher
from sidecar.record.build import RecordBuilder, encode, header
from sidecar.record.capture import TAIL_BYTES, BodyTee, CallCapture
from sidecar.redact import Redactor, app_keys, parse_rules
from sidecar.spool import SpoolConfig, SpoolWriter
from sidecar.telemetry import Metrics

log = logging.getLogger("sidecar")

_metrics_by_registry: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


def metrics_for(registry: Any, max_models: int) -> Metrics:
    """One Metrics per registry: instrument/uninstrument cycles must not register families twice."""
    from prometheus_client import REGISTRY

    key = REGISTRY if registry is None else registry
    metrics = _metrics_by_registry.get(key)
    if metrics is None:
        metrics = _metrics_by_registry[key] = Metrics(key, max_models=max_models)
    return metrics


def new_producer_id() -> str:
    return secrets.token_hex(8)


class Runtime:
    def __init__(self, settings: AppSettings, registry: Any = None) -> None:
        self.settings = settings
        self.matcher = EndpointMatcher(settings.model_hosts, settings.exclude_hosts)
        try:
            group = resolve_group(settings.spool_group)
        except ValueError as exc:
            log.error("SIDECAR_SPOOL_GROUP: %s; spool files stay private to this user", exc)
            group = None
        # Key problems never raise into the application: records go on, with content withheld.
        keys = app_keys(settings.hmac_key_text(), settings.key_file, group)
        if keys.problem is not None:
            settings = settings.model_copy(update={"capture_content": False})
        self.key_problem = keys.problem
        extra = parse_rules(settings.redact_rules) if settings.redact_rules else []
        allow = list(settings.redact_allow)
        self.redactor = Redactor(keys.pseudonym, extra_rules=extra, allow=allow, detect_ip=settings.redact_ip)
        self.metrics = metrics_for(registry, settings.max_model_labels)
        self.otel_metrics = OtelMetrics(settings.max_model_labels)
        self.producer_id = new_producer_id()
        self.builder = RecordBuilder(settings, self.redactor, self.producer_id)
        if keys.problem is not None:  # content withheld from spans too, whatever OpenTelemetry's switch says
            self.builder.switches = dataclasses.replace(self.builder.switches, content_on_span=False,
                                                        content_on_event=False)
        self.spans = SpanRedactor(self.redactor, self.matcher,
                                  lambda value, bound: self.builder.redact_field(value, bound, {}))
        self.writer = SpoolWriter(
            SpoolConfig(settings.spool_dir, settings.spool_fsync, settings.spool_fsync_interval,
                        settings.spool_segment_bytes, settings.spool_segment_seconds, settings.spool_queue_size,
                        settings.spool_max_bytes, group=group, chain_key=IntegrityKey(keys.integrity)),
            self.producer_id, self.process, self.metrics)
        self.cap = settings.max_body_bytes
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()
        self._redaction_failures_seen = 0

    def after_fork(self) -> None:
        """In a forked child (gunicorn workers): a new producer with its own segments and writer."""
        self.producer_id = new_producer_id()
        self.builder.producer_id = self.producer_id
        self.writer.reset_after_fork(self.producer_id)

    # -- application thread -----------------------------------------------------

    def start(self, client: str, method: str, scheme: str, host: str, port: int | None, path: str, url: str,
              headers: list[tuple[str, str]], body: bytes | None) -> CallCapture | None:
        """A capture for a model call, or None to pass the call through untouched."""
        endpoint = self.matcher.match(method, host, port, path)
        if endpoint is None:
            return None
        if endpoint.weak and body is not None and b'"model"' not in body[:65536]:
            return None
        if port is None:
            port = 443 if scheme == "https" else 80
        cap = CallCapture(endpoint=endpoint, client=client, method=method, url=url, host=host, port=port,
                          path=path, request_headers=headers, start_ns=time.time_ns(),
                          start_perf=time.perf_counter(), user_id=current_user(),
                          conversation_id=current_conversation())
        if body is not None:
            cap.request_size = len(body)
            if len(body) > self.cap:
                cap.request_body = body[: self.cap]
                cap.request_tail = body[-TAIL_BYTES:]
                cap.request_truncated = True
            else:
                cap.request_body = body
        else:
            cap.request_tee = BodyTee(self.cap)
        cap.response = BodyTee(self.cap)
        attempt = header(headers, "x-stainless-retry-count")  # the openai and anthropic SDKs' attempt counter
        if attempt is not None and attempt.isdigit():
            cap.resend_count = int(attempt)
        return cap

    def seen_connection(self, stream: Any) -> bool | None:
        """True when this network stream carried an earlier call (keep-alive reuse)."""
        if stream is None:
            return None
        try:
            if stream in self._streams:
                return True
            self._streams.add(stream)
        except TypeError:  # not weak-referenceable: cannot tell
            return None
        return False

    def complete(self, cap: CallCapture) -> None:
        """The call is over (body read, stream ended or closed, or it failed): hand it to the writer."""
        self.writer.submit(cap)

    def name_failed_span(self, cap: CallCapture) -> None:
        """On a transport failure the instrumentor ends the span itself; name it now (error path only),
        from redacted values, and redact what the instrumentor set on it."""
        if cap.span is None or not cap.span.is_recording():
            return
        model = cap.endpoint.path_model
        if cap.request_body and len(cap.request_body) < 1_000_000:
            try:
                body = json.loads(cap.request_body)
                if isinstance(body, dict) and isinstance(body.get("model"), str):
                    model = body["model"]
            except (ValueError, RecursionError):
                pass
        if model:
            model = self.builder.redact_field(model, 256, {})
        doc = {"gen_ai.operation.name": cap.endpoint.operation, "gen_ai.request.model": model}
        cap.span.update_name(span_name(doc))
        cap.span.set_attribute("gen_ai.provider.name", cap.endpoint.provider)
        if cap.endpoint.operation:
            cap.span.set_attribute("gen_ai.operation.name", cap.endpoint.operation)
        if model:
            cap.span.set_attribute("gen_ai.request.model", model)
        self.redact_span(cap.span)

    def redact_span(self, span: Any) -> None:
        self.spans.redact_span(span)

    def redact_message(self, text: str, limit: int) -> str:
        return self.spans.message(text, limit)

    # -- writer thread ---------------------------------------------------------------

    def process(self, cap: CallCapture, seq: int) -> bytes | None:
        try:
            doc = self.builder.build(cap, seq)
        except BaseException:
            if cap.span is not None and cap.span_owned:
                cap.span.end()  # never leave a claimed span open
            raise
        if cap.span is not None and cap.span_owned:
            end_ns = cap.start_ns + int(doc.get("event.duration") or 0)
            try:
                if cap.span.is_recording():
                    apply_to_span(cap.span, doc, end_time_ns=None, content=self.builder.span_content,
                                  switches=self.builder.switches)
                    self.redact_span(cap.span)
            except Exception:
                self.metrics.internal_errors.labels("pipeline").inc()
            finally:
                cap.span.end(end_time=end_ns)
        if self.key_problem is not None:
            doc["sidecar.content.note"] = "key_unavailable"  # content withheld: no usable HMAC key
        try:
            self.metrics.observe_call(doc)
            self.otel_metrics.observe(doc)
        except Exception:
            self.metrics.internal_errors.labels("pipeline").inc()
        failures = self.builder.redaction_failures
        if failures != self._redaction_failures_seen:
            self.metrics.redaction_failures.inc(failures - self._redaction_failures_seen)
            self._redaction_failures_seen = failures
        return encode(doc)

    def flush(self, timeout: float = 10.0) -> bool:
        return self.writer.flush(timeout)

    def close(self) -> None:
        self.writer.close()
