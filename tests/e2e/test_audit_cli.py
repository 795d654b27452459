"""`sidecar audit verify`, `--anchor`, `--keyring` and `sidecar audit anchor` as a user runs them."""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import sys

BIN = pathlib.Path(sys.executable).parent


def sidecar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "sidecar"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_verify_anchor_and_rotation(tmp_path: pathlib.Path, model_url: str) -> None:
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SPOOL_DIR=str(spool), SIDECAR_HMAC_KEY="first-secret-0123456789",
               SIDECAR_DIGEST_GRACE_SECONDS="0.001")
    app = ("import httpx, sidecar; sidecar.instrument();"
           f"[httpx.post('{model_url}/v1/chat/completions', json={{'model': 'm', 'messages': []}}) for _ in range(4)]")
    subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=120)
    run = sidecar(env, "run", "--once")
    assert run.returncode == 0 and "audit head:" in run.stderr, run.stderr
    ok = sidecar(env, "audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stderr, ok.stderr
    anchor = sidecar(env, "audit", "anchor")
    assert anchor.returncode == 0
    heads = tmp_path / "heads.jsonl"
    heads.write_text(anchor.stdout)
    head_file = spool / ".sidecar" / "audit-head.json"
    assert json.loads(head_file.read_text()) == json.loads(anchor.stdout.splitlines()[0])
    assert sidecar(env, "audit", "verify", "--anchor", str(heads)).returncode == 0
    # A log line works as an anchor too.
    line = next(x for x in run.stderr.splitlines() if "audit head:" in x)
    (tmp_path / "log.txt").write_text(line + "\n")
    assert sidecar(env, "audit", "verify", "--anchor", str(tmp_path / "log.txt")).returncode == 0

    # The newest records and digests cut: invisible without the anchor, caught with it.
    conn = sqlite3.connect(spool / ".sidecar" / "audit.db")
    conn.execute("DELETE FROM records")
    conn.execute("DELETE FROM digests WHERE json_extract(doc, '$.\"sidecar.digest.kind\"') = 'segment'")
    conn.commit()
    cut = sidecar(env, "audit", "verify", "--anchor", str(heads), "--json")
    assert cut.returncode == 1 and json.loads(cut.stdout.splitlines()[0])["kind"] == "missing_digest"

    # Unusable inputs: one line, exit 2.
    (tmp_path / "empty").write_text("nothing here\n")
    bad = sidecar(env, "audit", "verify", "--anchor", str(tmp_path / "empty"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_key_rotation_with_a_keyring_file(tmp_path: pathlib.Path, model_url: str) -> None:
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SPOOL_DIR=str(spool), SIDECAR_DIGEST_GRACE_SECONDS="0.001")
    app = ("import httpx, sidecar; sidecar.instrument();"
           f"[httpx.post('{model_url}/v1/chat/completions', json={{'model': 'm', 'messages': []}}) for _ in range(3)]")
    for secret in ("old-secret-0123456789", "new-secret-0123456789"):
        env["SIDECAR_HMAC_KEY"] = secret
        subprocess.run([sys.executable, "-c", app], env=env, check=True, timeout=120)
        assert sidecar(env, "run", "--once").returncode == 0
    without = sidecar(env, "audit", "verify")
    assert without.returncode == 1 and "unknown_key" in without.stdout
    ring = tmp_path / "ring"
    ring.write_text("# retired 2026-12\nold-secret-0123456789\n")
    assert sidecar(env, "audit", "verify", "--keyring", str(ring)).returncode == 0
    assert sidecar(dict(env, SIDECAR_AUDIT_KEYRING=str(ring)), "audit", "verify").returncode == 0
