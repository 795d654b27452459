"""`sidecar erase` as a user runs it: real app, real SDK traffic, `sidecar run`, then the raw bytes of the
store's files (audit.db, -wal, -shm) are searched for what was erased."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

BIN = pathlib.Path(sys.executable).parent
SECRET = "ALICE-PRIVATE-7f3a9c"


def sidecar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "sidecar"), *args], env=env, capture_output=True, text=True, timeout=300)


def raw_store_bytes(db: pathlib.Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
                    if p.exists())


def _env(tmp_path: pathlib.Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SPOOL_DIR=str(tmp_path / "spool"), SIDECAR_HMAC_KEY="erase-e2e-secret-0123456789",
               SIDECAR_DIGEST_GRACE_SECONDS="0.001")
    return env


def _app(env: dict[str, str], model_url: str, n: int = 6) -> None:
    app = ("import httpx, sidecar; sidecar.instrument()\n"
           f"for i in range({n}):\n"
           "    for who in ('alice', 'bob'):\n"
           "        with sidecar.user_context(who):\n"
           f"            text = ('{SECRET}-%d' % i) if who == 'alice' else ('BOB-KEEPS-%d' % i)\n"
           f"            httpx.post('{model_url}/v1/chat/completions', json={{'model': 'm', 'messages': "
           "[{'role': 'user', 'content': text}]})\n")
    subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_erased_bytes_leave_every_store_file(tmp_path: pathlib.Path, model_url: str) -> None:
    env = _env(tmp_path)
    _app(env, model_url)
    assert sidecar(env, "run", "--once").returncode == 0
    db = tmp_path / "spool" / ".sidecar" / "audit.db"
    before = raw_store_bytes(db)
    assert SECRET.encode() in before and b"BOB-KEEPS-" in before  # the search can see them
    assert b'"user.id":"alice"' in before

    # While `sidecar run` keeps the store open (its connection, -wal and -shm), as in production.
    env["SIDECAR_LISTEN"] = f"127.0.0.1:{_free_port()}"
    daemon = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        dry = sidecar(env, "erase", "--user", "alice", "--dry-run", "--reason", "request 1")
        assert dry.returncode == 0 and "would erase" in dry.stderr and SECRET.encode() in raw_store_bytes(db)
        done = sidecar(env, "erase", "--user", "alice", "--reason", "GDPR request 1", "--operator", "dpo@example")
        assert done.returncode == 0, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    after = raw_store_bytes(db)
    assert SECRET.encode() not in after and b'"user.id":"alice"' not in after
    assert b"BOB-KEEPS-" in after  # only the subject's records were touched

    verify = sidecar(env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("erased ") and "6 records erased by 1 signed events" in verify.stderr
    query = sidecar(env, "query", "--json")
    assert SECRET not in query.stdout and query.stdout.count('"sidecar.erased"') == 6


def test_hold_then_erase_is_refused_in_one_line(tmp_path: pathlib.Path, model_url: str) -> None:
    env = _env(tmp_path)
    _app(env, model_url, n=2)
    assert sidecar(env, "run", "--once").returncode == 0
    add = sidecar(env, "hold", "add", "--user", "alice", "--reason", "litigation", "--operator", "legal")
    assert add.returncode == 0 and add.stdout.startswith("hold-")
    refused = sidecar(env, "erase", "--user", "alice", "--reason", "GDPR")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "legal hold" in refused.stderr and "Traceback" not in refused.stderr
    assert SECRET.encode() in raw_store_bytes(tmp_path / "spool" / ".sidecar" / "audit.db")
    listed = sidecar(env, "hold", "list")
    assert listed.returncode == 0 and "user=alice" in listed.stdout
    usage = sidecar(env, "erase", "--user", "alice", "--record", "x", "--reason", "r")
    assert usage.returncode == 2


def test_unreachable_or_missing_store_is_one_line(tmp_path: pathlib.Path) -> None:
    env = _env(tmp_path)
    for args in (("erase", "--user", "a", "--reason", "r"), ("hold", "list"),
                 ("hold", "add", "--user", "a", "--reason", "r")):
        missing = sidecar(env, *args)
        assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
        assert "no embedded store" in missing.stderr
    down = dict(env, SIDECAR_ELASTICSEARCH_URL=f"http://127.0.0.1:{_free_port()}")
    for args in (("erase", "--user", "a", "--reason", "r"), ("hold", "list")):
        res = sidecar(down, *args)
        assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "Traceback" not in res.stderr
    nokey = {k: v for k, v in env.items() if k != "SIDECAR_HMAC_KEY"}
    res = sidecar(nokey, "erase", "--user", "a", "--reason", "r")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
