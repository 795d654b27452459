"""The same client, sink, readers and retention against a real OpenSearch 2.19 (the integ-test-zip:
no security plugin, no ISM, so retention is the sidecar's enforcer here; ISM bodies are tested by
structure in tests/unit)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from es_testing import walk_holding_pit

from sidecar.config import ShipperSettings
from sidecar.es import EsClient, distribution
from sidecar.retention import retention_apply, retention_verify
from sidecar.retention._cluster import Client, detect
from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.ship.templates import template_names

BIN = Path(sys.executable).parent


def _open_pits(os_: Any) -> int:
    stats = os_.request("GET", "/_nodes/stats/indices/search")
    return sum(int(n["indices"]["search"].get("point_in_time_current", 0)) for n in stats["nodes"].values())


def test_the_client_talks_to_opensearch(opensearch_url: str) -> None:
    client = EsClient(opensearch_url)
    # No product check: the answer carries no X-Elastic-Product header and the client still works.
    resp = client.request("GET", "/")
    assert resp.status == 200 and json.loads(resp.body)["version"]["distribution"] == "opensearch"
    assert distribution(client) == "opensearch"
    info = detect(Client(opensearch_url))
    assert info.distribution == "opensearch" and info.version and info.version.startswith("2.19")
    assert info.mode == "enforcer"  # ISM is not in the test distribution


def test_ship_templates_and_dead_letters(opensearch: Any, os_prefix: str, opensearch_url: str,
                                         docs_factory: Any, tmp_path: Path) -> None:
    sink = ElasticsearchSink(opensearch_url, index_prefix=os_prefix, deadletter_dir=tmp_path)
    assert sink.healthy() is False
    sink.open()
    assert sink.healthy() is True
    for role, name in template_names(os_prefix).items():
        tpl = opensearch.request("GET", f"/_index_template/{name}")["index_templates"][0]["index_template"]
        assert tpl["template"]["settings"]["index"]["auto_expand_replicas"] == "0-1", role
    docs = docs_factory(1200, bad=frozenset({7, 700}))
    result = sink.write(docs, threading.Event())
    assert (result.stored, result.dead_lettered) == (1198, 2)
    index = f"{os_prefix}-2026.03.14"
    mapping = opensearch.request("GET", f"/{index}/_mapping")[index]["mappings"]
    assert mapping["properties"]["gen_ai"]["properties"]["usage"]["properties"]["input_tokens"]["type"] == "long"
    good = {d.doc_id for i, d in enumerate(docs) if i not in (7, 700)}
    assert set(opensearch.ids(f"{os_prefix}-2*")) == good
    dead = opensearch.search(f"{os_prefix}-deadletter-*")
    assert sorted(h["_source"]["sidecar.original_id"] for h in dead) == [docs[7].doc_id, docs[700].doc_id]


def test_dedupe_when_the_answer_is_lost(opensearch: Any, os_prefix: str, os_fault_proxy: Any,
                                        docs_factory: Any, tmp_path: Path) -> None:
    sink = ElasticsearchSink(os_fault_proxy.url, index_prefix=os_prefix, backoff_initial=0.05, backoff_max=0.1,
                             deadletter_dir=tmp_path)
    sink.open()
    docs = docs_factory(800)
    # OpenSearch stores the bulk, the answer never arrives; then a 503; the retry gets 409s.
    os_fault_proxy.reset_bulk(1, after_forward=True)
    os_fault_proxy.fail_bulk(1, 503)
    result = sink.write(docs, threading.Event())
    assert os_fault_proxy.faults_served == ["reset", "503"]
    assert result.stored == 800 and result.duplicates == 800 and result.retries == 2
    assert opensearch.count(f"{os_prefix}-2*") == 800
    assert sorted(opensearch.ids(f"{os_prefix}-2*")) == sorted(d.doc_id for d in docs)
    again = sink.write(docs, threading.Event())  # a crash replay: all already there
    assert again.duplicates == 800 and opensearch.count(f"{os_prefix}-2*") == 800


def test_readers_use_a_point_in_time_and_filter_source(opensearch: Any, os_prefix: str, opensearch_url: str,
                                                       docs_factory: Any, tmp_path: Path) -> None:
    sink = ElasticsearchSink(opensearch_url, index_prefix=os_prefix)
    sink.open()
    docs = docs_factory(700) + docs_factory(300, day="2026.03.15", start=700)
    sink.write(docs, threading.Event())
    opensearch.refresh(f"{os_prefix}-*")
    got = walk_holding_pit(sink.client, f"{os_prefix}-2*", lambda: _open_pits(opensearch), page=100)
    assert [i for i, _ in got] == sorted(d.doc_id for d in docs)
    assert all(src["service.name"] == "checkout" for _, src in got)

    # The CLI readers over OpenSearch: advise reads every record, audit verify walks them all.
    env = dict(os.environ, SIDECAR_ELASTICSEARCH_URL=opensearch_url, SIDECAR_INDEX_PREFIX=os_prefix,
               SIDECAR_HMAC_KEY="k" * 32, SIDECAR_SPOOL_DIR=str(tmp_path / "spool"))
    adv = subprocess.run([str(BIN / "sidecar"), "advise", "--json", "--since", "2026-03-01T00:00:00Z",
                          "--until", "2026-03-20T00:00:00Z"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(adv.stdout)["records"] == 1000, adv.stderr
    ver = subprocess.run([str(BIN / "sidecar"), "audit", "verify"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "verified 1000 records" in ver.stderr, ver.stderr
    assert ver.returncode == 1  # these test records carry no hash chain: reported, not ignored


def test_retention_enforcer_on_opensearch(opensearch: Any, os_prefix: str, opensearch_url: str) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    old = f"{os_prefix}-{today - dt.timedelta(days=200):%Y.%m.%d}"
    recent = f"{os_prefix}-{today - dt.timedelta(days=10):%Y.%m.%d}"
    for index in (old, recent):
        opensearch.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    settings = ShipperSettings(elasticsearch_url=opensearch_url, index_prefix=os_prefix)
    out = io.StringIO()
    assert retention_apply(settings, out=out) == 0, out.getvalue()
    assert "OpenSearch" in out.getvalue()
    assert opensearch.indices(f"{os_prefix}-2*") == [recent]
    out = io.StringIO()
    assert retention_verify(settings, out=out) == 0, out.getvalue()
