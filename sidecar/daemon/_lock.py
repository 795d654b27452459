"""One sidecar per spool: an exclusive lock on a private file in the state directory."""

from __future__ import annotations

import fcntl
import os
import pathlib
from typing import IO

from sidecar.files import open_private, private_dir


def single_instance(state_dir: pathlib.Path, group: int | None = None) -> IO[str] | None:
    """Hold an exclusive lock on ``state_dir/sidecar.lock`` (0600, never through a symlink): two sidecars on
    one spool would race on the checkpoint. Returns the open lock file (keep it open), or None when another
    sidecar holds it. Raises :class:`~sidecar.files.UnsafePathError` for an unsafe directory or file."""
    private_dir(state_dir, group)
    fd = open_private(state_dir / "sidecar.lock", os.O_RDWR, group)
    fh = os.fdopen(fd, "r+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh
