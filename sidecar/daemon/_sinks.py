"""The configured sink (Elasticsearch/OpenSearch or the embedded store), opened for shipping or for
reading, and the record documents of a time range read from it (`sidecar advise`, the advice metrics)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sidecar.config import ShipperSettings

if TYPE_CHECKING:
    from sidecar.ship import Store
    from sidecar.ship.elasticsearch import ElasticsearchSink

log = logging.getLogger("sidecar")

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


def elasticsearch_sink(settings: ShipperSettings, once: bool = True, *, shipping: bool = False) -> ElasticsearchSink:
    """The configured cluster's sink. Only a shipping sink asks the cluster about ILM (its template names the
    policy) and exports its node pool on /metrics; readers (verify, advise) do not need to."""
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


def make_sink(settings: ShipperSettings, once: bool = True, *, shipping: bool = False) -> Store:
    """The configured store: the cluster's sink when a URL is configured, else the embedded store."""
    if settings.elasticsearch_url:
        return elasticsearch_sink(settings, once, shipping=shipping)
    from sidecar.ship import SqliteStore

    return SqliteStore(settings.embedded_store_path)


def read_documents(settings: ShipperSettings, since: str | None, until: str | None) -> Iterator[dict[str, Any]]:
    """Record documents in a time range without their content (the store filters the range; the readers
    judge metadata, and leaving the content out cuts each document from kilobytes to a few hundred bytes)."""
    from sidecar.daemon._stores import open_store
    from sidecar.ship import QueryFilter

    try:
        store = open_store(settings)
    except FileNotFoundError:
        return iter(())
    return store.query(QueryFilter(since=since, until=until, limit=None), content=False)
