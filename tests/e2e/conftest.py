"""The package as a user installs it: the wheel built from this tree, installed into a clean venv outside
the repository (``installed``). Built once per session; a failure to build or install fails the tests
that need it, with the build's output."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    wheel: pathlib.Path
    build_log: str
    venv: pathlib.Path
    root: pathlib.Path  # a world-readable folder outside the repository holding the venv

    @property
    def sidecar(self) -> pathlib.Path:
        return self.venv / "bin" / "sidecar"

    @property
    def python(self) -> pathlib.Path:
        return self.venv / "bin" / "python"


def base_python() -> str:
    """An interpreter other users can run too (the two-user test runs the venv as other uids); the
    system one when there is one, else this one."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run([candidate, "-c", "import venv, ensurepip"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    pytest.fail("no Python with venv and ensurepip to build a clean environment from")


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="session")
def installed() -> Iterator[Installed]:
    root = pathlib.Path(tempfile.mkdtemp(prefix="llm-audit-wheel-"))
    root.chmod(0o755)  # other uids run the venv's python (tests/e2e/test_two_users.py)
    try:
        dist = root / "dist"
        # sdist first, then the wheel from the unpacked sdist: what an index gets, and no stale build/ copies
        build = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], cwd=root,
                     env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if build.returncode != 0:
            pytest.fail(f"python -m build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
        (wheel,) = dist.glob("*.whl")
        venv = root / "venv"
        made = _run([base_python(), "-m", "venv", str(venv)])
        if made.returncode != 0:
            pytest.fail(f"venv failed: {made.stderr}")
        pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel), "requests"], cwd=root)
        if pip.returncode != 0:
            pytest.fail(f"pip install of the wheel failed:\n{pip.stdout[-3000:]}\n{pip.stderr[-3000:]}")
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
        yield Installed(wheel, build.stdout + build.stderr, venv, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
