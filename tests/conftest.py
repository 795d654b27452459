"""Fixtures shared by every tier: the loopback model server, span capture, an instrumented process."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

SUPPORT = pathlib.Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))

from model_server import serve  # noqa: E402
from sidecar_testing import HMAC_KEY, Instrumented  # noqa: E402

import sidecar  # noqa: E402

# One SDK provider for the whole run (OpenTelemetry allows setting it once per process).
SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_provider)



@pytest.fixture(scope="session")
def model_url() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def instrumented(tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> Iterator[Instrumented]:
    """An instrumented process with its own spool and registry; options from ``@pytest.mark.sidecar(...)``."""
    marker = request.node.get_closest_marker("sidecar")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    registry = CollectorRegistry()
    spool = tmp_path / "spool"
    SPANS.clear()
    sidecar.uninstrument()
    sidecar.instrument(registry=registry, spool_dir=spool, hmac_key=HMAC_KEY, **options)
    try:
        yield Instrumented(spool, registry, SPANS)
    finally:
        sidecar.uninstrument()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sidecar(**options): instrument() options for the `instrumented` fixture")
