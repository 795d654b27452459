"""`sidecar dashboards install`: the requests it sends, against loopback HTTP servers that answer as Kibana's
saved-objects import and Grafana's dashboard API do (no Kibana or Grafana server can be installed here from
the registries this project reaches), and a server that cannot be reached."""

from __future__ import annotations

import email.parser
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sidecar.dashboards.install import (
    GRAFANA_FILE,
    KIBANA_FILE,
    find_dashboards,
    grafana_import_body,
    kibana_import_request,
)
from sidecar.dashboards.kibana import saved_objects, to_ndjson

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent / "sidecar"


def multipart_file(headers: dict[str, str], body: bytes) -> tuple[str | None, bytes]:
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    (part,) = message.get_payload()
    return part.get_param("name", header="content-disposition"), part.get_payload(decode=True)


def test_kibana_multipart_carries_the_ndjson_file_intact() -> None:
    ndjson = (REPO / "dashboards" / KIBANA_FILE).read_bytes()
    path, headers, body = kibana_import_request(ndjson, "audit")
    assert path == "/s/audit/api/saved_objects/_import?overwrite=true"
    assert headers["kbn-xsrf"]
    name, payload = multipart_file(headers, body)
    assert name == "file" and payload.rstrip(b"\r\n") == ndjson.rstrip(b"\r\n")
    assert kibana_import_request(ndjson, None)[0] == "/api/saved_objects/_import?overwrite=true"


def test_grafana_body_overwrites_by_uid() -> None:
    dashboard = json.loads((REPO / "dashboards" / GRAFANA_FILE).read_text())
    body = grafana_import_body({**dashboard, "id": 17}, "folder-1")
    assert body["overwrite"] is True and body["folderUid"] == "folder-1"
    assert "id" not in body["dashboard"] and body["dashboard"]["uid"] == dashboard["uid"]


def test_the_packaged_folder_is_found_from_anywhere(tmp_path: pathlib.Path) -> None:
    folder = find_dashboards(None)
    assert folder is not None and folder.parent.name == "_assets" and folder.parent.parent.name == "sidecar"
    assert find_dashboards(tmp_path) is None


class Recorder(ThreadingHTTPServer):
    def __init__(self, status: int, answer: Any) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status, self.answer = status, answer
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append((self.path, self.headers, body))  # header names: any case
                data = json.dumps(recorder.answer).encode()
                self.send_response(recorder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    status, answer = request.param
    srv = Recorder(status, answer)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def sidecar(*args: str, cwd: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    return subprocess.run([str(BIN), "dashboards", "install", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**clean, "SIDECAR_SPOOL_DIR": str(cwd / "spool"), **env})


@pytest.mark.parametrize("server", [(200, {"success": True, "successCount": 19})], indirect=True)
def test_kibana_import_for_the_configured_prefix(server: Recorder, tmp_path: pathlib.Path) -> None:
    out = sidecar("--kibana", server.url, "--kibana-space", "audit", "--kibana-api-key", "a2V5",
                  cwd=tmp_path, SIDECAR_INDEX_PREFIX="acme")
    assert out.returncode == 0, out.stderr
    assert "Kibana: imported 19 saved objects" in out.stdout
    ((path, headers, body),) = server.requests
    assert path == "/s/audit/api/saved_objects/_import?overwrite=true"
    assert headers["kbn-xsrf"] and headers["Authorization"] == "ApiKey a2V5"
    _, payload = multipart_file(headers, body)
    assert payload == to_ndjson(saved_objects("acme"))
    titles = {json.loads(line)["attributes"]["title"] for line in payload.splitlines()}
    assert {"acme-2*", "acme-anomalies-*", "acme-deadletter-*"} <= titles


@pytest.mark.parametrize("server", [(200, {"success": False, "errors": [{"id": "x", "error": {"type": "conflict"}}]}),
                                    (401, {"statusCode": 401, "message": "Unauthorized"})], indirect=True)
def test_a_refused_import_is_one_line_and_exit_1(server: Recorder, tmp_path: pathlib.Path) -> None:
    out = sidecar("--kibana", server.url, cwd=tmp_path)
    assert out.returncode == 1 and out.stdout.startswith("Kibana: FAILED") and len(out.stdout.splitlines()) == 1
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("server", [(200, {"status": "success", "uid": "llm-audit-sidecar"})], indirect=True)
def test_grafana_import(server: Recorder, tmp_path: pathlib.Path) -> None:
    out = sidecar("--grafana", server.url, "--grafana-token", "glsa_x", "--grafana-folder", "f1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ((path, headers, body),) = server.requests
    assert path == "/api/dashboards/db" and headers["Authorization"] == "Bearer glsa_x"
    sent = json.loads(body)
    assert sent["folderUid"] == "f1" and sent["dashboard"]["uid"] == "llm-audit-sidecar"


def test_dry_run_and_unreachable(tmp_path: pathlib.Path) -> None:
    out = sidecar("--kibana", "http://kibana:5601", "--grafana", "http://grafana:3000", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "saved objects (data views llm-audit-2*" in out.stdout and "into Grafana" in out.stdout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = sidecar("--kibana", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.strip() == f"sidecar: Kibana at http://127.0.0.1:{port} unreachable: Connection refused"
    nothing = sidecar(cwd=tmp_path)
    assert nothing.returncode == 2 and len(nothing.stderr.strip().splitlines()) == 1 and "--kibana" in nothing.stderr
