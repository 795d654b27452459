"""The package's errors: every exception class it defines derives from :class:`SidecarError`.

``exit_code`` is what the ``sidecar`` command exits with when the error ends a command (one line, never a
traceback): 2 for a configuration or usage error, 1 for a failure or a server that could not be reached.
Subclasses elsewhere keep the built-in base they always had as a second base (``ValueError``,
``RuntimeError``, ``OSError``), so code that catches the built-in still catches them.
"""

from __future__ import annotations

from typing import ClassVar

USAGE, FAILURE = 2, 1


class SidecarError(Exception):
    """Something the sidecar refuses or cannot do, with a message written for the user."""

    exit_code: ClassVar[int] = FAILURE


class ConfigError(SidecarError, ValueError):
    """A setting, an option or a file given by the user is invalid; the message names it."""

    exit_code: ClassVar[int] = USAGE


class ServerError(SidecarError):
    """A server (Elasticsearch, OpenSearch, Kibana, Grafana) could not be reached or refused a request."""
