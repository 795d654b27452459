"""``instrument()`` / ``uninstrument()``: idempotent, reversible, thread-safe.

Order of layers on each HTTP client, innermost first:
  the library's transport -> our wrapper (capture) -> OpenTelemetry's instrumentor (span)
Our wrapper runs inside the instrumentor's span and claims it (through the
tracer wrapper we hand the instrumentor) so the span ends with the body, carrying
the GenAI attributes. If an instrumentor was already active (``opentelemetry-instrument``
loads them too) it is re-applied on top of ours, and restored as it was on ``uninstrument()``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NoReturn

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from sidecar.app import _state
from sidecar.app._log_redact import ClientLogFilter
from sidecar.app._runtime import Runtime
from sidecar.app._tracer import DeferringTracerProvider
from sidecar.config import AppSettings, ConfigError, load_settings

log = logging.getLogger("sidecar")
_lock = threading.RLock()


@dataclass
class _Patched:
    name: str
    otel: Any  # the OpenTelemetry instrumentor singleton
    otel_was_active: bool


_patched: list[_Patched] = []
_atexit_registered = False


def _otel_instrumentor(name: str) -> Any | None:
    try:
        if name == "requests":
            from opentelemetry.instrumentation.requests import RequestsInstrumentor

            return RequestsInstrumentor()
        from opentelemetry.instrumentation import httpx as otel_httpx

        cls = otel_httpx.HTTPX2ClientInstrumentor if name == "httpx2" else otel_httpx.HTTPXClientInstrumentor
        return cls()
    except ImportError:
        return None


def _hishel(name: str) -> Any | None:
    """hishel's cache transports for httpx / httpx2, when hishel is installed."""
    try:
        module = importlib.import_module(f"hishel.{name}")
    except ImportError:
        return None
    if not hasattr(module, "CacheTransport") or not hasattr(module, "AsyncCacheTransport"):
        return None
    return module


def _requests_cache_mixin() -> Any | None:
    try:
        from requests_cache.session import CacheMixin
    except ImportError:
        return None
    return CacheMixin


def _patch(name: str, module: Any) -> None:
    if name == "requests":
        from sidecar.app._requests import wrap_cached_send, wrap_send

        module.Session.send = wrap_send(module.Session.send)
        mixin = _requests_cache_mixin()
        if mixin is not None:
            mixin.send = wrap_cached_send(mixin.send)
    else:
        import wrapt

        from sidecar.app._httpx import make_wrappers

        sync_wrapper, async_wrapper = make_wrappers(module, name)
        wrapt.wrap_function_wrapper(module, "HTTPTransport.handle_request", sync_wrapper)
        wrapt.wrap_function_wrapper(module, "AsyncHTTPTransport.handle_async_request", async_wrapper)
        cache = _hishel(name)
        if cache is not None:
            from sidecar.app._httpx import make_cache_wrappers

            sync_cache, async_cache = make_cache_wrappers(module, name)
            wrapt.wrap_function_wrapper(cache, "CacheTransport.handle_request", sync_cache)
            wrapt.wrap_function_wrapper(cache, "AsyncCacheTransport.handle_async_request", async_cache)


def _unpatch(name: str, module: Any) -> None:
    if name == "requests":
        send = module.Session.send
        original = getattr(send, "_sidecar_original", None)
        if original is not None:
            module.Session.send = original
        mixin = _requests_cache_mixin()
        if mixin is not None and getattr(mixin.send, "_sidecar_original", None) is not None:
            mixin.send = mixin.send._sidecar_original
    else:
        unwrap(module.HTTPTransport, "handle_request")
        unwrap(module.AsyncHTTPTransport, "handle_async_request")
        cache = _hishel(name)
        if cache is not None:
            unwrap(cache.CacheTransport, "handle_request")
            unwrap(cache.AsyncCacheTransport, "handle_async_request")


