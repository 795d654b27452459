"""Private files and directories: the one place the spool, state dir, store, checkpoint and lock are made.

Rules (whatever the umask, wherever the key comes from):

* directories ``0700`` and files ``0600``; with a shared group configured (``SIDECAR_SPOOL_GROUP``,
  for an app and a sidecar running as different users), the spool directory is ``2770`` (both sides
  create and delete segments; new files inherit the group) and its files ``0640`` — never
  readable or writable by others;
* a directory that is world-writable without the sticky bit, or owned by another user (unless it
  carries the configured shared group and nothing for others), is refused with
  :class:`UnsafePathError` (the CLI exits 2 with its message);
* files are opened with ``O_NOFOLLOW`` (a planted symlink is an error, never followed) and new
  files with ``O_EXCL``; modes are set with ``fchmod`` on the open descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pathlib
import secrets
import stat
from collections.abc import Iterator

from sidecar.errors import SidecarError

__all__ = ["UnsafePathError", "dir_mode", "file_mode", "open_private", "private_dir", "replace_private",
           "resolve_group", "write_all"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafePathError(SidecarError, OSError):
    """A path the sidecar will not use: the message says which and why, in one line."""


def resolve_group(value: str | int | None) -> int | None:
    """A group name or number -> gid (None when unset). Raises ValueError for an unknown name."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return grp.getgrnam(str(value)).gr_gid
    except KeyError:
        raise ValueError(f"unknown group {value!r}") from None


def dir_mode(group: int | None, *, shared: bool = False) -> int:
    if group is None:
        return 0o700
    return 0o2770 if shared else 0o750


def file_mode(group: int | None) -> int:
    return 0o600 if group is None else 0o640


def _check_dir(path: pathlib.Path, st: os.stat_result, group: int | None) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path} is a symbolic link; give the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} exists and is not a directory")
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UnsafePathError(f"{path} is writable by every user (mode {st.st_mode & 0o7777:04o}, no sticky bit); "
                              "use a directory only this user (or the shared group) can write, such as a subdirectory "
                              "of it that the sidecar creates")
    if st.st_uid != os.geteuid():
        shared_ok = group is not None and st.st_gid == group and not st.st_mode & 0o007
        if not shared_ok:
            raise UnsafePathError(f"{path} is owned by another user (uid {st.st_uid}); refusing a directory someone "
                                  "else prepared (set SIDECAR_SPOOL_GROUP for a volume shared through a group)")


def private_dir(path: pathlib.Path, group: int | None = None, *, shared: bool = False) -> pathlib.Path:
    """Create ``path`` (and missing parents) private, or check an existing one; returns ``path``.

    A directory we own gets its mode tightened to the rule; one we do not own is accepted only
    through the shared group (see the module docstring). ``shared``: the spool (group-writable).
    """
    path = pathlib.Path(path)
    want = dir_mode(group, shared=shared)
    missing: list[pathlib.Path] = []
    probe = path
    while True:
        try:
            os.lstat(probe)
            break
        except FileNotFoundError:
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: checked below
            os.mkdir(p, 0o700)
            if p != path:  # a parent we created: private, the group may pass through
                _set_mode(p, 0o700 if group is None else 0o750, group)
    st = os.lstat(path)
    _check_dir(path, st, group)
    if st.st_uid == os.geteuid() and (st.st_mode & 0o7777 != want or (group is not None and st.st_gid != group)):
        _set_mode(path, want, group)
    return path


def _set_mode(path: pathlib.Path, mode: int, group: int | None) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
    try:
        if group is not None:
            os.fchown(fd, -1, group)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def open_private(path: pathlib.Path, flags: int, group: int | None = None, *, exclusive: bool = False) -> int:
    """``os.open`` that never follows a symlink, creates the file with the private mode (``fchmod``
    after creation, so the umask neither loosens nor breaks it) and refuses a file owned by someone else.
    ``flags``: the access flags (``O_RDWR``, ``O_APPEND``...); ``O_CREAT`` is added."""
    mode = file_mode(group)
    extra = os.O_CREAT | _NOFOLLOW | _CLOEXEC | (os.O_EXCL if exclusive else 0)
    try:
        fd = os.open(path, flags | extra, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):  # what O_NOFOLLOW answers
            raise UnsafePathError(f"{path} is a symbolic link; refusing to follow it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise UnsafePathError(f"{path} is owned by another user (uid {st.st_uid}); refusing to use it")
        if group is not None and st.st_gid != group:
            os.fchown(fd, -1, group)
        if st.st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def replace_private(path: pathlib.Path, group: int | None = None) -> Iterator[int]:
    """Write a new version of ``path`` atomically: yields the descriptor of a fresh temporary file
    (random name, ``O_EXCL``: a symlink planted at a predictable temp path is never followed), fsyncs
    it and renames it over ``path`` when the block ends without error."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = open_private(tmp, os.O_WRONLY, group, exclusive=True)
    try:
        yield fd
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
