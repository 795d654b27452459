"""Talking to the cluster: a small HTTP client and the detection of what it supports.

What is asked, and why:

* ``GET /`` — version number, ``distribution`` (``opensearch`` on OpenSearch) and ``build_flavor``
  (``serverless`` on Elastic serverless). When ``GET /`` is not served (some stripped test
  distributions), ``GET _nodes/_local`` gives the version and flavour instead.
* ``GET _ilm/status`` — answers ``{"operation_mode": "RUNNING" | "STOPPING" | "STOPPED"}`` only where
  index lifecycle management exists.
* ``GET _data_stream`` — answers ``{"data_streams": [...]}`` only where data streams exist; the data
  stream lifecycle is there from Elasticsearch 8.11 (and on serverless).
* ``GET _plugins/_ism/policies`` — answers only where OpenSearch's Index State Management plugin is.

Requests go through the sidecar's one cluster client (:class:`sidecar.es.EsClient`: the node pool of
``SIDECAR_ELASTICSEARCH_URL`` or the Cloud id, TLS and auth settings, OpenTelemetry suppressed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.config import ShipperSettings
from sidecar.errors import ServerError
from sidecar.es import ClientOptions, EsClient, EsUnavailable, Response, redact_url

Mode = Literal["ilm", "ism", "enforcer"]

__all__ = ["Client", "ClusterError", "ClusterInfo", "Response", "detect"]


class ClusterError(ServerError, RuntimeError):
    """The cluster could not be reached or refused a request the retention commands need."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Client(EsClient):
    """The cluster client with the retention commands' error rule: no node reachable and HTTP 401
    raise :class:`ClusterError`; every other status is returned for the caller to judge."""

    @classmethod
    def from_settings(cls, settings: ShipperSettings) -> Client:
        if not settings.elasticsearch_url:
            raise ValueError("no SIDECAR_ELASTICSEARCH_URL configured")
        return cls(ClientOptions.from_settings(settings))

    def request(self, method: str, path: str, body: Any = None, *, ndjson: bool = False,
                timeout: float | None = None, headers: Any = None) -> Response:
        try:
            resp = super().request(method, path, body, ndjson=ndjson, timeout=timeout, headers=headers)
        except EsUnavailable as exc:
            raise ClusterError(f"{method} {self.url}{path}: {exc.reason}") from exc
        if resp.status == 401:
            raise ClusterError(
                f"{method} {path}: HTTP 401: credentials refused (check SIDECAR_ELASTICSEARCH_API_KEY or "
                "SIDECAR_ELASTICSEARCH_USERNAME / _PASSWORD)",
                status=401,
            )
        return resp

    def json_ok(self, method: str, path: str, body: Any = None, *, ok: Sequence[int] = (200, 201)) -> Any:
        """Like :meth:`request` but raises :class:`ClusterError` unless the status is in ``ok``."""
        resp = self.request(method, path, body)
        if resp.status not in ok:
            raise ClusterError(f"{method} {path}: HTTP {resp.status}: {resp.text()}", status=resp.status)
        return resp.json()


def _redact(url: str) -> str:
    return ",".join(redact_url(u) for u in url.split(","))


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """What a cluster is and which retention mechanisms it offers."""

    distribution: str  # "elasticsearch", "opensearch" or "unknown"
    version: str | None
    build_flavor: str | None  # "default", "serverless", "oss", ... (Elasticsearch only)
    ilm: bool
    ilm_operation_mode: str | None  # RUNNING / STOPPING / STOPPED when ILM exists
    data_stream_lifecycle: bool
    ism: bool

    @property
    def serverless(self) -> bool:
        return self.build_flavor == "serverless"

    @property
    def mode(self) -> Mode:
        """The mechanism ``retention apply`` installs: ILM, ISM, or the sidecar's own enforcer."""
        if self.distribution == "opensearch":
            return "ism" if self.ism else "enforcer"
        return "ilm" if self.ilm else "enforcer"

    def describe(self) -> str:
        name = "OpenSearch" if self.distribution == "opensearch" else (
            "Elasticsearch" if self.distribution == "elasticsearch" else "unknown cluster")
        parts = [f"{name} {self.version or '(version unknown)'}"]
        if self.build_flavor and self.distribution == "elasticsearch":
            parts.append(f"flavour {self.build_flavor}")
        if self.distribution == "opensearch":
            parts.append("ISM " + ("available" if self.ism else "not available"))
        else:
            parts.append("ILM " + (f"available ({self.ilm_operation_mode})" if self.ilm else "not available"))
            parts.append("data stream lifecycle " + ("available" if self.data_stream_lifecycle else "not available"))
        return ", ".join(parts)


def _version_at_least(version: str | None, major: int, minor: int) -> bool:
    if not version:
        return False
    try:
        parts = [int(p) for p in version.split("-")[0].split(".")[:2]]
    except ValueError:
        return False
    while len(parts) < 2:
        parts.append(0)
    return (parts[0], parts[1]) >= (major, minor)


def detect(client: Client) -> ClusterInfo:
    """Ask the cluster what it is and supports; see the module docstring."""
    distribution = "unknown"
    version: str | None = None
    flavor: str | None = None
    root = client.request("GET", "/")
    info = root.json() if root.status == 200 else None
    if isinstance(info, dict) and isinstance(info.get("version"), dict):
        v = info["version"]
        version = str(v.get("number")) if v.get("number") else None
        flavor = str(v["build_flavor"]) if v.get("build_flavor") else None
        distribution = "opensearch" if v.get("distribution") == "opensearch" else "elasticsearch"
    else:
        nodes = client.request(
            "GET", "/_nodes/_local?filter_path=nodes.*.version,nodes.*.build_flavor,nodes.*.attributes"
        )
        body = nodes.json() if nodes.status == 200 else None
        node = next(iter((body or {}).get("nodes", {}).values()), None) if isinstance(body, dict) else None
        if isinstance(node, dict):
            version = str(node.get("version")) if node.get("version") else None
            flavor = str(node["build_flavor"]) if node.get("build_flavor") else None
            # OpenSearch always serves GET /; a node list without it is Elasticsearch.
            distribution = "elasticsearch"

    ilm = False
    ilm_mode: str | None = None
    dsl = False
    ism = False
    if distribution == "opensearch":
        ism = client.request("GET", "/_plugins/_ism/policies?size=1").status == 200
    else:
        if flavor != "serverless":
            status = client.request("GET", "/_ilm/status")
            body = status.json() if status.status == 200 else None
            if isinstance(body, dict) and "operation_mode" in body:
                ilm, ilm_mode = True, str(body["operation_mode"])
        if flavor == "serverless":
            dsl = True
        elif _version_at_least(version, 8, 11):
            ds = client.request("GET", "/_data_stream")
            body = ds.json() if ds.status == 200 else None
            dsl = isinstance(body, dict) and "data_streams" in body
    return ClusterInfo(
        distribution=distribution,
        version=version,
        build_flavor=flavor,
        ilm=ilm,
        ilm_operation_mode=ilm_mode,
        data_stream_lifecycle=dsl,
        ism=ism,
    )
