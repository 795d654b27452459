"""The Prometheus metric families and their bounded, redacted labels, shared by the application and the
sidecar (which derives the same families from shipped records)."""

from sidecar.telemetry._metrics import (
    CALL_LABELS,
    DURATION_BUCKETS,
    KNOWN_STATUS_CODES,
    CallMetrics,
    Metrics,
    ModelLabels,
    model_label_value,
    provider_label,
    status_label,
)

__all__ = [
    "CALL_LABELS",
    "DURATION_BUCKETS",
    "KNOWN_STATUS_CODES",
    "CallMetrics",
    "Metrics",
    "ModelLabels",
    "model_label_value",
    "provider_label",
    "status_label",
]  # fmt: skip
