"""Spans and Prometheus metrics."""

from sidecar.telemetry._metrics import CALL_LABELS, CallMetrics, Metrics, ModelLabels
from sidecar.telemetry._spans import apply_to_span, span_name

__all__ = ["CALL_LABELS", "CallMetrics", "Metrics", "ModelLabels", "apply_to_span", "span_name"]
