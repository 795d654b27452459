"""The GenAI fields in a real Elasticsearch: structured messages whose tool arguments have any keys,
any depth and clashing types are all stored (kept in _source, not indexed key by key); the
conversation id is a keyword; the cost sums."""

from __future__ import annotations

import json
import threading
from typing import Any

from capture_factory import builder, capture

from sidecar.ship.elasticsearch import ElasticsearchSink
from sidecar.spool.document import SpoolDoc


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for n in range(depth):
        value = {f"k{n}": value}
    return value


def _record(seq: int, args: Any, conversation: str) -> SpoolDoc:
    body = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "tool_calls": [{"id": f"c{seq}", "type": "function",
                                              "function": {"name": "f", "arguments": json.dumps(args)}}]},
        {"role": "tool", "tool_call_id": f"c{seq}", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                                "properties": args}}}]}
    resp = {"id": f"r{seq}", "model": "gpt-4o-2024-08-06", "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "done"}}]}
    cap = capture(body=json.dumps(body).encode(), response=json.dumps(resp).encode(), status=200,
                  headers=[("x-conversation", conversation)])
    doc = builder(conversation_header="X-Conversation").build(cap, seq)
    assert doc["gen_ai.conversation.id"] == conversation and doc["sidecar.cost.usd"] > 0
    return SpoolDoc(doc_id=doc["event.id"], day=doc["@timestamp"][:10].replace("-", "."),
                    raw=json.dumps(doc, ensure_ascii=False).encode())


def test_messages_of_any_shape_are_stored_and_cost_sums(elasticsearch_url: str, es: Any, es_prefix: str) -> None:
    many_keys = {f"field_{n}": n for n in range(1500)}  # past the default 1000-field mapping limit
    shapes = [_deep(60), many_keys, {"x": {"a": 1}}, {"x": "now a string"}, {"x": [1, "two", {"three": 3}]}]
    docs = [_record(n, args, "conv-a" if n % 2 else "conv-b") for n, args in enumerate(shapes, 1)]
    sink = ElasticsearchSink(elasticsearch_url, index_prefix=es_prefix, backoff_initial=0.05, backoff_max=0.5)
    sink.open()
    result = sink.write(docs, threading.Event())
    assert (result.stored, result.dead_lettered) == (len(docs), 0)
    pattern = f"{es_prefix}-2*"
    es.refresh(pattern)
    mapping = es.request("GET", f"/{pattern}/_mapping")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["gen_ai"]["properties"]["input"]["properties"]["messages"] == {"type": "object", "enabled": False}
    assert props["gen_ai"]["properties"]["conversation"]["properties"]["id"]["type"] == "keyword"
    assert props["sidecar"]["properties"]["cost"]["properties"]["usd"]["type"] == "double"
    # the stored source is the record as written, messages included
    hit = es.request("POST", f"/{pattern}/_search", {"query": {"term": {"event.id": docs[0].doc_id}}})
    source = hit["hits"]["hits"][0]["_source"]
    assert source["gen_ai.input.messages"] == json.loads(docs[0].raw)["gen_ai.input.messages"]
    # Kibana's questions: by conversation, and spend
    conv = es.request("POST", f"/{pattern}/_search", {
        "size": 0, "query": {"term": {"gen_ai.conversation.id": "conv-a"}},
        "aggs": {"spend": {"sum": {"field": "sidecar.cost.usd"}}}})
    assert conv["hits"]["total"]["value"] == 3
    one = json.loads(docs[0].raw)["sidecar.cost.usd"]
    assert abs(conv["aggregations"]["spend"]["value"] - 3 * one) < 1e-9
    # full-text search runs on the raw content
    text = es.request("POST", f"/{pattern}/_search", {"query": {"match": {"sidecar.request.content": "brief"}}})
    assert text["hits"]["total"]["value"] == len(docs)
