"""Elasticsearch index templates, derived from the record schema.

Three composable index templates, with index patterns that never overlap so each index gets
exactly one of them (and templates of other prefixes on the same cluster do not collide):

* audit records: ``{prefix}-2*`` (daily indices ``{prefix}-YYYY.MM.DD``), mapping from
  :func:`sidecar.record.field_types`;
* dead letters: ``{prefix}-deadletter-*``;
* anomalies: ``{prefix}-anomalies-*``.

Every function returns the JSON body for ``PUT _index_template/<name>``; :func:`template_names`
gives the names.
"""

from __future__ import annotations

from typing import Any

from sidecar.record import SCHEMA_VERSION, FieldType, field_types

KEYWORD_IGNORE_ABOVE = 1024
TEMPLATE_PRIORITY = 200
MANAGED_BY = "llm-audit-sidecar"


def template_names(prefix: str) -> dict[str, str]:
    """Template name by role: ``audit``, ``deadletter``, ``anomalies``."""
    return {
        "audit": f"{prefix}-audit",
        "deadletter": f"{prefix}-deadletter",
        "anomalies": f"{prefix}-anomalies",
        "digests": f"{prefix}-digests",
    }


def audit_index_pattern(prefix: str) -> str:
    # Daily indices are named from the record's date, so they all start with the year's first
    # digit; "-2*" keeps this pattern from also matching "-deadletter-*" and "-anomalies-*".
    return f"{prefix}-2*"


def _leaf(kind: FieldType) -> dict[str, Any]:
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if kind == "text":
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}}}
    if kind in ("date", "long", "double", "boolean"):
        return {"type": kind}
    if kind == "object":
        # Open object: its keys (e.g. redaction types) are mapped on first sight, as long
        # (see the dynamic template below), so counts can be summed in Kibana.
        return {"type": "object", "dynamic": True}
    if kind == "json":
        # Structured messages: kept in _source (Discover shows them) but not indexed key by key.
        # Their keys include callers' tool arguments (unbounded names, any depth): "nested" or dynamic
        # objects would explode the mapping, and "flattened" has a depth limit that rejects the whole
        # document and does not exist on OpenSearch. Full-text search runs on sidecar.*.content (text).
        return {"type": "object", "enabled": False}
    raise ValueError(f"unknown field type {kind!r}")


