"""Process-wide instrumentation state, read by the wrappers on every call."""

from __future__ import annotations

import logging
import sys
import time

from sidecar.app._log_redact import ClientLogFilter
from sidecar.app._runtime import Runtime

runtime: Runtime | None = None
log_filter: ClientLogFilter | None = None  # on the HTTP clients' loggers while instrumented
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
        # the exception's class only: its message or a traceback's values may quote the call's content
        kind = sys.exc_info()[0]
        log.warning("llm-audit-sidecar internal error in %s: %s (the call was not affected)", stage,
                    kind.__name__ if kind is not None else "unknown")
