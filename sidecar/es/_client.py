"""The one HTTP client for Elasticsearch and OpenSearch, on ``elastic-transport``.

Why the transport and not the ``elasticsearch`` package built on it:

* the ``elasticsearch`` client checks the ``X-Elastic-Product`` answer header and refuses to talk
  to OpenSearch; the transport has no product check, so one client serves both;
* the sidecar's hot path sends bulk bodies it assembled from spooled bytes and reads the per-item
  results itself: it needs ``perform_request`` (bytes in, status and bytes out), not the typed API,
  whose helpers count 409 as an error and retry nothing by default;
* the transport brings what the typed client would add on top of it anyway: a node pool with
  failover and dead-node back-off, Cloud id parsing, TLS CA / fingerprint pinning, gzip.

Every request runs with OpenTelemetry instrumentation suppressed and without an ``otel_span``
(the transport's own span hook), so the sidecar never traces its own traffic. Response bodies are
handed back as bytes (a pass-through serializer): the callers parse what they need, and a proxy's
HTML error page cannot make the transport raise.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import elastic_transport
import urllib3
from elastic_transport import NodeConfig, NodePool, Serializer, Transport, Urllib3HttpNode
from elastic_transport.client_utils import parse_cloud_id, url_to_node_config
from opentelemetry.instrumentation.utils import suppress_http_instrumentation, suppress_instrumentation

from sidecar.errors import ServerError

if TYPE_CHECKING:
    from sidecar.config import ShipperSettings

# The transport logs every request at INFO and every internal retry with a traceback, and its node pool
# a warning per failed attempt; the sidecar logs failures itself (one line) and counts node failures
# (sidecar_elasticsearch_node_failures_total, see ClientMetrics).
for _name in ("elastic_transport.transport", "elastic_transport.node_pool"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_JSON = "application/json"
_NDJSON = "application/x-ndjson"


class EsUnavailable(ServerError):
    """No node answered (refused, reset, timed out, TLS failure) after trying the pool."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    node: str = ""  # host:port of the node that answered

    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def text(self, limit: int = 300) -> str:
        return short(self.body.decode("utf-8", "replace"), limit)


class _Bytes(Serializer):
    """Request bodies are bytes already; responses stay bytes."""

    mimetype: ClassVar[str] = _JSON

    def loads(self, data: bytes) -> bytes:
        return data

    def dumps(self, data: Any) -> bytes:
        if not isinstance(data, bytes):
            raise TypeError("the sidecar passes request bodies as bytes")
        return data


_PASS_THROUGH: dict[str, Serializer] = {
    m: _Bytes() for m in (_JSON, _NDJSON, "application/*", "text/*", "application/vnd.elasticsearch+json",
                          "multipart/form-data")  # the dashboards installer posts a file to Kibana
}


_last_status = threading.local()


class _Node(Urllib3HttpNode):
    """The urllib3 node, remembering (per thread) the status of its last answer for :class:`_CountingPool`."""

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        _last_status.value = None
        resp = super().perform_request(*args, **kwargs)
        _last_status.value = resp.meta.status
        return resp


class _CountingPool(NodePool):
    """The transport's node pool, counting how often each node was marked dead (refused, reset,
    timed out, or answered 429/5xx): the failover a cluster client does is otherwise invisible.

    The transport also retires a node for any 4xx outside a short list (e.g. 405 or 413); a node
    that answers a request with a client error is alive and well, so those are not held against it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def mark_dead(self, node: Any, _now: float | None = None) -> None:
        status = getattr(_last_status, "value", None)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return
        with self._count_lock:
            name = f"{node.config.host}:{node.config.port}"
            self.failures[name] = self.failures.get(name, 0) + 1
        super().mark_dead(node, _now)

    def state(self) -> tuple[int, int]:
        """(alive, dead) node counts."""
        alive = len(self._alive_nodes)
        return alive, max(len(self.all()) - alive, 0)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Connection settings, from the ``SIDECAR_ELASTICSEARCH_*`` variables (see :meth:`from_settings`)."""

    urls: tuple[str, ...] = ()
    cloud_id: str | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    fingerprint: str | None = None
    verify_tls: bool = True
    gzip: bool = False
    timeout: float = 30.0
    connect_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: ShipperSettings) -> ClientOptions:
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            urls=settings.elasticsearch_url if not settings.elasticsearch_cloud_id else (),
            cloud_id=secret(settings.elasticsearch_cloud_id),
            api_key=secret(settings.elasticsearch_api_key),
            username=settings.elasticsearch_username,
            password=secret(settings.elasticsearch_password),
            ca_file=str(settings.elasticsearch_ca_file) if settings.elasticsearch_ca_file else None,
            fingerprint=settings.elasticsearch_tls_fingerprint,
            verify_tls=settings.elasticsearch_verify_tls,
            gzip=settings.elasticsearch_gzip,
            timeout=settings.elasticsearch_timeout,
            connect_timeout=settings.elasticsearch_connect_timeout,
        )


