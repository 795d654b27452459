"""Files only the sidecar (and the app) can read, whatever the umask and wherever the key comes from; no symlink
followed; no directory someone else prepared. Asserted on the real st_mode of every file and directory."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import stat
import subprocess
import sys
import time
from typing import Any

import pytest

BIN = pathlib.Path(sys.executable).parent
KEY = "private-files-test-key-0123456789"
REPORT = os.environ.get("SIDECAR_TEST_MODES_REPORT")  # where to write the modes found (for the docs)


def app(env: dict[str, str], model_url: str, umask: int, calls: int = 3) -> subprocess.CompletedProcess[str]:
    code = ("import httpx, sidecar; sidecar.instrument();"
            f"[httpx.post('{model_url}/v1/chat/completions', json={{'model': 'm', 'messages': []}}) "
            f"for _ in range({calls})]; print('calls ok')")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(umask))


def sidecar(env: dict[str, str], *args: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "sidecar"), *args], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(umask))


def environment(spool: pathlib.Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update({"SIDECAR_SPOOL_DIR": str(spool), "SIDECAR_SPOOL_SEGMENT_SECONDS": "0.2", **extra})
    return env


def modes(root: pathlib.Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.lstat().st_mode) | (root.lstat().st_mode & stat.S_ISGID)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = pathlib.Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = st.st_mode & 0o7777 | (stat.S_IFDIR if stat.S_ISDIR(st.st_mode) else 0)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_snapshot(env: dict[str, str], spool: pathlib.Path, umask: int) -> tuple[dict[str, int], dict[str, int]]:
    """Modes while `sidecar run` holds the store open (its -wal and -shm exist), and after it stopped."""
    proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=dict(env, SIDECAR_LISTEN=f"127.0.0.1:{free_port()}"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=lambda: os.umask(umask))
    try:
        deadline = time.monotonic() + 60
        while not ((spool / ".sidecar" / "audit.db-wal").exists() and not list(spool.glob("*.jsonl"))):
            assert time.monotonic() < deadline and proc.poll() is None, "sidecar run did not ship"
            time.sleep(0.2)
        running = modes(spool)
    finally:
        proc.terminate()
        proc.wait(30)
    return running, modes(spool)


def assert_private(found: dict[str, int]) -> None:
    for name, mode in found.items():
        if mode & stat.S_IFDIR or name == ".":
            assert mode & 0o7777 == 0o700, (name, oct(mode))
        else:
            assert mode == 0o600, (name, oct(mode))


@pytest.mark.parametrize("umask", [0o022, 0o000])
@pytest.mark.parametrize("key_from", ["env", "file"])
def test_every_file_and_directory_is_private(tmp_path: pathlib.Path, model_url: str, umask: int,
                                             key_from: str) -> None:
    spool = tmp_path / "spool"
    env = environment(spool, **({"SIDECAR_HMAC_KEY": KEY} if key_from == "env" else {}),
                      SIDECAR_SPOOL_SEGMENT_SECONDS="30")
    assert "calls ok" in app(env, model_url, umask).stdout
    spooled = modes(spool)
    assert [n for n in spooled if n.endswith(".jsonl")], spooled
    running, stopped = daemon_snapshot(env, spool, umask)
    assert "calls ok" in app(env, model_url, umask).stdout
    run = sidecar(env, "run", "--once", umask=umask)
    assert run.returncode == 0, run.stderr
    assert sidecar(env, "audit", "verify", umask=umask).returncode == 0
    found = {**spooled, **running, **stopped, **modes(spool)}
    expected = {".sidecar/audit.db", ".sidecar/audit.db-wal", ".sidecar/audit.db-shm", ".sidecar/checkpoint.json",
                ".sidecar/sidecar.lock", ".sidecar/chain-id", ".sidecar/audit-head.json", ".sidecar/anomaly.json"}
    expected |= {".hmac-key"} if key_from == "file" else set()
    assert expected <= set(found), sorted(found)
    assert_private(found)
    if REPORT:
        with open(REPORT, "a") as fh:
            fh.write(json.dumps({"umask": f"{umask:03o}", "key": key_from,
                                 "modes": {k if not k.endswith(".jsonl") else "<segment>.jsonl": f"{v & 0o7777:04o}"
                                           for k, v in sorted(found.items())}}) + "\n")


def test_shared_group_spool(tmp_path: pathlib.Path, model_url: str) -> None:
    """App and sidecar as different users sharing a group: spool 2770, its files 0640; state stays 0700/0600."""
    spool = tmp_path / "spool"
    env = environment(spool, SIDECAR_HMAC_KEY=KEY, SIDECAR_SPOOL_GROUP=str(os.getgid()),
                      SIDECAR_SPOOL_SEGMENT_SECONDS="30")
    assert "calls ok" in app(env, model_url, 0o000).stdout
    found = modes(spool)
    assert found["."] & 0o7777 == 0o2770
    segments = [n for n in found if n.endswith((".jsonl", ".open"))]
    assert segments and all(found[n] == 0o640 for n in segments)
    assert sidecar(env, "run", "--once", umask=0o000).returncode == 0
    found = modes(spool)
    assert found[".sidecar"] & 0o7777 == 0o700 and found[".sidecar/audit.db"] == 0o600
    assert all(v & 0o007 == 0 for v in found.values())


def test_default_spool_is_per_user_not_tmp(tmp_path: pathlib.Path) -> None:
    from sidecar.config import AppSettings, ShipperSettings

    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    code = "from sidecar.config import AppSettings; print(AppSettings().spool_dir)"
    xdg = subprocess.run([sys.executable, "-c", code], env=dict(env, XDG_STATE_HOME=str(tmp_path / "xdg")),
                         capture_output=True, text=True, check=True).stdout.strip()
    assert xdg == str(tmp_path / "xdg" / "llm-audit-sidecar" / "spool")
    home = subprocess.run([sys.executable, "-c", code], env={k: v for k, v in env.items() if k != "XDG_STATE_HOME"}
                          | {"HOME": str(tmp_path / "home")}, capture_output=True, text=True, check=True).stdout
    assert home.strip() == str(tmp_path / "home" / ".local" / "state" / "llm-audit-sidecar" / "spool")
    assert str(ShipperSettings.model_fields["listen"].default).startswith("127.0.0.1:")
    assert AppSettings.model_fields["metrics_host"].default == "127.0.0.1"


def one_line_exit_2(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_world_writable_spool_with_a_planted_key_is_refused(tmp_path: pathlib.Path, model_url: str) -> None:
    spool = tmp_path / "shared"
    spool.mkdir()
    os.chmod(spool, 0o777)
    (spool / ".hmac-key").write_text("attacker-chosen-key-0123456789")
    env = environment(spool)
    result = app(env, model_url, 0o022)
    assert "calls ok" in result.stdout  # the app's calls go on
    assert "writable by every user" in result.stderr and "Traceback" not in result.stderr
    assert not [p for p in spool.iterdir() if p.suffix in (".jsonl", ".open")]  # nothing written there
    one_line_exit_2(sidecar(env, "run", "--once"), "writable by every user")


def test_directory_owned_by_another_user_is_refused(tmp_path: pathlib.Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root to give a directory to another user (the suite runs as root here)")
    spool = tmp_path / "theirs"
    spool.mkdir(mode=0o755)
    os.chown(spool, 65534, 65534)
    one_line_exit_2(sidecar(environment(spool, SIDECAR_HMAC_KEY=KEY), "run", "--once"), "owned by another user")


def test_sticky_world_writable_parent_is_fine_but_not_the_spool(tmp_path: pathlib.Path) -> None:
    parent = tmp_path / "tmp"
    parent.mkdir()
    os.chmod(parent, 0o1777)  # like /tmp: our own subdirectory inside it is fine
    env = environment(parent / "mine", SIDECAR_HMAC_KEY=KEY)
    assert sidecar(env, "run", "--once").returncode == 0
    assert stat.S_IMODE((parent / "mine").stat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["spool", "state", "sidecar.lock", "audit.db"])
def test_symlinks_are_refused(tmp_path: pathlib.Path, planted: str) -> None:
    spool, victim = tmp_path / "spool", tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    state = spool / ".sidecar"
    if planted == "spool":
        spool.symlink_to(victim, target_is_directory=True)
    elif planted == "state":
        spool.mkdir(mode=0o700)
        state.symlink_to(victim, target_is_directory=True)
    else:
        state.mkdir(parents=True, mode=0o700)
        (state / planted).symlink_to(victim / "precious")
    one_line_exit_2(sidecar(environment(spool, SIDECAR_HMAC_KEY=KEY), "run", "--once"), "symbolic link")
    assert (victim / "precious").read_text() == "keep me" and sorted(os.listdir(victim)) == ["precious"]


def test_symlinked_checkpoint_is_never_followed(tmp_path: pathlib.Path, model_url: str) -> None:
    """A symlink planted where the checkpoint lives: its target is neither read nor overwritten; the sidecar
    re-reads the spool, marks the reset in the digest chain, and writes a private file of its own."""
    spool, victim = tmp_path / "spool", tmp_path / "victim.txt"
    victim.write_text("keep me")
    env = environment(spool, SIDECAR_HMAC_KEY=KEY)
    assert "calls ok" in app(env, model_url, 0o022).stdout
    assert sidecar(env, "run", "--once").returncode == 0
    checkpoint = spool / ".sidecar" / "checkpoint.json"
    checkpoint.unlink()
    checkpoint.symlink_to(victim)
    (spool / ".sidecar" / "checkpoint.tmp").symlink_to(victim)  # the old, predictable temporary path
    assert "calls ok" in app(env, model_url, 0o022).stdout
    assert sidecar(env, "run", "--once").returncode == 0
    assert victim.read_text() == "keep me"
    assert not checkpoint.is_symlink() and stat.S_IMODE(checkpoint.stat().st_mode) == 0o600
    verify = sidecar(env, "audit", "verify")
    assert verify.returncode == 0 and verify.stderr.count("notice: checkpoint reset") == 1, verify.stderr


@pytest.mark.parametrize("problem", ["unreadable file", "short key", "short key file"])
def test_a_key_problem_never_raises_into_the_app(tmp_path: pathlib.Path, model_url: str, problem: str) -> None:
    """The call proceeds; its record is written with content withheld and the reason; one clear error. A key
    under 16 bytes is a problem too: it keys the integrity chain, and one record's hash would give it away."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    key_dir = tmp_path / "keydir"
    key_dir.mkdir(mode=0o700)
    if problem == "unreadable file":
        (key_dir / "key").mkdir()  # a directory where the key file should be: reading it fails
    elif problem == "short key file":
        (key_dir / "key").write_text("abc\n")
        (key_dir / "key").chmod(0o600)
    extra = {"SIDECAR_HMAC_KEY": "tooshort"} if problem == "short key" else {}
    env = environment(spool, SIDECAR_HMAC_KEY_FILE=str(key_dir / "key"), SIDECAR_SPOOL_SEGMENT_SECONDS="30",
                      **extra)
    result = app(env, model_url, 0o022, calls=2)
    assert "calls ok" in result.stdout and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("no usable HMAC key") == 1
    if problem != "unreadable file":  # the sidecar refuses such a key outright: one line, exit 2
        refused = sidecar(env, "run", "--once")
        assert refused.returncode == 2 and "at least 16" in refused.stderr, refused.stderr
    docs: list[dict[str, Any]] = [json.loads(line) for p in sorted(spool.glob("*.jsonl"))
                                  for line in p.read_bytes().splitlines()]
    assert len(docs) == 2
    for doc in docs:
        assert doc["sidecar.content.note"] == "key_unavailable"
        assert "sidecar.request.content" not in doc and "sidecar.response.content" not in doc


