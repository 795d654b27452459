"""`sidecar run` pieces: the bounded HTTP listener, the single-instance lock, retention from the first run,
and the audit commands."""

from sidecar.daemon._audit import cmd_audit_anchor, cmd_audit_verify
from sidecar.daemon._erase import add_parsers as add_erasure_parsers
from sidecar.daemon._erase import cmd_erase, cmd_hold, denied_view
from sidecar.daemon._http import HEALTH_PATHS, BoundedHTTPServer, serve_health
from sidecar.daemon._lock import single_instance
from sidecar.daemon._retention import RetentionKeeper
from sidecar.daemon._stores import open_store

__all__ = ["HEALTH_PATHS", "BoundedHTTPServer", "RetentionKeeper", "add_erasure_parsers", "cmd_audit_anchor",
           "cmd_audit_verify", "cmd_erase", "cmd_hold", "denied_view", "open_store", "serve_health",
           "single_instance"]