def split_urls(value: str) -> list[str]:
    """``SIDECAR_ELASTICSEARCH_URL``: one URL or several, comma-separated (blanks ignored)."""
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]


def node_config(url: str) -> NodeConfig:
    """A node from a URL; raises ValueError naming what is wrong (never echoing credentials)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"{redact_url(url)!r}: no query or fragment allowed")
    try:
        _ = parts.port
        return url_to_node_config(url, use_default_ports_for_scheme=True)
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)!r}: {str(exc).replace(url, redact_url(url))}") from None


def cloud_node_config(cloud_id: str) -> NodeConfig:
    try:
        parsed = parse_cloud_id(cloud_id)
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise ValueError(f"not an Elastic Cloud id ({type(exc).__name__})") from None
    if parsed.es_address is None:
        raise ValueError("the Elastic Cloud id names no Elasticsearch address")
    host, port = parsed.es_address
    return NodeConfig("https", host, port)


def api_key_header(api_key: str) -> str:
    """``ApiKey <base64(id:key)>``; an ``id:key`` pair is encoded here, an encoded key passed as is."""
    value = api_key.strip()
    if ":" in value:
        value = base64.b64encode(value.encode()).decode("ascii")
    return f"ApiKey {value}"


def redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = "***@" + (parts.hostname or "") + (f":{parts.port}" if _port_ok(parts) else "")
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _port_ok(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Transport(Transport):
    # The transport's own method, unwrapped: an instrumentation that patches
    # ``elastic_transport.Transport.perform_request`` (opentelemetry-instrumentation-elasticsearch
    # does, without honouring suppress_instrumentation, and records request bodies, i.e. audit
    # records, as db.statement) never sees the sidecar's traffic, whether it patched before or
    # after this module was imported.
    perform_request = inspect.unwrap(Transport.__dict__["perform_request"])


class EsClient:
    """JSON / NDJSON over HTTP to a pool of Elasticsearch or OpenSearch nodes.

    :meth:`request` returns every HTTP answer (the caller judges the status) and raises
    :class:`EsUnavailable` only when no node could be reached. A refused or reset connection is
    retried at once on the next node (up to one try per node); a timeout is not retried here (the
    request may still be running): the caller's retry loop decides. Nodes that failed rest in the
    pool's dead list with exponential back-off (1 s doubling to 30 s) and are tried again after it.
    """

    def __init__(self, options: ClientOptions | str, **kwargs: Any) -> None:
        """``options``, or node URLs (comma-separated) with :class:`ClientOptions` fields as keywords."""
        if isinstance(options, str):
            options = ClientOptions(urls=tuple(split_urls(options)), **kwargs)
        elif kwargs:
            raise TypeError("keywords go with node URLs, not with ClientOptions")
        if bool(options.urls) == bool(options.cloud_id):
            raise ValueError("give either node URLs or an Elastic Cloud id")
        if options.api_key and options.username is not None:
            raise ValueError("give either an API key or a user name, not both")
        configs = [cloud_node_config(options.cloud_id)] if options.cloud_id else [node_config(u) for u in options.urls]
        headers: dict[str, str] = {"accept": _JSON}
        if options.api_key:
            headers["authorization"] = api_key_header(options.api_key)
        elif options.username is not None:
            raw = f"{options.username}:{options.password or ''}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        tls: dict[str, Any] = {}
        if any(c.scheme == "https" for c in configs):
            if options.fingerprint:
                # Pinning replaces chain verification (the transport's rule): only the fingerprint counts.
                tls = {"ssl_assert_fingerprint": options.fingerprint}
            else:
                tls = {"verify_certs": options.verify_tls, "ssl_show_warn": options.verify_tls}
                if options.ca_file:
                    tls["ca_certs"] = options.ca_file
        self.options = options
        self.nodes = [
            c.replace(headers={**dict(c.headers), **headers}, http_compress=options.gzip,
                      request_timeout=options.timeout, connections_per_node=4,
                      **(tls if c.scheme == "https" else {}))
            for c in configs
        ]
        self._timeout = urllib3.Timeout(connect=min(options.connect_timeout, options.timeout), read=options.timeout)
        self._transport = _Transport(
            self.nodes,
            node_class=_Node,
            node_pool_class=_CountingPool,
            serializers=_PASS_THROUGH,
            max_retries=max(len(self.nodes) - 1, 0),
            retry_on_status=(),
            retry_on_timeout=False,
            meta_header=False,
            dead_node_backoff_factor=1.0,
            max_dead_node_backoff=30.0,
        )

    @classmethod
    def from_settings(cls, settings: ShipperSettings) -> EsClient:
        return cls(ClientOptions.from_settings(settings))

    @property
    def url(self) -> str:
        """The configured nodes, for messages (no credentials)."""
        if self.options.cloud_id:
            return f"Elastic Cloud {self.nodes[0].host}"
        return ",".join(redact_url(u) for u in self.options.urls)

    @property
    def pool(self) -> _CountingPool:
        pool = self._transport.node_pool
        assert isinstance(pool, _CountingPool)
        return pool

    def request(self, method: str, path: str, body: Any = None, *, ndjson: bool = False,
                timeout: float | None = None, headers: Mapping[str, str] | None = None) -> Response:
        """One exchange. ``body``: bytes (sent as is) or a JSON-serialisable value."""
        h: dict[str, str] = dict(headers or {})
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("content-type", _NDJSON if ndjson else _JSON)
        tmo = self._timeout if timeout is None else urllib3.Timeout(
            connect=min(self.options.connect_timeout, timeout), read=timeout)
        try:
            with suppress_instrumentation(), suppress_http_instrumentation():
                resp = self._transport.perform_request(
                    method, path, body=data, headers=h,
                    # The urllib3 node passes this to urlopen as is: a Timeout keeps connect and read apart.
                    request_timeout=tmo,
                )
        except elastic_transport.TransportError as exc:
            raise EsUnavailable(_describe(exc)) from exc
        raw = resp.body if isinstance(resp.body, bytes) else b""
        node = f"{resp.meta.node.host}:{resp.meta.node.port}"
        return Response(resp.meta.status, raw, node)

    def json_ok(self, method: str, path: str, body: Any = None, *, ok: Sequence[int] = (200, 201)) -> Any:
        """Like :meth:`request`; raises :class:`EsHttpError` unless the status is in ``ok``."""
        resp = self.request(method, path, body)
        if resp.status not in ok:
            raise EsHttpError(f"{method} {path}: HTTP {resp.status}: {resp.text()}", resp.status)
        return resp.json()

    def close(self) -> None:
        self._transport.close()


class EsHttpError(ServerError, RuntimeError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _describe(exc: elastic_transport.TransportError) -> str:
    """One short line: what failed, on which nodes (the transport keeps earlier attempts' errors)."""
    errors = [*getattr(exc, "errors", ()), exc]
    parts = []
    for e in errors:
        if isinstance(e, elastic_transport.TransportError):
            parts.append(f"{type(e).__name__}: {short(str(e.message), 160)}")
    return "; ".join(dict.fromkeys(parts)) or type(exc).__name__
