"""What the ``sidecar`` command needs around argparse: one-line usage errors, bounded argument types,
and the translation of an error that ended a command into one line and an exit code; the pre-flight
check of configured paths that would otherwise fail deep inside a command.

Exit codes: 0 ok, 1 a failure found or a server unreachable, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import errno
import math
import pathlib
import re
import socket
import sqlite3
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from sidecar.errors import FAILURE, USAGE, ConfigError, SidecarError

if TYPE_CHECKING:
    from sidecar.config import ShipperSettings

class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``sidecar query: argument --limit: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {low} to {high}")
        return value

    parse.__name__ = "whole number"
    return parse


def finite_float(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: use a number from {low:g} to {high:g}")
        return value

    parse.__name__ = "number"
    return parse


def http_url(text: str) -> str:
    """An http(s) URL with a host, for --kibana / --grafana."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL, e.g. http://kibana:5601")
    return text


def index_prefix(text: str) -> str:

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,100}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use lowercase letters, digits, '_', '.', '-'")
    return text


def _mode(path: pathlib.Path) -> int | None:
    """The st_mode of ``path``, or None when it is missing or cannot be looked at (no search permission on a
    parent: the command that uses it reports that in its own words)."""
    try:
        return path.stat().st_mode
    except (OSError, ValueError):
        return None


def check_paths(settings: ShipperSettings) -> str | None:
    """A configured directory that is a file (or a store path that is a directory), named by its variable."""
    dirs = (("SIDECAR_SPOOL_DIR", settings.spool_dir),
            ("SIDECAR_STATE_DIR" if settings.state_dir else "SIDECAR_SPOOL_DIR", settings.sidecar_state_dir))
    for name, path in dirs:
        for part in (path, *path.parents):
            mode = _mode(part)
            if mode is not None and not stat.S_ISDIR(mode):
                return f"{name}={path}: {part} is not a directory"
    files = [("SIDECAR_STORE_PATH", settings.embedded_store_path)]
    if not settings.hmac_key:
        files.append(("SIDECAR_HMAC_KEY_FILE", settings.key_file))
    for name, file in files:
        mode = _mode(file)
        if mode is not None and stat.S_ISDIR(mode):
            return f"{name}={file}: is a directory, not a file"
    return None


def _network_error(exc: BaseException) -> bool:
    """A connection that could not be made or was lost (urllib3, elastic-transport, sockets)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"NewConnectionError", "MaxRetryError", "ConnectionError", "ConnectionTimeout",
                         "TransportError", "ProtocolError", "NameResolutionError", "TimeoutError"})


def explain(exc: BaseException, command: str, listen: str | None) -> tuple[str, int]:
    """(one line, exit code) for an error that ended ``command``."""
    if command == "run" and (isinstance(exc, socket.gaierror) or (
            isinstance(exc, OSError) and exc.filename is None
            and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES))):
        return f"SIDECAR_LISTEN={listen}: cannot listen there ({exc.strerror}); choose another host:port", USAGE
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the embedded store is unreadable ({exc}); SIDECAR_STORE_PATH names its file", FAILURE
    if isinstance(exc, OSError) and exc.filename is not None:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return f"{where}: {exc.strerror or exc}", FAILURE
    if isinstance(exc, SidecarError):  # the package's own errors: a message for the user and an exit code
        return (str(exc) if isinstance(exc, ConfigError) else f"{command}: {_short(exc)}"), exc.exit_code
    if _network_error(exc):
        return f"server unreachable: {_short(exc)}", FAILURE
    if isinstance(exc, (RuntimeError, ValueError)):  # raised with a message written for the user
        return f"{command}: {_short(exc)}", FAILURE
    return f"{command} failed: {type(exc).__name__}: {_short(exc)}", FAILURE


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