def nest(flat: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Turn ``{"a.b.c": mapping}`` into nested ``properties`` objects.

    Raises ``ValueError`` when a name is used both as a field and as the parent of another.
    """
    root: dict[str, Any] = {}
    for name, mapping in flat.items():
        parts = name.split(".")
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {"properties": {}})
            if "properties" not in child:
                raise ValueError(f"{'.'.join(parts[: i + 1])} is a field and also the parent of {name}")
            node = child["properties"]
        if parts[-1] in node:
            raise ValueError(f"{name} is defined twice or is also the parent of another field")
        node[parts[-1]] = mapping
    return root


def audit_mappings() -> dict[str, Any]:
    """The audit index mapping, derived from the record schema."""
    flat = {name: _leaf(kind) for name, kind in field_types().items()}
    object_fields = [name for name, kind in field_types().items() if kind == "object"]
    return {
        "dynamic": False,
        "_meta": {"managed_by": MANAGED_BY, "schema_version": SCHEMA_VERSION},
        "dynamic_templates": [
            {f"counts_{i}": {"path_match": f"{name}.*", "mapping": {"type": "long"}}}
            for i, name in enumerate(object_fields)
        ],
        "properties": nest(flat),
    }


Replicas = int | str
DEFAULT_REPLICAS = "0-1"


def replica_settings(replicas: Replicas) -> dict[str, Any]:
    """``3`` or ``"3"``: a fixed ``index.number_of_replicas``; a range such as ``"0-1"`` or ``"1-all"``:
    ``index.auto_expand_replicas``, which the cluster adjusts to its data nodes (0-1: no replica on a
    single node, so it stays green; one as soon as a second node joins, so losing a node loses nothing)."""
    text = str(replicas).strip()
    if text.isdigit():
        return {"index.number_of_replicas": int(text)}
    low, sep, high = text.partition("-")
    if not (sep and low.isdigit() and (high.isdigit() or high == "all")):
        raise ValueError(f"replicas {replicas!r}: a number or a range like 0-1 or 1-all")
    return {"index.auto_expand_replicas": text}


def audit_template(
    prefix: str,
    *,
    retention_policy: str | None = None,
    number_of_replicas: Replicas = DEFAULT_REPLICAS,
    number_of_shards: int = 1,
) -> dict[str, Any]:
    """Index template for the daily audit indices ``{prefix}-YYYY.MM.DD``.

    ``retention_policy`` names an ILM policy to attach (``index.lifecycle.name``);
    ``number_of_replicas``: see :func:`replica_settings`.
    """
    if number_of_shards < 1:
        raise ValueError("number_of_shards must be at least 1")
    settings: dict[str, Any] = {
        "index.number_of_shards": number_of_shards,
        **replica_settings(number_of_replicas),
        "index.codec": "best_compression",
    }
    if retention_policy:
        settings["index.lifecycle.name"] = retention_policy
    return {
        "index_patterns": [audit_index_pattern(prefix)],
        "priority": TEMPLATE_PRIORITY,
        "_meta": {"managed_by": MANAGED_BY, "schema_version": SCHEMA_VERSION, "role": "audit"},
        "template": {"settings": settings, "mappings": audit_mappings()},
    }


def deadletter_template(prefix: str, *, number_of_replicas: Replicas = DEFAULT_REPLICAS) -> dict[str, Any]:
    """Index template for ``{prefix}-deadletter-YYYY.MM.DD``.

    ``sidecar.original`` keeps the rejected document as a string in ``_source`` only: it is
    neither parsed nor indexed, so whatever made the original unindexable cannot fail here too.
    """
    flat: dict[str, dict[str, Any]] = {
        "@timestamp": {"type": "date"},
        "error.type": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "error.reason": {
            "type": "text",
            "fields": {"keyword": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}},
        },
        "sidecar.item_status": {"type": "long"},
        "sidecar.original_index": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "sidecar.original_id": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "sidecar.original": {"type": "object", "enabled": False},
        "sidecar.original_base64": {"type": "object", "enabled": False},
    }
    return _side_template(prefix, "deadletter", flat, number_of_replicas)


def anomaly_template(prefix: str, *, number_of_replicas: Replicas = DEFAULT_REPLICAS) -> dict[str, Any]:
    """Index template for ``{prefix}-anomalies-YYYY.MM.DD`` (written by the anomaly detector)."""
    flat: dict[str, dict[str, Any]] = {
        "@timestamp": {"type": "date"},
        "gen_ai.provider.name": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "gen_ai.request.model": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "http.response.status_code": {"type": "long"},
        "sidecar.anomaly.kind": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "sidecar.anomaly.score": {"type": "double"},
        "sidecar.anomaly.observed_ratio": {"type": "double"},
        "sidecar.anomaly.expected_ratio": {"type": "double"},
        "sidecar.anomaly.window_seconds": {"type": "double"},
        "sidecar.anomaly.count": {"type": "long"},
        "sidecar.anomaly.calls": {"type": "long"},
        "sidecar.credential.fingerprint": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "event.id": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "event.kind": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "error.type": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "message": {"type": "text"},
    }
    return _side_template(prefix, "anomalies", flat, number_of_replicas)


def digest_template(prefix: str, *, number_of_replicas: Replicas = DEFAULT_REPLICAS) -> dict[str, Any]:
    """Index template for ``{prefix}-digests-YYYY.MM.DD``: signed segment digests (tamper evidence)."""
    keyword = {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    flat: dict[str, dict[str, Any]] = {
        "@timestamp": {"type": "date"},
        "sidecar.producer.id": keyword,
        "sidecar.chain.id": keyword,
        **{f"sidecar.digest.{k}": keyword for k in ("id", "first_id", "last_id", "chain_start", "chain_head",
                                                       "prev", "hash", "signature", "kind", "key_id", "reason",
                                                       "reset_of")},
        **{f"sidecar.digest.{k}": {"type": "long"} for k in ("first_sequence", "last_sequence", "count", "seq")},
    }
    return _side_template(prefix, "digests", flat, number_of_replicas)


def _side_template(prefix: str, role: str, flat: dict[str, dict[str, Any]], number_of_replicas: Replicas,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template of a side index family ``{prefix}-{role}-YYYY.MM.DD`` (dead letters, anomalies, digests)."""
    return {
        "index_patterns": [f"{prefix}-{role}-*"],
        "priority": TEMPLATE_PRIORITY,
        "_meta": {"managed_by": MANAGED_BY, "role": role, **(meta or {})},
        "template": {
            # Side indices are small: one shard, replicated like the audit indices.
            "settings": {"index.number_of_shards": 1, **replica_settings(number_of_replicas)},
            "mappings": {"dynamic": False, "properties": nest(flat)},
        },
    }
