"""llm-audit-sidecar: traces, metrics and a redacted audit trail for model API calls.

    import sidecar
    sidecar.instrument()
"""

from sidecar.app import flush, instrument, uninstrument
from sidecar.app.context import conversation_context, user_context
from sidecar.config import AppSettings, ConfigError, ShipperSettings
from sidecar.record import AuditRecord

__version__ = "0.1.0"

__all__ = ["AppSettings", "AuditRecord", "ConfigError", "ShipperSettings", "__version__", "conversation_context",
           "flush", "instrument", "uninstrument", "user_context"]
