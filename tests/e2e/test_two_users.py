"""The application and `sidecar run --once` as two different users on one spool directory, laid out the
way the deploy files lay it out, with the package installed from its wheel (tests/e2e/conftest.py).

Layouts (uids and gids are the ones the Dockerfiles use):

* compose: the images prepare /spool as sidecar:shared 2770; app runs as app:shared, sidecar as
  sidecar:shared.
* kubernetes: the kubelet makes the emptyDir root:fsGroup with mode 2777; both containers run with the
  fsGroup as their group and use the subdirectory ``records`` (the sidecar refuses a world-writable
  directory), which the first of them creates.
* bare host: an administrator makes the directory sidecar:shared 2770; the app runs with its own primary
  group and the shared group as a supplementary one, so only the setgid bit gives its files the shared
  group.

What the test relies on from the spool writer: with ``SIDECAR_SPOOL_GROUP`` set (as the deploy files set
it) it creates segments with mode 0640 whatever the umask, and accepts a spool directory another user owns
when it carries the shared group and nothing for others; new files take the directory's group from its
setgid bit (the kernel's rule). From the reader: it deletes shipped segments,
which needs write permission on the directory (the group's rwx). The HMAC key comes from SIDECAR_HMAC_KEY,
so no key file is shared.

Runs as root (it switches uid/gid for the two processes) and fails otherwise."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from model_server import serve

REPO = pathlib.Path(__file__).resolve().parents[2]
KEY = "shared-hmac-key-for-the-two-user-test-0123456789"
CALLS = ["gpt-4o-mini", "error-429", "error-503", "gpt-4o-mini", "error-403"] * 4
APP = """
import sys
import requests
import sidecar

sidecar.instrument()
for i, model in enumerate(sys.argv[2:]):
    try:
        requests.post(sys.argv[1] + "/v1/chat/completions", timeout=10,
                      headers={"Authorization": "Bearer sk-proj-TwoUserTestKey0123456789abcdef"},
                      json={"model": model, "messages": [{"role": "user", "content": f"call {i} bob@example.com"}]})
    except Exception:
        pass
