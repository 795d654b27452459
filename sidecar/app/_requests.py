"""``requests.Session.send`` wrapper.

Without ``stream=True`` requests has read the whole (already decoded) body when
``send`` returns, so the record is finished there. With ``stream=True`` the body
is observed through ``iter_content`` (which ``iter_lines`` and ``.content`` use)
and the record finishes at its end, at ``close()``, or when the response is collected.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from sidecar.app import _state
from sidecar.app._runtime import Runtime
from sidecar.app._tracer import claim_current_span, open_span
from sidecar.record.capture import CallCapture


class _Finisher:
    """Ends the record when the response object is collected without being read or closed."""

    __slots__ = ("cap", "done")

    def __init__(self, cap: CallCapture, done: Callable[[CallCapture], None]) -> None:
        self.cap = cap
        self.done = done

    def __del__(self) -> None:
        self.cap.finish(self.done, outcome="abandoned")


def _observe_stream(response: Any, cap: CallCapture, done: Callable[[CallCapture], None]) -> None:
    original_iter = response.iter_content
    original_close = response.close
    tee = cap.response
    assert tee is not None

    def iter_content(chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        try:
            for chunk in original_iter(chunk_size, decode_unicode):
                if isinstance(chunk, bytes):
                    tee.add(chunk)
                elif isinstance(chunk, str):
                    tee.add(chunk.encode("utf-8"))
                yield chunk
        except GeneratorExit:
            cap.finish(done, outcome="closed_early")
            raise
        except BaseException as exc:
            cap.finish(done, outcome="error", exception=exc)
            raise
        cap.finish(done, outcome="completed")

    def close() -> None:
        try:
            original_close()
        finally:
            cap.finish(done, outcome="closed_early")

    response.iter_content = iter_content
    response.close = close
    response._sidecar_finisher = _Finisher(cap, done)


def _start(rt: Runtime, request: Any) -> CallCapture | None:
    """A capture for a prepared request (None: not a model call)."""
    parts = urlsplit(request.url)
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = [(k.lower(), v if isinstance(v, str) else v.decode("latin-1")) for k, v in request.headers.items()]
    cap = rt.start("requests", request.method or "GET", parts.scheme, parts.hostname or "", parts.port,
                   parts.path, request.url, headers, body if isinstance(body, bytes) or body is None else None)
    if cap is not None and body is None:
        cap.request_tee = None
        cap.request_size = 0
    return cap


def _take_response(cap: CallCapture, response: Any) -> None:
    cap.status_code = response.status_code
    cap.response_headers = [(k.lower(), v) for k, v in response.headers.items()]
    cap.response_decoded = True  # urllib3 already undid gzip/deflate


def wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        rt = _state.runtime
        # Only the general switch: opentelemetry-instrumentation-requests, which runs around us, turns the
        # HTTP one off while it calls down (to keep urllib3's instrumentation quiet).
        if rt is None or not is_instrumentation_enabled():
            return original(self, request, **kwargs)
        try:
            cap = _start(rt, request)
            if cap is not None:
                timeout = kwargs.get("timeout")
                cap.timeout_known = True
                if isinstance(timeout, tuple):
                    timeout = timeout[1] if len(timeout) > 1 else timeout[0]
                cap.timeout = float(timeout) if isinstance(timeout, (int, float)) else None
                cap.span = open_span()
        except Exception:
            _state.internal_error("capture")
            cap = None
        if cap is None:
            return original(self, request, **kwargs)
        try:
            response = original(self, request, **kwargs)
        except BaseException as exc:
            rt.name_failed_span(cap)
            cap.finish(rt.complete, exception=exc)
            raise
        try:
            _take_response(cap, response)
            span = claim_current_span()
            if span is not None:
                cap.span, cap.span_owned = span, True
            ctype = response.headers.get("content-type", "")
            cap.streamed = "event-stream" in ctype or "ndjson" in ctype or cap.endpoint.path_stream
            if kwargs.get("stream"):
                _observe_stream(response, cap, rt.complete)
            else:
                if cap.response is not None:
                    cap.response.add(response.content or b"")
                cap.finish(rt.complete, outcome="completed")
        except Exception:
            _state.internal_error("capture")
            cap.finish(rt.complete)
        return response

    send._sidecar_original = original  # type: ignore[attr-defined]
    return send


def wrap_cached_send(original: Callable[..., Any]) -> Callable[..., Any]:
    """requests-cache's ``CacheMixin.send``: a hit never reaches ``Session.send``, so record it here."""

    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        rt = _state.runtime
        started = time.perf_counter()
        response = original(self, request, *args, **kwargs)
        if rt is None or not getattr(response, "from_cache", False) or not is_instrumentation_enabled():
            return response
        try:
            cap = _start(rt, request)
            if cap is not None:
                cap.start_perf = started
                cap.cache_hit = True
                _take_response(cap, response)
                if cap.response is not None:
                    cap.response.add(response.content or b"")
                cap.finish(rt.complete, outcome="completed")
        except Exception:  # our problem, never the application's
            _state.internal_error("capture")
        return response

    send._sidecar_original = original  # type: ignore[attr-defined]
    return send
