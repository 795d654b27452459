"""The secret behind placeholders and tamper evidence: from the environment, a key file, or generated once.

One secret, several roles kept apart by derivation with distinct labels (:func:`derive`):
``pseudonym`` (placeholders, credential fingerprints) and ``integrity`` (record chains and digest
signatures, split further in ``sidecar.audit``). A leaked pseudonym tag therefore says nothing about
the integrity key, and the reverse.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import pathlib
import secrets
import stat
import time
from dataclasses import dataclass

from sidecar.files import UnsafePathError, open_private, private_dir, write_all

from ._errors import RedactionError

__all__ = ["MIN_KEY_BYTES", "ROLES", "AppKeys", "app_keys", "derive", "load_or_create_key", "read_key_ring"]

_log = logging.getLogger("sidecar.redact")

#: Keys shorter than this are refused: the same secret keys the integrity chain, and a short one can be
#: found from a single record's hash by trying them all.
MIN_KEY_BYTES = 16


ROLES = ("pseudonym", "integrity")
_LABEL = b"llm-audit-sidecar/key-role/v1/"


def derive(secret: bytes, role: str) -> bytes:
    """The key for one role, derived from the configured secret (HMAC-SHA256 with a role label)."""
    if role not in ROLES:
        raise ValueError(f"unknown key role {role!r}")
    return hmac.digest(secret, _LABEL + role.encode("ascii"), hashlib.sha256)


@dataclass(frozen=True)
class AppKeys:
    """The keys an instrumented process uses. ``problem``: why the configured key could not be used;
    then the keys are random and single-use, content is withheld and records say so."""

    pseudonym: bytes
    integrity: bytes
    problem: str | None = None

    def __repr__(self) -> str:
        return f"AppKeys(problem={self.problem!r})"


def app_keys(env_value: str | None, path: pathlib.Path, group: int | None = None) -> AppKeys:
    """Never raises: a missing, unreadable, empty or unsafe key file gives random keys, one clear
    ERROR on the ``sidecar.redact`` logger, and ``problem`` set (the caller withholds content)."""
    try:
        secret = load_or_create_key(env_value, path, group)
        return AppKeys(derive(secret, "pseudonym"), derive(secret, "integrity"))
    except Exception as exc:  # the application's call must go on whatever is wrong with the key
        problem = str(exc) if isinstance(exc, (RedactionError, OSError)) else type(exc).__name__
        _log.error("no usable HMAC key (%s): model calls are still recorded, with content withheld and "
                   "pseudonyms unlinkable; fix the key file or set SIDECAR_HMAC_KEY", problem)
        return AppKeys(secrets.token_bytes(32), secrets.token_bytes(32), problem or "key unavailable")


def read_key_ring(path: pathlib.Path) -> list[bytes]:
    """Older secrets for ``sidecar audit verify``: one per line (blank lines and ``#`` comments skipped),
    each used as its UTF-8 bytes, exactly like ``SIDECAR_HMAC_KEY``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise RedactionError(f"key ring {path} is not a regular file")
            data = fh.read()
    except OSError as exc:
        raise RedactionError(f"key ring {path}: {exc.strerror or exc}") from None
    out = []
    for line in data.splitlines():
        line = line.strip()
        if line and not line.startswith(b"#"):
            out.append(_long_enough(line, f"a line of key ring {path}"))
    if not out:
        raise RedactionError(f"key ring {path} holds no key (one secret a line)")
    return out


def load_or_create_key(env_value: str | None, path: pathlib.Path, group: int | None = None) -> bytes:
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
        return _long_enough(env_value.encode("utf-8", "surrogatepass"), "SIDECAR_HMAC_KEY")
    path = pathlib.Path(path)
    follow = _trusted_dir(path.parent, group)
    existing = _read_key(path, follow=follow)
    if existing is not None:
        return _long_enough(existing, f"HMAC key file {path}")
    try:
        private_dir(path.parent, group, shared=group is not None)  # a planted world-writable dir is refused
    except UnsafePathError as exc:
        raise RedactionError(f"HMAC key file {path}: {exc}") from None
    return _create_key(path, group)


def _long_enough(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise RedactionError(f"{where} holds {len(key)} bytes; use at least {MIN_KEY_BYTES} (e.g. "
                             "`openssl rand -hex 32`): a shorter key can be recovered from one record's hash")
    return key


def _trusted_dir(directory: pathlib.Path, group: int | None) -> bool:
    """May a key file in ``directory`` be read, and through a symlink? Refuses (raises) a directory anyone
    could have planted a key in; True (follow symlinks, as in mounted Kubernetes secrets) only for a
    directory that root or this user owns and nobody else can write."""
    try:
        st = directory.lstat()
    except FileNotFoundError:
        return False
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise RedactionError(f"HMAC key file directory {directory} is writable by every user (mode "
                             f"{st.st_mode & 0o7777:04o}); refusing a key anyone could have planted")
    owner_ok = st.st_uid in (0, os.geteuid())
    if not owner_ok and not (group is not None and st.st_gid == group and not st.st_mode & 0o007):
        raise RedactionError(f"HMAC key file directory {directory} is owned by another user (uid {st.st_uid}); "
                             "refusing a key someone else prepared")
    return owner_ok and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_key(path: pathlib.Path, *, wait_s: float = 2.0, follow: bool = False) -> bytes | None:
    """Read the key file; ``None`` if it does not exist.  Waits briefly for a racing writer."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            nofollow = 0 if follow else getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(path, os.O_RDONLY | nofollow | getattr(os, "O_CLOEXEC", 0))
            with os.fdopen(fd, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if os.path.islink(path):
                raise RedactionError(f"HMAC key file {path} is a symbolic link; refusing to follow it") from None
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


def _create_key(path: pathlib.Path, group: int | None) -> bytes:
    key = secrets.token_hex(32).encode("ascii")
    # Write a private temporary file completely, then hard-link it into place: the link fails if
    # another process got there first, and nobody ever sees a half-written key file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_exclusive(tmp, key, group)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            other = _read_key(path)
            if other is None:  # deleted between link and read: unlikely, try once more
                return _create_key(path, group)
            return other
        except OSError:
            # file systems without hard links: create the target exclusively in place
            try:
                _write_exclusive(path, key, group)
            except FileExistsError:
                other = _read_key(path)
                if other is None:
                    raise RedactionError(f"HMAC key file {path} vanished while being created") from None
                return other
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _log.warning(
        "generated a new HMAC key for redaction placeholders and tamper evidence at %s (mode %s); keep this file "
        "or set SIDECAR_HMAC_KEY so pseudonyms stay stable across restarts and hosts",
        path, "0600" if group is None else "0640",
    )
    return key


def _write_exclusive(path: pathlib.Path, data: bytes, group: int | None) -> None:
    fd = open_private(path, os.O_WRONLY, group, exclusive=True)
    try:
        write_all(fd, data + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