assert sidecar.flush(), "spool not flushed"
"""


def image_user(path: pathlib.Path) -> tuple[int, int]:
    m = re.search(r"(?m)^USER (\d+):(\d+)$", path.read_text())
    assert m, path
    return int(m.group(1)), int(m.group(2))


SIDECAR_UID, SHARED_GID = image_user(REPO / "Dockerfile")
APP_UID, _ = image_user(REPO / "deploy" / "compose" / "app.Dockerfile")
APP_OWN_GID = APP_UID  # the bare-host app's primary group
OTHER_GID = SHARED_GID + 7  # a group that is not the shared one


@pytest.fixture
def root() -> Iterator[pathlib.Path]:
    if os.geteuid() != 0:
        pytest.fail("this test switches between two users and must run as root")
    top = pathlib.Path(tempfile.mkdtemp(prefix="llm-audit-two-users-"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def layout(root: pathlib.Path, kind: str) -> tuple[pathlib.Path, pathlib.Path, dict[str, Any]]:
    """(spool, sidecar state dir, how the app process runs)."""
    spool, state = root / "spool", root / "state"
    spool.mkdir()
    state.mkdir()
    if kind == "kubernetes":
        os.chown(spool, 0, SHARED_GID)
        spool.chmod(0o2777)
        spool = spool / "records"  # deployment.yaml's SIDECAR_SPOOL_DIR: made by the first container
        app = {"user": APP_UID, "group": SHARED_GID, "extra_groups": [SHARED_GID]}
    else:
        os.chown(spool, SIDECAR_UID, SHARED_GID)
        spool.chmod(0o2770)
        app = ({"user": APP_UID, "group": SHARED_GID, "extra_groups": []} if kind == "compose"
               else {"user": APP_UID, "group": APP_OWN_GID, "extra_groups": [SHARED_GID]})
    os.chown(state, SIDECAR_UID, SHARED_GID)
    state.chmod(0o700)
    return spool, state, app


def env(spool: pathlib.Path, state: pathlib.Path, home: pathlib.Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "HOME": str(home), "SIDECAR_SPOOL_DIR": str(spool), "SIDECAR_STATE_DIR": str(state),
            "SIDECAR_HMAC_KEY": KEY, "SIDECAR_SERVICE_NAME": "two-users", "SIDECAR_SPOOL_GROUP": str(SHARED_GID)}


def as_user(args: list[str], environ: dict[str, str], user: int, group: int, extra: list[int],
            cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=environ, user=user, group=group, extra_groups=extra, umask=0o022, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["compose", "kubernetes", "bare-host"])
def test_app_and_sidecar_as_two_users_share_the_spool(kind: str, root: pathlib.Path, installed: Any) -> None:
    spool, state, app = layout(root, kind)
    environ = env(spool, state, root)
    with serve() as base:
        out = as_user([str(installed.python), "-c", APP, base, *CALLS], environ, app["user"], app["group"],
                      app["extra_groups"], root)
    assert out.returncode == 0, out.stderr

    # The raw bytes on disk: the app's segments, group-readable by the shared group only.
    segments = [p for p in spool.iterdir() if p.suffix in (".jsonl", ".open")]
    assert segments, sorted(p.name for p in spool.iterdir())
    lines = []
    for path in spool.iterdir():
        st = path.lstat()
        assert stat.S_IMODE(st.st_mode) & 0o007 == 0, f"{path.name} is readable by other users"
    for path in segments:
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_uid == APP_UID, path
        assert st.st_gid == SHARED_GID, f"{path.name}: group {st.st_gid}, not the shared {SHARED_GID}"
        assert stat.S_IMODE(st.st_mode) == 0o640, f"{path.name}: mode {stat.S_IMODE(st.st_mode):o}"
        lines += [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    assert len(lines) == len(CALLS)
    assert not any(KEY in json.dumps(d) or "bob@example.com" in json.dumps(d) for d in lines)

    sidecar = str(installed.sidecar)
    # Without the shared group the sidecar cannot read the app's segments: one line, exit 1, nothing lost.
    denied_state = root / "state-denied"
    denied_state.mkdir()
    os.chown(denied_state, SIDECAR_UID, OTHER_GID)
    denied = as_user([sidecar, "run", "--once"], {**environ, "SIDECAR_STATE_DIR": str(denied_state)},
                     SIDECAR_UID, OTHER_GID, [], root)
    assert denied.returncode == 1 and "Permission denied" in denied.stderr, denied.stderr
    # `run` logs its start-up (retention applied) first; the failure itself is one line.
    errors = [line for line in denied.stderr.splitlines() if not re.match(r"\d{4}-\d\d-\d\d \d", line)]
    assert "Traceback" not in denied.stderr and len(errors) == 1, denied.stderr
    assert sorted(p.name for p in segments) == sorted(p.name for p in spool.iterdir() if p in segments)

    shipped = as_user([sidecar, "run", "--once"], environ, SIDECAR_UID, SHARED_GID, [SHARED_GID], root)
    assert shipped.returncode == 0, shipped.stderr
    assert f"{len(CALLS)} stored" in shipped.stderr, shipped.stderr
    assert not [p for p in spool.iterdir() if p.suffix in (".jsonl", ".open")], "shipped segments are deleted"

    query = as_user([sidecar, "query", "--json", "--limit", "1000"], environ, SIDECAR_UID, SHARED_GID,
                    [SHARED_GID], root)
    assert query.returncode == 0, query.stderr
    docs = [json.loads(line) for line in query.stdout.splitlines()]
    assert sorted(d["event.id"] for d in docs) == sorted(d["event.id"] for d in lines)
    codes = collections.Counter(d.get("http.response.status_code") for d in docs)
    assert codes == collections.Counter({200: 8, 429: 4, 503: 4, 403: 4})
    assert {d["service.name"] for d in docs} == {"two-users"}
