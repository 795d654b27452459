"""The one cluster client (sidecar.es) on the real single node: failover past a dead URL, the node
failure metric, a point in time held during a walk and closed after, _source filtering, auth headers
as sent on the wire, and errors that never leak credentials."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from es_testing import JsonHandler, walk_holding_pit
from prometheus_client import CollectorRegistry

from sidecar.config import ConfigError, ShipperSettings, load_settings
from sidecar.es import ClientMetrics, ClientOptions, EsClient, EsUnavailable, scan
from sidecar.ship.elasticsearch import ElasticsearchSink


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


def _open_pits(es: Any) -> int:
    stats = es.request("GET", "/_nodes/stats/indices/search")
    # Elasticsearch counts a point in time's shard contexts in open_contexts.
    return sum(int(n["indices"]["search"]["open_contexts"]) for n in stats["nodes"].values())


def test_a_dead_node_first_fails_over_and_is_counted(elasticsearch_url: str) -> None:
    dead = _dead_url()
    client = EsClient(f"{dead},{elasticsearch_url}")
    registry = CollectorRegistry()
    ClientMetrics(registry).track(client)
    for _ in range(4):  # whichever node the pool picks first, every request is answered
        assert client.request("GET", "/_cluster/health").status == 200
    assert client.request("PATCH", "/").status == 405  # a client error: the live node is not retired
    node = dead.removeprefix("http://")
    assert (registry.get_sample_value("sidecar_elasticsearch_node_failures_total", {"node": node}) or 0) >= 1
    live = elasticsearch_url.removeprefix("http://")
    assert (registry.get_sample_value("sidecar_elasticsearch_node_failures_total", {"node": live}) or 0) == 0
    assert registry.get_sample_value("sidecar_elasticsearch_nodes", {"state": "dead"}) == 1
    assert registry.get_sample_value("sidecar_elasticsearch_nodes", {"state": "alive"}) == 1


def test_no_node_reachable_raises_one_line_without_credentials() -> None:
    client = EsClient(f"http://user:hunter2@{_dead_url().removeprefix('http://')},{_dead_url()}")
    with pytest.raises(EsUnavailable) as info:
        client.request("GET", "/")
    assert "hunter2" not in info.value.reason and "\n" not in info.value.reason
    assert "hunter2" not in client.url


def test_point_in_time_walk_with_source_filter(es: Any, es_prefix: str, elasticsearch_url: str,
                                               docs_factory: Any) -> None:
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix)
    sink.open()
    docs = docs_factory(450) + docs_factory(250, day="2026.03.16", start=450)
    sink.write(docs, threading.Event())
    es.refresh(f"{es_prefix}-*")

    def write_more() -> None:  # documents written during the walk are not in it: the view is frozen
        sink.write(docs_factory(10, day="2026.03.16", start=5000), threading.Event())
        es.refresh(f"{es_prefix}-*")

    got = walk_holding_pit(sink.client, f"{es_prefix}-2*", lambda: _open_pits(es), page=64, during=write_more)
    assert [i for i, _ in got] == sorted(d.doc_id for d in docs)
    assert all("gen_ai.request.model" in src for _, src in got)
    assert list(scan(sink.client, f"{es_prefix}-nothing-*", ["event.id"])) == []


class _Recorder(JsonHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.answer_json(b'{"ok":true}')


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_auth_headers_on_the_wire(recorder: str) -> None:
    EsClient(ClientOptions(urls=(recorder,), api_key="id1:secret1")).request("GET", "/")
    EsClient(ClientOptions(urls=(recorder,), api_key="ZW5jb2RlZA==")).request("GET", "/")
    EsClient(ClientOptions(urls=(recorder,), username="u", password="p:w")).request("GET", "/")
    auth = [h["authorization"] for h in _Recorder.seen]
    assert auth == ["ApiKey " + base64.b64encode(b"id1:secret1").decode(), "ApiKey ZW5jb2RlZA==",
                    "Basic " + base64.b64encode(b"u:p:w").decode()]
    # No product or client-meta headers: nothing OpenSearch or a proxy could object to.
    assert all("x-elastic-client-meta" not in h for h in _Recorder.seen)


def test_gzip_bodies_arrive_intact(es: Any, es_prefix: str, elasticsearch_url: str, docs_factory: Any) -> None:
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix, gzip=True)
    sink.open()
    docs = docs_factory(300)
    assert sink.write(docs, threading.Event()).stored == 300
    assert sorted(es.ids(f"{es_prefix}-2*")) == sorted(d.doc_id for d in docs)


@pytest.mark.parametrize(("env", "variable"), [
    ({"elasticsearch_url": "http://a:9200,ftp://b"}, "SIDECAR_ELASTICSEARCH_URL"),
    ({"elasticsearch_url": "http://a:9200,http://a:9200"}, "SIDECAR_ELASTICSEARCH_URL"),
    ({"elasticsearch_cloud_id": "not-a-cloud-id"}, "SIDECAR_ELASTICSEARCH_CLOUD_ID"),
    ({"elasticsearch_tls_fingerprint": "abc"}, "SIDECAR_ELASTICSEARCH_TLS_FINGERPRINT"),
    ({"elasticsearch_replicas": "many"}, "SIDECAR_ELASTICSEARCH_REPLICAS"),
    ({"elasticsearch_shards": "0"}, "SIDECAR_ELASTICSEARCH_SHARDS"),
    ({"elasticsearch_timeout": "0"}, "SIDECAR_ELASTICSEARCH_TIMEOUT"),
    ({"elasticsearch_ca_file": "/no/such/ca.pem"}, "SIDECAR_ELASTICSEARCH_CA_FILE"),
    ({"elasticsearch_password": "x"}, "SIDECAR_ELASTICSEARCH_USERNAME"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(ShipperSettings, **env)
    assert variable in str(info.value)


def test_cloud_id_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = "demo:" + base64.b64encode(b"eu-west-1.aws.example.com$abc123$kib456").decode()
    monkeypatch.setenv("SIDECAR_ELASTICSEARCH_CLOUD_ID", cloud)
    monkeypatch.setenv("SIDECAR_ELASTICSEARCH_API_KEY", "id:topsecret")
    settings = load_settings(ShipperSettings)
    assert settings.elasticsearch_url == ("https://abc123.eu-west-1.aws.example.com:443",)
    assert "topsecret" not in repr(settings) and "topsecret" not in str(settings.model_dump())
    options = ClientOptions.from_settings(settings)
    assert options.api_key == "id:topsecret" and options.urls == ()
    assert EsClient(options).nodes[0].host == "abc123.eu-west-1.aws.example.com"
    monkeypatch.setenv("SIDECAR_ELASTICSEARCH_URL", "http://x:9200")
    with pytest.raises(ConfigError, match="CLOUD_ID"):
        load_settings(ShipperSettings)


_PATCHED_FIRST = """
import sys, wrapt, elastic_transport
calls = []
def spy(wrapped, instance, args, kwargs):
    calls.append(args[:2])
    return wrapped(*args, **kwargs)
