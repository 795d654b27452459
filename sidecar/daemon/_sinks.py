"""The configured sink (Elasticsearch/OpenSearch or the embedded store), opened for shipping or for
reading, and the record documents of a time range read from it (`sidecar advise`, the advice metrics)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from sidecar.config import ShipperSettings

log = logging.getLogger("sidecar")

# The readers judge metadata: leaving the content out of _source cuts each hit from kilobytes to a few
# hundred bytes.
CONTENT_FIELDS = ("sidecar.request.content", "sidecar.response.content")


def _ilm_policy(settings: ShipperSettings) -> str | None:
    """The ILM policy to name in the audit template, when the cluster has ILM (see `retention apply`)."""
    from sidecar.retention import Client, detect, policy_name

    client = Client.from_settings(settings)
    try:
        return policy_name(settings.index_prefix) if detect(client).mode == "ilm" else None
    except Exception as exc:  # unreachable now: the enforcer still applies the limit
        log.warning("could not detect ILM support (%s); the audit template names no ILM policy", exc)
        return None
    finally:
        client.close()


def make_sink(settings: ShipperSettings, once: bool = True, *, shipping: bool = False) -> Any:
    """The configured sink. Only a shipping sink asks the cluster about ILM (its template names the
    policy) and exports its node pool on /metrics; readers (verify, advise) do not need to."""
    if settings.elasticsearch_url:
        from sidecar.es import EsClient
        from sidecar.ship.elasticsearch import ElasticsearchSink

        client = EsClient.from_settings(settings)
        if shipping and not once:
            from sidecar.es import track_in_default_registry

            track_in_default_registry(client)
        return ElasticsearchSink(
            client, index_prefix=settings.index_prefix,
            retention_policy=_ilm_policy(settings) if shipping else None,
            max_retries=8 if once else None,  # --once gives up after ~4 minutes of an unreachable cluster
            number_of_replicas=settings.elasticsearch_replicas, number_of_shards=settings.elasticsearch_shards,
            timeout=settings.elasticsearch_timeout, deadletter_dir=settings.sidecar_state_dir / "deadletter")
    from sidecar.ship import SqliteStore

    return SqliteStore(settings.embedded_store_path)


def read_documents(settings: ShipperSettings, since: str | None, until: str | None,
                   sink: Any = None) -> Iterator[dict[str, Any]]:
    """Record documents in a time range, from Elasticsearch (the range filtered by the cluster, content
    left out) or the embedded store. ``sink``: an Elasticsearch sink to reuse (`sidecar run` passes its own)."""
    if settings.elasticsearch_url:
        es = sink if sink is not None else make_sink(settings)
        bounds = {k: v for k, v in (("gte", since), ("lt", until)) if v}
        query = {"range": {"@timestamp": bounds}} if bounds else None
        return (d for _, d in es.scan(f"{settings.index_prefix}-2*", ["@timestamp", "event.id"], query=query,
                                      source={"excludes": list(CONTENT_FIELDS)}))
    from sidecar.ship import QueryFilter, SqliteStore

    if not settings.embedded_store_path.exists():
        return iter(())
    docs: Iterator[dict[str, Any]] = SqliteStore(settings.embedded_store_path).query(
        QueryFilter(since=since, until=until, limit=None))
    return docs
