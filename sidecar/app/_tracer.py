"""A tracer wrapper that lets a model call's span outlive the transport call.

opentelemetry-instrumentation-httpx/-requests open the client span with
``start_as_current_span`` and end it when the transport returns, which for a
model call is before the body (usage, finish reason, the end of a stream) has
been read. We hand those instrumentors this wrapper as their tracer provider:
it opens the span the same way, and at exit ends it unless our transport wrapper
(which runs inside it) has claimed it with :func:`claim_current_span`, in which
case the record pipeline ends it, with the GenAI attributes, when the body ends.
"""

from __future__ import annotations

import contextvars
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes


class _Slot:
    __slots__ = ("claimed", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.claimed = False


_current_slot: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("sidecar_span_slot", default=None)


def open_span() -> Span | None:
    """The instrumentor's span we are running inside, if any (without claiming it)."""
    slot = _current_slot.get()
    return slot.span if slot is not None else None


def claim_current_span() -> Span | None:
    """Take over ending the instrumentor's open span; None when none is open (tracing not ours)."""
    slot = _current_slot.get()
    if slot is None or slot.claimed:
        return None
    slot.claimed = True
    return slot.span


def _record_redacted(span: Span, exc: BaseException, record: bool, set_status: bool) -> None:
    if not span.is_recording() or not isinstance(exc, Exception):
        return
    from sidecar.app import _state  # the runtime's redactor (imported late: _state imports us)

    kind = type(exc).__qualname__
    runtime = _state.runtime
    message = stack = "[withheld]"
    if runtime is not None:
        message = runtime.redact_message(str(exc), 2048)
        stack = runtime.redact_message("".join(traceback.format_exception(exc)), 8192)
    if record:
        span.add_event("exception", {"exception.type": f"{type(exc).__module__}.{kind}",
                                     "exception.message": message, "exception.stacktrace": stack,
                                     "exception.escaped": True})
    if set_status:
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))


class DeferringTracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._tracer.start_span(*args, **kwargs)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        slot: _Slot | None = None
        from sidecar.app import _state  # imported late: _state imports this module's users

        runtime = _state.runtime
        if runtime is not None and attributes:
            try:  # a model call's URL is redacted before any span processor sees it
                attributes = runtime.spans.start_attributes(attributes)
            except Exception:
                _state.internal_error("capture")
        try:
            # The inner manager records an exception on the span and sets its status; we end
            # the span only after it has done so, and only if nobody claimed it.
            with self._tracer.start_as_current_span(
                name, context, kind, attributes, links, start_time, record_exception=False,
                set_status_on_exception=False, end_on_exit=False,
            ) as span:
                slot = _Slot(span)
                token = _current_slot.set(slot)
                try:
                    yield span
                except BaseException as exc:
                    # Recorded here, redacted: an exception's message can hold the URL with its query
                    # (requests: "Max retries exceeded with url: /v1/...?key=...").
                    _record_redacted(span, exc, record_exception, set_status_on_exception)
                    raise
                finally:
                    _current_slot.reset(token)
        finally:
            if slot is not None and end_on_exit and not slot.claimed:
                slot.span.end()


class DeferringTracerProvider(trace.TracerProvider):
    """Wraps the given provider, or the global one (resolved lazily: the app may set it after us)."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._provider = provider

    def get_tracer(self, instrumenting_module_name: str, instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: Any = None) -> trace.Tracer:
        inner = trace.get_tracer(instrumenting_module_name, instrumenting_library_version,
                                 tracer_provider=self._provider, schema_url=schema_url, attributes=attributes)
        return DeferringTracer(inner)


__all__: Sequence[str] = ("DeferringTracerProvider", "claim_current_span", "open_span")
