"""A record is dropped only when it cannot be written; the drop is counted by reason and logged
with the call's trace id (and never with its content)."""

from __future__ import annotations

import logging
import pathlib

import pytest
from prometheus_client import CollectorRegistry

from sidecar.spool import SpoolConfig, SpoolWriter
from sidecar.telemetry import Metrics

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Call:
    def trace_hex(self) -> str:
        return TRACE


def _writer(tmp_path: pathlib.Path, process: object, **config: object) -> tuple[SpoolWriter, CollectorRegistry]:
    reg = CollectorRegistry()
    cfg = SpoolConfig(tmp_path / "spool", **config)  # type: ignore[arg-type]
    return SpoolWriter(cfg, "p1", process, Metrics(reg)), reg  # type: ignore[arg-type]


def test_a_record_that_cannot_be_built_is_counted_and_logged_with_its_trace(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    def process(item: object, seq: int) -> bytes:
        raise ValueError("secret sk-live-0000 in the message")  # never logged

    writer, reg = _writer(tmp_path, process)
    with caplog.at_level(logging.WARNING, logger="sidecar.spool"):
        writer.submit(Call())
        assert writer.flush(5)
        writer.close()
    assert reg.get_sample_value("sidecar_records_dropped_total", {"reason": "pipeline_failed"}) == 1
    text = caplog.text
    assert TRACE in text and "pipeline_failed" in text and "ValueError" in text
    assert "sk-live" not in text


def test_queue_full_drops_are_logged_with_trace_ids(tmp_path: pathlib.Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    writer, reg = _writer(tmp_path, lambda item, seq: b"{}", queue_size=1, linger=5.0)
    with caplog.at_level(logging.WARNING, logger="sidecar.spool"):
        results = [writer.submit(Call()) for _ in range(3)]
    writer.close()
    dropped = results.count(False)
    assert dropped >= 1
    assert reg.get_sample_value("sidecar_records_dropped_total", {"reason": "queue_full"}) == dropped
    assert TRACE in caplog.text and "queue_full" in caplog.text