def test_planted_segments_are_never_read(tmp_path: pathlib.Path, model_url: str) -> None:
    """Whoever can write the spool must not make the sidecar read its own private files into the store: a
    segment name that is a symlink, a FIFO or a second hard link to a private file is refused (logged once,
    left in place); the app's real segments are shipped. Asserted on the raw bytes of the store files."""
    spool = tmp_path / "spool"
    env = environment(spool, SIDECAR_HMAC_KEY=KEY)
    assert app(env, model_url, 0o022, calls=2).returncode == 0
    secret = tmp_path / "sidecar-only.txt"
    secret.write_text('{"leak":"PLANTED-SECRET-d41d8cd9 AKIAIOSFODNN7EXAMPLQ"}\nPLANTED-SECRET-line-two\n')
    secret.chmod(0o600)
    (spool / "aaaa0000aaaa0000-000001-1000.jsonl").symlink_to(secret)
    os.link(secret, spool / "bbbb0000bbbb0000-000001-1000.jsonl")
    os.mkfifo(spool / "cccc0000cccc0000-000001-1000.jsonl")
    run = sidecar(env, "run", "--once")
    assert run.returncode == 1, run.stderr  # something in the spool was left unshipped: looked at, not read
    assert "2 stored" in run.stderr and "Traceback" not in run.stderr, run.stderr
    for name in ("aaaa0000aaaa0000", "bbbb0000bbbb0000", "cccc0000cccc0000"):
        assert f"refusing {name}" in run.stderr, run.stderr
    state = spool / ".sidecar"
    for path in state.iterdir():
        if path.is_file():
            assert b"PLANTED-SECRET" not in path.read_bytes(), path.name
    assert secret.read_text().startswith('{"leak"')  # untouched, and the planted names are still there
    assert (spool / "aaaa0000aaaa0000-000001-1000.jsonl").is_symlink()
