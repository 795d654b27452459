"""``sidecar dashboards install``: import the Kibana saved objects and the Grafana dashboard.

The files ship inside the package (``sidecar/_assets/dashboards``, the repository's ``dashboards/``
folder). The Kibana objects are built for the configured index prefix at install (``sidecar.dashboards.kibana``),
so the data views match the indices this sidecar writes. The servers are reached through the project's one
HTTP client (``sidecar.es``, on elastic-transport) with instrumentation suppressed, like every other request
the sidecar makes; a server that cannot be reached is one line and exit 1.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import secrets
import sys
from typing import Any, TextIO

from sidecar.dashboards.kibana import saved_objects, to_ndjson
from sidecar.errors import ServerError

KIBANA_FILE = pathlib.Path("kibana") / "llm-audit.ndjson"
GRAFANA_FILE = pathlib.Path("grafana") / "llm-audit.json"
PACKAGED = pathlib.Path(__file__).resolve().parents[1] / "_assets" / "dashboards"


def find_dashboards(explicit: pathlib.Path | None) -> pathlib.Path | None:
    """``explicit`` (``--dir``) or the folder inside the package, when it holds both dashboards."""
    folder = explicit or PACKAGED
    if (folder / KIBANA_FILE).is_file() and (folder / GRAFANA_FILE).is_file():
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


def grafana_import_form(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The dashboard for Grafana's Import page (``grafana/llm-audit.import.json``): ``__inputs`` ask for the
    Prometheus data source and the index prefix, ``__requires`` name the plugins. The provisionable file
    (``grafana/llm-audit.json``) keeps a plain ``datasource`` variable, which file provisioning needs."""
    panel_types = sorted({p["type"] for p in _panels(dashboard["panels"]) if p["type"] != "row"})
    form: dict[str, Any] = {
        "__inputs": [
            {"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "Prometheus scraping the sidecar",
             "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"},
            {"name": "VAR_INDEX_PREFIX", "label": "Index prefix", "description": "SIDECAR_INDEX_PREFIX",
             "type": "constant", "value": "llm-audit"},
        ],
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
                       *({"type": "panel", "id": kind, "name": kind, "version": ""} for kind in panel_types)],
    }
    form.update({k: v for k, v in dashboard.items() if k != "id"})
    variables = []
    for var in dashboard["templating"]["list"]:
        var = dict(var)
        if var["name"] == "datasource":
            var["current"] = {"selected": True, "text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"}
        elif var["name"] == "index_prefix":
            var.update(query="${VAR_INDEX_PREFIX}", current={"text": "${VAR_INDEX_PREFIX}",
                                                             "value": "${VAR_INDEX_PREFIX}"})
        variables.append(var)
    form["templating"] = {**dashboard["templating"], "list": variables}
    return form


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [q for p in panels for q in (p, *p.get("panels", []))]


def _auth(api_key: str | None, token: str | None, user: str | None, password: str | None) -> dict[str, str]:
    if api_key:
        return {"Authorization": f"ApiKey {api_key}"}
    if token:
        return {"Authorization": f"Bearer {token}"}
    if user:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()}
    return {}


class Unreachable(ServerError):
    """A server could not be reached at all (refused, unresolvable, timed out, TLS failure)."""


def _post(server: str, base: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    """One POST through the project's one HTTP client (instrumentation suppressed, no retries on one node)."""
    from sidecar.es import EsClient, EsUnavailable

    try:
        client = EsClient(base, timeout=30.0)
    except ValueError as exc:
        raise Unreachable(f"{server} at {base}: {exc}") from None
    try:
        resp = client.request("POST", path, body, headers={k.lower(): v for k, v in headers.items()})
    except EsUnavailable as exc:
        errno_text = re.search(r"\[Errno -?\d+\] ([^)\]]+)", exc.reason)  # "Connection refused"
        reason = errno_text.group(1) if errno_text else exc.reason
        raise Unreachable(f"{server} at {base} unreachable: {reason[:200]}") from None
    finally:
        client.close()
    answer = resp.json()
    return resp.status, answer if answer is not None else resp.body[:300].decode(errors="replace")


def install(folder: pathlib.Path, out: TextIO, *, kibana: str | None = None, kibana_space: str | None = None,
            kibana_api_key: str | None = None, grafana: str | None = None, grafana_token: str | None = None,
            grafana_folder: str | None = None, user: str | None = None, password: str | None = None,
            dry_run: bool = False, index_prefix: str = "llm-audit") -> int:
    """Import into each server given; 0 when every import succeeded, 1 otherwise (one line for a server
    that cannot be reached), 2 when no server was given."""
    if not kibana and not grafana:
        out.write("nothing to do: give --kibana URL and/or --grafana URL\n")
        return 2
    try:
        return _install(folder, out, kibana=kibana, kibana_space=kibana_space, kibana_api_key=kibana_api_key,
                        grafana=grafana, grafana_token=grafana_token, grafana_folder=grafana_folder, user=user,
                        password=password, dry_run=dry_run, index_prefix=index_prefix)
    except Unreachable as exc:
        out.flush()
        print(f"sidecar: {exc}", file=sys.stderr)
        return 1


def _install(folder: pathlib.Path, out: TextIO, *, kibana: str | None, kibana_space: str | None,
             kibana_api_key: str | None, grafana: str | None, grafana_token: str | None,
             grafana_folder: str | None, user: str | None, password: str | None, dry_run: bool,
             index_prefix: str) -> int:
    ok = True
    if kibana:
        saved = saved_objects(index_prefix)
        path, headers, body = kibana_import_request(to_ndjson(saved), kibana_space)
        objects = len(saved)
        views = ", ".join(o["attributes"]["title"] for o in saved if o["type"] == "index-pattern")
        if dry_run:
            out.write(f"would import {objects} saved objects (data views {views}) into Kibana at "
                      f"{kibana.rstrip('/')}{path}\n")
        else:
            auth = _auth(kibana_api_key, None, user, password)
            status, answer = _post("Kibana", kibana.rstrip("/"), path, {**headers, **auth}, body)
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
            auth = _auth(None, grafana_token, user, password)
            status, answer = _post("Grafana", grafana.rstrip("/"), "/api/dashboards/db",
                                   {"Content-Type": "application/json", **auth}, payload)
            good = status == 200 and isinstance(answer, dict) and answer.get("status") == "success"
            ok &= good
            out.write(f"Grafana: {'imported' if good else 'FAILED'} dashboard {dashboard.get('uid')!r} "
                      f"(HTTP {status}{'' if good else ': ' + json.dumps(answer)[:300]})\n")
    return 0 if ok else 1
