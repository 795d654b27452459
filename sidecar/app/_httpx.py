"""Transport-level wrappers for httpx and httpx2 (sync and async, streaming included).

They sit directly around ``HTTPTransport.handle_request`` /
``AsyncHTTPTransport.handle_async_request``, inside the client span that
opentelemetry-instrumentation-httpx opens, and replace the response stream with
one that copies bytes aside as the application reads them. The record is finished
when the body ends, fails, is closed, or the stream is garbage-collected.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled, is_instrumentation_enabled

from sidecar.app import _state
from sidecar.app._runtime import Runtime
from sidecar.app._tracer import claim_current_span, open_span
from sidecar.record.capture import BodyTee, CallCapture


def _start(module_name: str, request: Any) -> tuple[Runtime, CallCapture] | None:
    rt = _state.runtime
    if rt is None or not is_instrumentation_enabled() or not is_http_instrumentation_enabled():
        return None
    try:
        url = request.url
        body = getattr(request, "_content", None)
        cap = rt.start(module_name, request.method, url.scheme, url.host, url.port, url.path, str(url),
                       request.headers.multi_items(), body if isinstance(body, bytes) else None)
        if cap is None:
            return None
        cap.span = open_span()
        timeout = request.extensions.get("timeout")
        if isinstance(timeout, dict):
            cap.timeout_known = True
            read = timeout.get("read")
            cap.timeout = float(read) if isinstance(read, (int, float)) else None
        return rt, cap
    except Exception:  # our problem, never the application's
        _state.internal_error("capture")
        return None


def _on_response(rt: Runtime, cap: CallCapture, response: Any) -> None:
    cap.status_code = response.status_code
    cap.response_headers = response.headers.multi_items()
    cap.connection_reused = rt.seen_connection(response.extensions.get("network_stream"))
    span = claim_current_span()
    if span is not None:
        cap.span = span
        cap.span_owned = True
    ctype = response.headers.get("content-type", "")
    cap.streamed = "event-stream" in ctype or "ndjson" in ctype or cap.endpoint.path_stream


def _on_failure(rt: Runtime, cap: CallCapture, exc: BaseException) -> None:
    try:
        rt.name_failed_span(cap)
        cap.finish(rt.complete, exception=exc)
    except Exception:
        _state.internal_error("capture")


class _Observer:
    """What the sync and async observed response streams share: the capture they finish, once, with
    how the body ended (read to the end, failed, closed early, or dropped unread)."""

    def __init__(self, inner: Any, cap: CallCapture, done: Callable[[CallCapture], None]) -> None:
        self._inner = inner
        self._cap = cap
        self._done = done

    def _tee(self) -> BodyTee:
        tee = self._cap.response
        assert tee is not None
        return tee

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Around the iteration of the body: finishes the capture with how it ended."""
        try:
            yield
        except GeneratorExit:
            self._cap.finish(self._done, outcome="closed_early")
            raise
        except BaseException as exc:
            self._cap.finish(self._done, outcome="error", exception=exc)
            raise
        self._cap.finish(self._done, outcome="completed")

    def _closed(self) -> None:
        self._cap.finish(self._done, outcome="closed_early")

    def __del__(self) -> None:
        self._cap.finish(self._done, outcome="abandoned")


def _response_stream_classes(module: types.ModuleType) -> tuple[type, type]:
    """Observed response streams (sync, async) that satisfy the module's own isinstance checks."""

    class ObservedStream(_Observer, module.SyncByteStream):  # type: ignore[misc,name-defined]
        def __iter__(self) -> Iterator[bytes]:
            tee = self._tee()
            with self._reading():
                for chunk in self._inner:
                    tee.add(chunk)
                    yield chunk

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._closed()

    class ObservedAsyncStream(_Observer, module.AsyncByteStream):  # type: ignore[misc,name-defined]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            tee = self._tee()
            with self._reading():
                async for chunk in self._inner:
                    tee.add(chunk)
                    yield chunk

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._closed()

    return ObservedStream, ObservedAsyncStream


