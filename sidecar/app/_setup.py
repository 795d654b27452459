"""Tracing and metrics endpoints, set up only when the application has not done it."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace

log = logging.getLogger("sidecar")
_served_ports: set[int] = set()


def ensure_tracing() -> None:
    """Use the app's TracerProvider; with none and OTLP variables set, export over OTLP ourselves.

    Otherwise leave the no-op provider: spans then cost next to nothing."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_* is set but the OTLP exporter is not installed: "
                    "pip install 'llm-audit-sidecar[otlp]'")
        return
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("llm-audit-sidecar set up OTLP trace export")


def serve_metrics(port: int, registry: Any, host: str = "127.0.0.1") -> None:
    """The app's /metrics, on loopback unless ``host`` (``SIDECAR_METRICS_HOST``) says otherwise."""
    if port in _served_ports:
        return
    from prometheus_client import start_http_server

    start_http_server(port, addr=host.strip("[]"), registry=registry)
    _served_ports.add(port)
