"""Log lines of the HTTP clients, redacted while the sidecar is instrumented.

httpx and httpx2 log every request's URL at INFO (``HTTP Request: POST https://...``), urllib3 at DEBUG
(redirects, retries, the request line); a Gemini ``?key=`` or an e-mail in a path would reach the app's
log files raw. A filter on those loggers passes each string argument through the same redaction as
exception messages on spans. Filters only run for records the logger is enabled for, so with the usual
WARNING level this costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["CLIENT_LOGGERS", "ClientLogFilter"]

CLIENT_LOGGERS = ("httpx", "httpx2", "urllib3.connectionpool", "urllib3.poolmanager")
_LIMIT = 8192


class ClientLogFilter(logging.Filter):
    def __init__(self, redact: Callable[[str, int], str]) -> None:
        super().__init__("llm-audit-sidecar")
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str):
                record.msg = self._redact(record.msg, _LIMIT)
            if isinstance(record.args, tuple) and record.args:
                record.args = tuple(self._scrub(a) for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: self._scrub(v) for k, v in record.args.items()}
        except Exception:  # a log line is never lost because of us; its arguments may be
            record.msg, record.args = "(log line withheld by llm-audit-sidecar)", ()
        return True

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self._redact(str(value), _LIMIT)

    def install(self) -> None:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).removeFilter(self)
