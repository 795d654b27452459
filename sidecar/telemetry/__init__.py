"""Spans and Prometheus metrics."""

from sidecar.telemetry._metrics import (
    CALL_LABELS,
    KNOWN_STATUS_CODES,
    CallMetrics,
    Metrics,
    ModelLabels,
    model_label_value,
    provider_label,
    status_label,
)
from sidecar.telemetry._spans import apply_to_span, span_name

__all__ = [
    "CALL_LABELS", "KNOWN_STATUS_CODES", "CallMetrics", "Metrics", "ModelLabels", "apply_to_span", "model_label_value",
    "provider_label", "span_name", "status_label",
]  # fmt: skip
