"""Zero-code start-up (`opentelemetry-instrument`) with a bad SIDECAR_* value: OpenTelemetry's
auto-initialisation and the other instrumentors go on; one error line names the variable; the
sidecar stays off (no records, no spool)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("variable,value", [("SIDECAR_SPOOL_FSYNC", "sometimes"),
                                            ("SIDECAR_MAX_CONTENT_CHARS", "-5"),
                                            ("SIDECAR_CONVERSATION_HEADER", "bad header\u00e9")])
def test_a_bad_value_leaves_opentelemetry_running(tmp_path: pathlib.Path, model_url: str, variable: str,
                                                  value: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        "import httpx, requests\n"
        f"print('status', httpx.post({model_url + '/v1/chat/completions'!r}, json={CHAT!r}).status_code)\n"
        f"print('status', requests.get({model_url + '/v1/models'!r}, timeout=10).status_code)\n")
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIDECAR_"))}
    env.update(SIDECAR_SPOOL_DIR=str(spool), OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none",
               OTEL_LOGS_EXPORTER="none", OTEL_SERVICE_NAME="zero-code-app", **{variable: value})
    bindir = pathlib.Path(sys.executable).parent
    out = subprocess.run([str(bindir / "opentelemetry-instrument"), sys.executable, str(app)], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("status 200") == 2  # the app ran
    # the console exporter printed the httpx and requests instrumentors' spans: tracing was set up
    spans = [json.loads(block) for block in _json_blocks(out.stdout)]
    names = {s["name"] for s in spans}
    assert "POST" in names and "GET" in names, names
    errors = [line for line in out.stderr.splitlines() if variable in line]
    assert len(errors) == 1 and "llm-audit-sidecar is OFF" in errors[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not spool.exists() or (not any(spool.glob("*.jsonl")) and not any(spool.glob("*.open")))


def _json_blocks(text: str) -> list[str]:
    """The top-level JSON objects the console span exporter prints, one after another."""
    blocks, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                blocks.append(text[start:i + 1])
    return blocks
