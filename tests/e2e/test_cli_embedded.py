"""The user's path end to end: an instrumented app, `sidecar run --once`, `sidecar query`."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def sidecar_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "sidecar"), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run the demo application once; every test below reads its records."""
    root = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(root / "spool"), SIDECAR_SERVICE_NAME="demo-app",
               SIDECAR_USER_HEADER="x-user-id")
    app = subprocess.run([sys.executable, str(REPO / "examples" / "demo_app.py")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert app.returncode == 0, app.stderr
    shipped = sidecar_cli(env, "run", "--once")
    assert shipped.returncode == 0, shipped.stderr
    assert "15 stored" in shipped.stderr
    return env


def test_one_record_per_model_call(demo_run: dict[str, str]) -> None:
    out = sidecar_cli(demo_run, "query", "--json", "--limit", "1000")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 15  # 16 HTTP calls, one of them not a model call
    assert {d["gen_ai.provider.name"] for d in docs} == {"openai", "anthropic", "gcp.gemini", "ollama"}
    assert {d["sidecar.http.client"] for d in docs} == {"httpx", "httpx2", "requests"}
    assert all(d["service.name"] == "demo-app" for d in docs)
    users = {d.get("user.id") for d in docs}
    assert {"alice", "bob", "carol"} <= users  # context helper and configured header


def test_nothing_secret_reaches_disk(demo_run: dict[str, str]) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    import demo_app

    spool = pathlib.Path(demo_run["SIDECAR_SPOOL_DIR"])
    blobs = b"".join(p.read_bytes() for p in spool.rglob("*") if p.is_file() and p.name != ".hmac-key")
    for secret in (demo_app.OPENAI_KEY, demo_app.ANTHROPIC_KEY, demo_app.GOOGLE_KEY, "alice.smith@example.com",
                   "13812345678", "11010519491231002X", "4111 1111 1111 1111", "13912345678"):
        assert secret.encode() not in blobs, secret
    assert b"20261125-000042" in blobs  # an order number is not personal data: kept


def test_query_filters(demo_run: dict[str, str]) -> None:
    def ids(*args: str) -> list[str]:
        out = sidecar_cli(demo_run, "query", "--json", *args)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)["event.id"] for line in out.stdout.splitlines()]

    assert len(ids("--status", "429")) == 2
    assert len(ids("--provider", "anthropic")) == 3
    assert len(ids("--model", "gpt-4o-mini")) == 2
    assert len(ids("--user", "alice")) == 3
    assert len(ids("--errors")) == 6
    assert len(ids("--since", "1h")) == 15
    assert ids("--until", "2000-01-01T00:00:00Z") == []
    assert len(ids("--limit", "4")) == 4


def test_summary_and_table(demo_run: dict[str, str]) -> None:
    summary = sidecar_cli(demo_run, "query", "--summary").stdout
    assert "openai           429      1" in summary
    assert "gcp.gemini       503      1" in summary
    table = sidecar_cli(demo_run, "query").stdout
    assert len(table.splitlines()) == 15


def test_run_once_twice_adds_nothing(demo_run: dict[str, str]) -> None:
    again = sidecar_cli(demo_run, "run", "--once")
    assert again.returncode == 0
    assert "0 stored" in again.stderr


def test_usage_and_config_errors_exit_2(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(tmp_path), SIDECAR_BATCH_SIZE="zero")
    bad = sidecar_cli(env, "run", "--once")
    assert bad.returncode == 2 and "SIDECAR_BATCH_SIZE" in bad.stderr
    assert sidecar_cli(dict(os.environ), "frobnicate").returncode == 2
    helptext = sidecar_cli(dict(os.environ), "--help").stdout
    for var in ("SIDECAR_SPOOL_DIR", "SIDECAR_ELASTICSEARCH_URL", "SIDECAR_HMAC_KEY", "SIDECAR_RETENTION_DAYS",
                "SIDECAR_CAPTURE_CONTENT", "SIDECAR_INDEX_PREFIX", "SIDECAR_MODEL_HOSTS", "SIDECAR_STORE_PATH"):
        assert var in helptext


def test_query_never_sends_terminal_controls(tmp_path: pathlib.Path) -> None:
    """Record values come from callers: `sidecar query` (table, JSON and summary) writes control characters,
    bidirectional overrides and line breaks as escapes, never raw, and JSON lines still parse back."""
    import threading

    from sidecar.ship import SqliteStore
    from sidecar.spool import SpoolDoc

    hostile = "gpt-4o\x1b[2K\x1b[1A\rFAKE\nLINE\u202eevil\x9b31m\u2028x\x07"
    store_path = tmp_path / "spool" / ".sidecar" / "audit.db"
    store_path.parent.mkdir(parents=True)
    store_path.parent.chmod(0o700)
    store = SqliteStore(store_path)
    store.open()
    doc = {"event.id": "p-1", "@timestamp": "2026-11-30T10:00:00.000Z", "sidecar.producer.id": "p",
           "sidecar.sequence": 1, "gen_ai.provider.name": "openai", "gen_ai.request.model": hostile,
           "user.id": hostile, "http.response.status_code": 200, "event.duration": 1000}
    raw = json.dumps(doc, ensure_ascii=False).encode()
    store.write([SpoolDoc("p-1", "2026.11.30", raw)], threading.Event())
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(SIDECAR_SPOOL_DIR=str(tmp_path / "spool"), SIDECAR_HMAC_KEY="terminal-test-key-0123456789")
    for args in ([], ["--json"], ["--summary"]):
        out = subprocess.run([str(BIN / "sidecar"), "query", *args], env=env, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        text = out.stdout.decode("utf-8")
        for bad in ("\x1b", "\r", "\u202e", "\x9b", "\u2028", "\x07"):
            assert bad not in text, (args, repr(text))
        if args == ["--json"]:
            (line,) = text.splitlines()
            assert json.loads(line)["gen_ai.request.model"] == hostile
        elif not args:
            assert len(text.splitlines()) == 1 and "FAKE\\u000aLINE" in text, repr(text)