def _request_stream_classes(module: types.ModuleType) -> tuple[type, type]:
    """Request streams (sync, async) that copy the body aside as the transport sends it."""

    class TeeRequestStream(module.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, tee: BodyTee) -> None:
            self._inner = inner
            self._tee = tee

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                self._tee.add(chunk)
                yield chunk

        def close(self) -> None:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()

    class TeeAsyncRequestStream(module.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, tee: BodyTee) -> None:
            self._inner = inner
            self._tee = tee

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._inner:
                self._tee.add(chunk)
                yield chunk

        async def aclose(self) -> None:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()

    return TeeRequestStream, TeeAsyncRequestStream


def make_stream_classes(module: types.ModuleType) -> tuple[type, type, type, type]:
    """Observed response and teed request stream classes (sync, async each) for ``module``."""
    return (*_response_stream_classes(module), *_request_stream_classes(module))


def _tee_request(request: Any, cap: CallCapture, stream_class: type) -> None:
    if cap.request_tee is not None:
        try:
            request.stream = stream_class(request.stream, cap.request_tee)
        except Exception:
            _state.internal_error("capture")


def _observe_response(rt: Runtime, cap: CallCapture, response: Any, stream_class: type) -> None:
    try:
        response.stream = stream_class(response.stream, cap, rt.complete)
        _on_response(rt, cap, response)
    except Exception:
        _state.internal_error("capture")


def make_wrappers(module: types.ModuleType, module_name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """wrapt-style wrappers for ``handle_request`` and ``handle_async_request``."""
    observed, observed_async, tee_req, tee_req_async = make_stream_classes(module)

    def handle_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        request: Any = args[0] if args else kwargs["request"]
        started = _start(module_name, request)
        if started is None:
            return wrapped(*args, **kwargs)
        rt, cap = started
        _tee_request(request, cap, tee_req)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            _on_failure(rt, cap, exc)
            raise
        _observe_response(rt, cap, response, observed)
        return response

    async def handle_async_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                                   kwargs: dict[str, Any]) -> Any:
        request: Any = args[0] if args else kwargs["request"]
        started = _start(module_name, request)
        if started is None:
            return await wrapped(*args, **kwargs)
        rt, cap = started
        _tee_request(request, cap, tee_req_async)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _on_failure(rt, cap, exc)
            raise
        _observe_response(rt, cap, response, observed_async)
        return response

    return handle_request, handle_async_request


def make_cache_wrappers(module: types.ModuleType, module_name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """hishel's ``CacheTransport``: a cache hit never reaches the network transport we wrap, so it is
    recorded here, as a cache hit (no server call, no tokens), when hishel says it came from the cache."""
    observed, observed_async = _response_stream_classes(module)

    def hit(response: Any) -> bool:
        status = response.extensions.get("caching")  # hishel's CacheStatus, a TypedDict
        if isinstance(status, dict):
            return bool(status.get("from_cache"))
        return bool(getattr(status, "from_cache", False))

    def record(request: Any, response: Any, stream_class: type) -> None:
        started = _start(module_name, request)
        if started is None:
            return
        rt, cap = started
        cap.cache_hit = True
        cap.status_code = response.status_code
        cap.response_headers = response.headers.multi_items()
        response.stream = stream_class(response.stream, cap, rt.complete)

    def record_if_hit(args: tuple[Any, ...], kwargs: dict[str, Any], response: Any, stream_class: type) -> None:
        try:
            if hit(response):
                record(args[0] if args else kwargs["request"], response, stream_class)
        except Exception:  # our problem, never the application's
            _state.internal_error("capture")

    def handle_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        response = wrapped(*args, **kwargs)
        record_if_hit(args, kwargs, response, observed)
        return response

    async def handle_async_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                                   kwargs: dict[str, Any]) -> Any:
        response = await wrapped(*args, **kwargs)
        record_if_hit(args, kwargs, response, observed_async)
        return response

    return handle_request, handle_async_request
