"""The HMAC key behind the placeholders: from the environment, a key file, or generated once."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import secrets
import stat
import time

from ._errors import RedactionError

__all__ = ["MIN_KEY_BYTES", "load_or_create_key"]

_log = logging.getLogger("sidecar.redact")

#: Keys shorter than this are accepted but logged as weak.
MIN_KEY_BYTES = 16


def load_or_create_key(env_value: str | None, path: pathlib.Path) -> bytes:
    """Return the HMAC key for placeholders.

    1. ``env_value`` (the ``SIDECAR_HMAC_KEY`` variable), when set and not empty: its UTF-8 bytes,
       used as they are (no hex or base64 decoding).
    2. Otherwise the content of ``path`` (one trailing newline stripped), when the file exists.
    3. Otherwise a new key: 32 random bytes written as 64 hex characters to ``path`` with mode
       0600 (created exclusively, so of two processes starting together one creates it and the
       other reads it).  The key is those 64 ASCII characters, so ``SIDECAR_HMAC_KEY=$(cat path)``
       gives the same pseudonyms.  A WARNING on the ``sidecar.redact`` logger says where the key
       was written; the key itself is never logged.

    Raises ``RedactionError`` if the file exists but is empty or unreadable, rather than
    silently replacing a key and breaking correlation with earlier records.
    """
    if env_value:
        key = env_value.encode("utf-8", "surrogatepass")
        if len(key) < MIN_KEY_BYTES:
            _log.warning("SIDECAR_HMAC_KEY is shorter than %d bytes; pseudonyms are easier to guess", MIN_KEY_BYTES)
        return key
    path = pathlib.Path(path)
    existing = _read_key(path)
    if existing is not None:
        return existing
    return _create_key(path)


def _read_key(path: pathlib.Path, *, wait_s: float = 2.0) -> bytes | None:
    """Read the key file; ``None`` if it does not exist.  Waits briefly for a racing writer."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RedactionError(f"cannot read HMAC key file {path}: {exc.strerror or type(exc).__name__}") from None
        if data.endswith(b"\n"):
            data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
        if data:
            _warn_if_exposed(path)
            return data
        if time.monotonic() >= deadline:
            raise RedactionError(f"HMAC key file {path} is empty; delete it to get a new key or set SIDECAR_HMAC_KEY")
        time.sleep(0.02)


def _warn_if_exposed(path: pathlib.Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("HMAC key file %s is readable by group or others (mode %o); chmod 600 it", path, mode & 0o777)


def _create_key(path: pathlib.Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(32).encode("ascii")
    # Write a private temporary file completely, then hard-link it into place: the link fails if
    # another process got there first, and nobody ever sees a half-written key file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_exclusive(tmp, key)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            other = _read_key(path)
            if other is None:  # deleted between link and read: unlikely, try once more
                return _create_key(path)
            return other
        except OSError:
            # file systems without hard links: create the target exclusively in place
            try:
                _write_exclusive(path, key)
            except FileExistsError:
                other = _read_key(path)
                if other is None:
                    raise RedactionError(f"HMAC key file {path} vanished while being created") from None
                return other
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _log.warning(
        "generated a new HMAC key for redaction placeholders at %s (mode 0600); keep this file or set "
        "SIDECAR_HMAC_KEY so pseudonyms stay stable across restarts and hosts",
        path,
    )
    return key


def _write_exclusive(path: pathlib.Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data + b"\n")
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