# What opentelemetry-instrumentation-elasticsearch does (it ignores suppress_instrumentation).
wrapt.wrap_function_wrapper(elastic_transport, "Transport.perform_request", spy)
from sidecar.es import EsClient
status = EsClient(sys.argv[1]).request("GET", "/_cluster/health").status
plain = elastic_transport.Transport([elastic_transport.NodeConfig("http", "127.0.0.1", 9)], max_retries=0)
try:
    plain.perform_request("GET", "/")
except elastic_transport.TransportError:
    pass
print(status, len(calls))
"""


def test_a_patched_transport_never_sees_the_sidecar(elasticsearch_url: str) -> None:
    import subprocess
    import sys

    import elastic_transport
    import wrapt

    # Patched after sidecar.es was imported (this process)...
    calls: list[Any] = []

    def spy(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append(args[:2])
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(elastic_transport, "Transport.perform_request", spy)
    try:
        assert EsClient(elasticsearch_url).request("GET", "/_cluster/health").status == 200
    finally:
        elastic_transport.Transport.perform_request = elastic_transport.Transport.perform_request.__wrapped__
    assert calls == []
    # ...and before (a fresh process): the control call through the plain transport is seen.
    out = subprocess.run([sys.executable, "-c", _PATCHED_FIRST, elasticsearch_url], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["200", "1"]


def test_replica_settings() -> None:
    from sidecar.ship.templates import audit_template, digest_template, replica_settings

    assert replica_settings("0-1") == {"index.auto_expand_replicas": "0-1"}
    assert replica_settings("1-all") == {"index.auto_expand_replicas": "1-all"}
    assert replica_settings(2) == replica_settings("2") == {"index.number_of_replicas": 2}
    for bad in ("", "x", "1-", "-1", "1-2-3", "all"):
        with pytest.raises(ValueError):
            replica_settings(bad)
    tpl = audit_template("p", number_of_replicas="1-all", number_of_shards=3)["template"]["settings"]
    assert tpl["index.number_of_shards"] == 3 and tpl["index.auto_expand_replicas"] == "1-all"
    assert "index.number_of_replicas" not in tpl
    side = digest_template("p", number_of_replicas=2)["template"]["settings"]
    assert side == {"index.number_of_shards": 1, "index.number_of_replicas": 2}


@pytest.mark.parametrize(("name", "value"), [
    ("SIDECAR_ELASTICSEARCH_URL", "http://user:hunter2@es:notaport"),
    ("SIDECAR_ELASTICSEARCH_REPLICAS", "lots"),
    ("SIDECAR_ELASTICSEARCH_TLS_FINGERPRINT", "hunter2"),
])
def test_the_cli_refuses_a_bad_setting_in_one_line(name: str, value: str, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(tmp_path), **{name: value})
    proc = subprocess.run([str(Path(sys.executable).parent / "sidecar"), "run", "--once"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr  # a bad value may be a secret pasted in the wrong place
