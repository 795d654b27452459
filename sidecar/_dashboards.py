"""``sidecar dashboards install``: import the Kibana saved objects and the Grafana dashboard.

The files live in the repository's ``dashboards/`` folder (and in the container image under
``/usr/share/llm-audit-sidecar/dashboards``); the servers are reached with urllib3 and with
instrumentation suppressed, like every other request the sidecar makes.
"""

from __future__ import annotations

import base64
import json
import pathlib
import secrets
from typing import Any, TextIO

import urllib3
from opentelemetry.instrumentation.utils import suppress_http_instrumentation, suppress_instrumentation

KIBANA_FILE = pathlib.Path("kibana") / "llm-audit.ndjson"
GRAFANA_FILE = pathlib.Path("grafana") / "llm-audit.json"
_SEARCH = (pathlib.Path.cwd() / "dashboards", pathlib.Path(__file__).resolve().parent.parent / "dashboards",
           pathlib.Path("/usr/share/llm-audit-sidecar/dashboards"))


def find_dashboards(explicit: pathlib.Path | None) -> pathlib.Path | None:
    for folder in ((explicit,) if explicit else _SEARCH):
        if (folder / KIBANA_FILE).exists() and (folder / GRAFANA_FILE).exists():
            return folder
    return None


def kibana_import_request(ndjson: bytes, space: str | None) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of Kibana's saved-objects import: multipart with the NDJSON as ``file``."""
    boundary = "----llm-audit-" + secrets.token_hex(12)
    body = (f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="llm-audit.ndjson"\r\n'
            "Content-Type: application/ndjson\r\n\r\n").encode() + ndjson + f"\r\n--{boundary}--\r\n".encode()
    prefix = f"/s/{space}" if space and space != "default" else ""
    headers = {"kbn-xsrf": "llm-audit-sidecar", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return f"{prefix}/api/saved_objects/_import?overwrite=true", headers, body


def grafana_import_body(dashboard: dict[str, Any], folder_uid: str | None) -> dict[str, Any]:
    """Body of Grafana's ``POST /api/dashboards/db``: the dashboard by uid, overwriting an older copy."""
    dash = dict(dashboard)
    dash.pop("id", None)  # Grafana assigns ids; the uid keeps it stable across imports
    body: dict[str, Any] = {"dashboard": dash, "overwrite": True, "message": "imported by sidecar dashboards install"}
    if folder_uid:
        body["folderUid"] = folder_uid
    return body


def _auth(api_key: str | None, token: str | None, user: str | None, password: str | None) -> dict[str, str]:
    if api_key:
        return {"Authorization": f"ApiKey {api_key}"}
    if token:
        return {"Authorization": f"Bearer {token}"}
    if user:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()}
    return {}


def _post(http: urllib3.PoolManager, url: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    with suppress_instrumentation(), suppress_http_instrumentation():
        resp = http.request("POST", url, body=body, headers=headers, timeout=30.0, retries=False)
    try:
        return resp.status, json.loads(resp.data or b"null")
    except ValueError:
        return resp.status, resp.data[:300].decode(errors="replace")


def install(folder: pathlib.Path, out: TextIO, *, kibana: str | None = None, kibana_space: str | None = None,
            kibana_api_key: str | None = None, grafana: str | None = None, grafana_token: str | None = None,
            grafana_folder: str | None = None, user: str | None = None, password: str | None = None,
            dry_run: bool = False) -> int:
    """Import into each server given; 0 when every import succeeded, 1 otherwise."""
    http = urllib3.PoolManager()
    ok = True
    if kibana:
        path, headers, body = kibana_import_request((folder / KIBANA_FILE).read_bytes(), kibana_space)
        objects = sum(1 for line in (folder / KIBANA_FILE).read_bytes().splitlines() if line.strip())
        if dry_run:
            out.write(f"would import {objects} saved objects into Kibana at {kibana.rstrip('/')}{path}\n")
        else:
            status, answer = _post(http, kibana.rstrip("/") + path, {**headers, **_auth(kibana_api_key, None, user,
                                                                                      password)}, body)
            good = status == 200 and isinstance(answer, dict) and answer.get("success") is True
            ok &= good
            out.write(f"Kibana: {'imported' if good else 'FAILED'} {objects} saved objects (HTTP {status}"
                      f"{'' if good else ': ' + json.dumps(answer)[:300]})\n")
    if grafana:
        dashboard = json.loads((folder / GRAFANA_FILE).read_text())
        payload = json.dumps(grafana_import_body(dashboard, grafana_folder)).encode()
        url = grafana.rstrip("/") + "/api/dashboards/db"
        if dry_run:
            out.write(f"would import dashboard {dashboard.get('uid')!r} into Grafana at {url}\n")
        else:
            status, answer = _post(http, url, {"Content-Type": "application/json",
                                               **_auth(None, grafana_token, user, password)}, payload)
            good = status == 200 and isinstance(answer, dict) and answer.get("status") == "success"
            ok &= good
            out.write(f"Grafana: {'imported' if good else 'FAILED'} dashboard {dashboard.get('uid')!r} "
                      f"(HTTP {status}{'' if good else ': ' + json.dumps(answer)[:300]})\n")
    if not kibana and not grafana:
        out.write("nothing to do: give --kibana URL and/or --grafana URL\n")
        return 2
    return 0 if ok else 1
