"""Error-code anomaly detection in the sidecar: seasonal baselines per (provider, model, status code)
and per API key, learned from the records the sidecar ships."""

from sidecar.anomaly._detector import AnomalyDetector, extract

__all__ = ["AnomalyDetector", "extract"]
