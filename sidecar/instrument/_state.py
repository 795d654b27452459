"""Process-wide instrumentation state, read by the wrappers on every call."""

from __future__ import annotations

import logging
import time

from sidecar.instrument._runtime import Runtime

runtime: Runtime | None = None
_last_log = 0.0
log = logging.getLogger("sidecar")


def internal_error(stage: str) -> None:
    """Count an exception caught in our code (the application never sees it); log at most once a minute."""
    global _last_log
    rt = runtime
    if rt is not None:
        rt.metrics.internal_errors.labels(stage).inc()
    now = time.monotonic()
    if now - _last_log > 60:
        _last_log = now
        log.warning("llm-audit-sidecar internal error in %s (the call was not affected)", stage, exc_info=True)
