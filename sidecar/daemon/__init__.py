"""The `sidecar run` service and the other commands' handlers: the service wiring, the bounded HTTP
listener, the single-instance lock, retention from the first run, the configured sink and its readers,
and the audit, erasure, query, advice, retention and dashboards commands."""

from sidecar.daemon._audit import cmd_audit_anchor, cmd_audit_verify
from sidecar.daemon._commands import (
    cmd_advise,
    cmd_dashboards_install,
    cmd_dashboards_path,
    cmd_query,
    cmd_retention_apply,
    cmd_retention_verify,
)
from sidecar.daemon._erase import add_parsers as add_erasure_parsers
from sidecar.daemon._erase import cmd_erase, cmd_hold, denied_view
from sidecar.daemon._http import HEALTH_PATHS, BoundedHTTPServer, serve_health
from sidecar.daemon._lock import single_instance
from sidecar.daemon._retention import RetentionKeeper
from sidecar.daemon._service import run_service
from sidecar.daemon._sinks import make_sink, read_documents
from sidecar.daemon._stores import open_store

__all__ = ["HEALTH_PATHS", "BoundedHTTPServer", "RetentionKeeper", "add_erasure_parsers", "cmd_advise",
           "cmd_audit_anchor", "cmd_audit_verify", "cmd_dashboards_install", "cmd_dashboards_path", "cmd_erase",
           "cmd_hold", "cmd_query", "cmd_retention_apply", "cmd_retention_verify", "denied_view", "make_sink",
           "open_store", "read_documents", "run_service", "serve_health", "single_instance"]