def instrument(*, registry: Any = None, tracer_provider: Any = None, **options: Any) -> None:
    """Start recording model calls made through httpx, httpx2 and requests.

    ``options`` are the settings without the ``SIDECAR_`` prefix, lower case
    (``spool_dir=...``, ``capture_content=False``); they override the environment.
    ``registry`` is the prometheus_client registry for the app-side metrics.
    A second call is a no-op; call ``uninstrument()`` first to change settings.
    """
    global _atexit_registered
    with _lock:
        if _state.runtime is not None:
            return
        settings = load_settings(AppSettings, **options)
        runtime = Runtime(settings, registry)
        from sidecar.app._setup import ensure_tracing, serve_metrics

        ensure_tracing()
        if settings.metrics_port is not None:
            serve_metrics(settings.metrics_port, runtime.metrics.registry, settings.metrics_host)
        provider = DeferringTracerProvider(tracer_provider)
        _state.runtime = runtime
        _state.log_filter = ClientLogFilter(runtime.redact_message)
        _state.log_filter.install()
        for name in ("httpx", "httpx2", "requests"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            otel = _otel_instrumentor(name)
            was_active = False
            if otel is not None and otel.is_instrumented_by_opentelemetry:
                was_active = True
                otel.uninstrument()
            _patch(name, module)
            if otel is not None:
                otel.instrument(tracer_provider=provider)
            _patched.append(_Patched(name, otel, was_active))
        if not _atexit_registered:
            atexit.register(_shutdown)
            _atexit_registered = True
        _wrap_exit()
        log.debug("llm-audit-sidecar instrumented %s; spool %s", [p.name for p in _patched], settings.spool_dir)


def uninstrument() -> None:
    """Undo ``instrument()``: remove our wrappers, flush the spool, restore instrumentors as they were."""
    with _lock:
        runtime = _state.runtime
        if runtime is None:
            return
        while _patched:
            p = _patched.pop()
            module = importlib.import_module(p.name)
            if p.otel is not None:
                p.otel.uninstrument()
            _unpatch(p.name, module)
            if p.otel is not None and p.otel_was_active:
                p.otel.instrument()
        _state.runtime = None
        if _state.log_filter is not None:
            _state.log_filter.remove()
            _state.log_filter = None
        _unwrap_exit()
        runtime.close()


def flush(timeout: float = 10.0) -> bool:
    """Wait until every finished call's record is in the spool. True when done in time."""
    runtime = _state.runtime
    return True if runtime is None else runtime.flush(timeout)


def current_settings() -> AppSettings | None:
    runtime = _state.runtime
    return None if runtime is None else runtime.settings


def _shutdown() -> None:
    """At interpreter exit: write what is queued and seal the segment (also in forked children)."""
    runtime = _state.runtime
    if runtime is not None:
        runtime.close()


def _after_fork_in_child() -> None:
    runtime = _state.runtime
    if runtime is not None:
        runtime.after_fork()


# Forked workers (multiprocessing, concurrent.futures, pre-fork servers) end with os._exit, which
# runs no atexit handler: the records of their last calls would still sit in the writer's queue.
# os._exit is wrapped, while instrumented, to write them first (bounded wait); a process killed by
# a signal still loses what was queued (see docs/record.md for the measured window).
_EXIT_FLUSH_S = 5.0
_real_exit = os._exit


def _exit_after_flush(status: int) -> NoReturn:  # the signature of os._exit
    runtime = _state.runtime
    if runtime is not None:
        with contextlib.suppress(BaseException):  # exiting regardless
            runtime.writer.close(_EXIT_FLUSH_S)  # writes what is queued and seals the segment
    _real_exit(status)


def _wrap_exit() -> None:
    global _real_exit
    if os._exit is not _exit_after_flush:
        _real_exit = os._exit
        os._exit = _exit_after_flush


def _unwrap_exit() -> None:
    if os._exit is _exit_after_flush:
        os._exit = _real_exit


if hasattr(os, "register_at_fork"):  # once per process, whatever the instrument/uninstrument cycles
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SidecarInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Entry point for ``opentelemetry-instrument``: configure with ``SIDECAR_*`` variables."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        # Under opentelemetry-instrument, an exception here aborts the whole auto-initialisation (the
        # SDK set-up and every instrumentor after us). A bad SIDECAR_* value therefore logs one error
        # naming the variable and leaves the sidecar off; tracing and the other instrumentors go on.
        try:
            instrument(tracer_provider=kwargs.get("tracer_provider"))
        except ConfigError as exc:
            log.error("llm-audit-sidecar is OFF (no audit records): %s", exc)
        except Exception as exc:  # never take OpenTelemetry's start-up down with us
            log.error("llm-audit-sidecar is OFF (no audit records): could not start: %s", type(exc).__name__)

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()


__all__ = ["SidecarInstrumentor", "current_settings", "flush", "instrument", "uninstrument"]
