"""ElasticsearchSink against a real Elasticsearch: placement, dedupe, partial failures, dead letters."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from sidecar.ship.elasticsearch import DeadLetterError, ElasticsearchSink


def _sink(url: str, prefix: str, **kw: Any) -> ElasticsearchSink:
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.5)
    sink = ElasticsearchSink(url, index_prefix=prefix, **kw)
    sink.open()
    return sink


def test_documents_land_in_daily_index_with_their_id(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any
) -> None:
    day1 = docs_factory(30, day="2026.03.14")
    day2 = docs_factory(20, day="2026.03.15", start=30)
    sink = _sink(elasticsearch_url, es_prefix)
    result = sink.write(day1 + day2, threading.Event())

    assert (result.stored, result.duplicates, result.dead_lettered, result.retries) == (50, 0, 0, 0)
    assert (sink.stored, sink.duplicates, sink.dead_lettered) == (50, 0, 0)
    assert es.indices(f"{es_prefix}-*") == [f"{es_prefix}-2026.03.14", f"{es_prefix}-2026.03.15"]
    assert es.ids(f"{es_prefix}-2026.03.14") == sorted(d.doc_id for d in day1)
    assert es.ids(f"{es_prefix}-2026.03.15") == sorted(d.doc_id for d in day2)
    # The stored source is the spooled document, byte for byte as JSON.
    hit = es.request("GET", f"/{es_prefix}-2026.03.14/_doc/{day1[7].doc_id}")
    assert hit["_source"] == json.loads(day1[7].raw)
    assert sink.last_bulk_seconds > 0


def test_resending_a_batch_counts_duplicates_not_new_documents(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any
) -> None:
    docs = docs_factory(40)
    sink = _sink(elasticsearch_url, es_prefix)
    sink.write(docs, threading.Event())
    again = sink.write(docs, threading.Event())

    assert again.duplicates == 40
    assert again.stored == 40  # duplicates count as delivered (see WriteResult)
    assert again.dead_lettered == 0
    assert (sink.stored, sink.duplicates) == (40, 40)
    assert es.count(f"{es_prefix}-2*") == 40

    # A fresh sink (a restarted sidecar) re-sending a superset stores only the new ones.
    more = docs_factory(50)
    result = _sink(elasticsearch_url, es_prefix).write(more, threading.Event())
    assert (result.stored, result.duplicates) == (50, 40)
    assert es.ids(f"{es_prefix}-2*") == sorted(d.doc_id for d in more)


def test_partial_failure_dead_letters_the_unindexable_and_stores_the_rest(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any
) -> None:
    bad = frozenset({3, 17, 41})
    docs = docs_factory(50, bad=bad)
    sink = _sink(elasticsearch_url, es_prefix)
    result = sink.write(docs, threading.Event())

    assert (result.stored, result.dead_lettered, result.retries) == (47, 3, 0)
    assert len(result.errors) == 3 and all("document_parsing_exception" in e for e in result.errors)
    good_ids = sorted(d.doc_id for i, d in enumerate(docs) if i not in bad)
    bad_docs = {d.doc_id: d for i, d in enumerate(docs) if i in bad}
    assert es.ids(f"{es_prefix}-2*") == good_ids

    today = dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")
    dl_index = f"{es_prefix}-deadletter-{today}"
    hits = es.search(dl_index)
    assert len(hits) == 3
    seen = set()
    for hit in hits:
        src = hit["_source"]
        original_id = src["sidecar.original_id"]
        seen.add(original_id)
        assert src["sidecar.original_index"] == f"{es_prefix}-2026.03.14"
        assert src["error.type"] == "document_parsing_exception"
        assert "gen_ai.usage.input_tokens" in src["error.reason"]
        assert src["sidecar.item_status"] == 400
        assert src["sidecar.original"] == bad_docs[original_id].raw.decode()
        assert "@timestamp" in src
    # Nothing lost: stored + dead-lettered == spooled.
    assert sorted(set(good_ids) | seen) == sorted(d.doc_id for d in docs)
    # The original is kept in _source only, not indexed.
    mapping = es.request("GET", f"/{dl_index}/_mapping")[dl_index]["mappings"]
    assert mapping["properties"]["sidecar"]["properties"]["original"] == {"type": "object", "enabled": False}
    res = es.request("POST", f"/{dl_index}/_search", {"query": {"match": {"sidecar.original": "not-a-number"}}})
    assert res["hits"]["total"]["value"] == 0

    # Re-sending the batch (a retry after a crash) neither duplicates dead letters nor documents.
    again = sink.write(docs, threading.Event())
    assert (again.duplicates, again.dead_lettered) == (47, 3)
    assert es.count(dl_index) == 3
    assert es.count(f"{es_prefix}-2*") == 47


@pytest.mark.parametrize(
    ("block", "item_status"),
    [("index.blocks.read_only_allow_delete", 429), ("index.blocks.write", 403)],
)
def test_retryable_items_are_resent_alone(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, fault_proxy: Any, block: str, item_status: int
) -> None:
    """A real partial failure: one daily index refuses writes (a block), the other accepts them."""
    sink = _sink(fault_proxy.url, es_prefix, backoff_initial=0.2, backoff_max=0.4)
    blocked = f"{es_prefix}-2026.03.14"
    es.request("PUT", f"/{blocked}")
    es.request("PUT", f"/{blocked}/_settings", {block: True})
    probe = es.request("POST", "/_bulk", b'{"create":{"_index":"%s","_id":"probe"}}\n{}\n' % blocked.encode())
    assert probe["items"][0]["create"]["status"] == item_status

    held = docs_factory(10, day="2026.03.14")
    free = docs_factory(20, day="2026.03.15", start=10)
    lift = threading.Timer(1.0, lambda: es.request("PUT", f"/{blocked}/_settings", {block: None}))
    lift.start()
    try:
        result = sink.write(held[:5] + free + held[5:], threading.Event())
    finally:
        lift.cancel()

    assert result.stored == 30 and result.dead_lettered == 0 and result.retries >= 1
    assert fault_proxy.bulk_items[0] == 30
    assert all(n == 10 for n in fault_proxy.bulk_items[1:]), fault_proxy.bulk_items  # only the failed items
    assert es.ids(blocked) == sorted(d.doc_id for d in held)
    assert es.ids(f"{es_prefix}-2026.03.15") == sorted(d.doc_id for d in free)


def test_dead_letter_index_failure_falls_back_to_local_file(
    elasticsearch_url: str, es: Any, es_prefix: str, docs_factory: Any, tmp_path: Path
) -> None:
    sink = _sink(elasticsearch_url, es_prefix, deadletter_dir=tmp_path)
    today = dt.datetime.now(dt.timezone.utc)
    # A dead-letter index whose mapping cannot take the dead letters (error.type as long).
    es.request(
        "PUT",
        f"/{es_prefix}-deadletter-{today:%Y.%m.%d}",
        {"mappings": {"properties": {"error": {"properties": {"type": {"type": "long"}}}}}},
    )
    docs = docs_factory(10, bad=frozenset({2, 5}))
    result = sink.write(docs, threading.Event())

    assert (result.stored, result.dead_lettered) == (8, 2)
    assert sink.deadletter_file_writes == 2
    lines = (tmp_path / f"deadletter-{today:%Y%m%d}.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["sidecar.original_id"] for r in rows) == sorted([docs[2].doc_id, docs[5].doc_id])
    assert all(r["error.type"] == "document_parsing_exception" and r["sidecar.deadletter_failure"] for r in rows)
    assert rows[0]["sidecar.original"] in {docs[2].raw.decode(), docs[5].raw.decode()}
    assert es.count(f"{es_prefix}-2*") == 8

    # With no local directory there is nowhere left: the write fails instead of dropping them.
    no_dir = _sink(elasticsearch_url, es_prefix)
    with pytest.raises(DeadLetterError):
        no_dir.write(docs_factory(4, start=100, bad=frozenset({1})), threading.Event())


def test_dead_letter_method_keeps_malformed_lines(elasticsearch_url: str, es: Any, es_prefix: str) -> None:
    sink = _sink(elasticsearch_url, es_prefix)
    sink.dead_letter(b'{"event.id":"p1-00000009","@timestamp":"2026-03-1', "torn line at end of segment")
    sink.dead_letter(b"\xff\xfe binary \x00", "not UTF-8")
    sink.dead_letter(b"\xff\xfe binary \x00", "not UTF-8")  # same line twice: one dead letter
    assert sink.dead_lettered == 3

    hits = es.search(f"{es_prefix}-deadletter-*")
    assert len(hits) == 2
    by_reason = {h["_source"]["error.reason"]: h["_source"] for h in hits}
    torn = by_reason["torn line at end of segment"]
    assert torn["error.type"] == "malformed_line"
    assert torn["sidecar.original"].startswith('{"event.id":"p1-00000009"')
    binary = by_reason["not UTF-8"]
    assert "sidecar.original_base64" in binary
