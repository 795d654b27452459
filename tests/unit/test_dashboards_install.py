"""`sidecar dashboards install`: the requests it would send. (No Kibana or Grafana server can be
installed here from the registries this project reaches, so the import itself is not run in tests.)"""

from __future__ import annotations

import email.parser
import json
import os
import pathlib
import subprocess
import sys

from sidecar._dashboards import GRAFANA_FILE, KIBANA_FILE, find_dashboards, grafana_import_body, kibana_import_request

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_kibana_multipart_carries_the_ndjson_file_intact() -> None:
    ndjson = (REPO / "dashboards" / KIBANA_FILE).read_bytes()
    path, headers, body = kibana_import_request(ndjson, "audit")
    assert path == "/s/audit/api/saved_objects/_import?overwrite=true"
    assert headers["kbn-xsrf"]
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    (part,) = message.get_payload()
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_payload(decode=True).rstrip(b"\r\n") == ndjson.rstrip(b"\r\n")
    assert kibana_import_request(ndjson, None)[0] == "/api/saved_objects/_import?overwrite=true"


def test_grafana_body_overwrites_by_uid() -> None:
    dashboard = json.loads((REPO / "dashboards" / GRAFANA_FILE).read_text())
    body = grafana_import_body({**dashboard, "id": 17}, "folder-1")
    assert body["overwrite"] is True and body["folderUid"] == "folder-1"
    assert "id" not in body["dashboard"] and body["dashboard"]["uid"] == dashboard["uid"]


def test_cli_finds_the_files_and_says_what_it_would_do(tmp_path: pathlib.Path) -> None:
    assert find_dashboards(None) is not None
    bindir = pathlib.Path(sys.executable).parent
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(tmp_path))
    out = subprocess.run([str(bindir / "sidecar"), "dashboards", "install", "--kibana", "http://kibana:5601",
                          "--grafana", "http://grafana:3000", "--dry-run"], capture_output=True, text=True,
                         env=env, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "saved objects into Kibana" in out.stdout and "into Grafana" in out.stdout
    nothing = subprocess.run([str(bindir / "sidecar"), "dashboards", "install"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert nothing.returncode == 2
