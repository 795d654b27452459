"""Prometheus view of the client's node pool: failover is otherwise invisible (a request that
failed on one node and succeeded on the next looks like any other)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from sidecar.es._client import EsClient


class ClientMetrics:
    """A collector over the clients it tracks (weakly: a closed, dropped client disappears).

    * ``sidecar_elasticsearch_node_failures_total{node}``: times a node was marked dead (connection
      refused or reset, timeout, or a 429/5xx answer) and the pool moved on to another;
    * ``sidecar_elasticsearch_nodes{state}``: nodes in the pool, ``alive`` or ``dead`` (resting
      before a retry).
    The ``node`` label is a configured ``host:port``: a bounded set.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._clients: weakref.WeakSet[EsClient] = weakref.WeakSet()
        self._lock = threading.Lock()
        registry.register(self)

    def track(self, client: EsClient) -> None:
        with self._lock:
            self._clients.add(client)

    def describe(self) -> list[Any]:
        return []  # families are created per scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        failures = CounterMetricFamily("sidecar_elasticsearch_node_failures",
                                       "Times a node was marked dead and requests failed over to another.",
                                       labels=["node"])
        nodes = GaugeMetricFamily("sidecar_elasticsearch_nodes", "Nodes in the client's pool by state.",
                                  labels=["state"])
        per_node: dict[str, int] = {}
        alive = dead = 0
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            pool = client.pool
            for cfg in client.nodes:
                name = f"{cfg.host}:{cfg.port}"
                per_node[name] = per_node.get(name, 0) + pool.failures.get(name, 0)
            a, d = pool.state()
            alive += a
            dead += d
        for name, count in sorted(per_node.items()):
            failures.add_metric([name], count)
        nodes.add_metric(["alive"], alive)
        nodes.add_metric(["dead"], dead)
        yield failures
        yield nodes


_default: ClientMetrics | None = None
_default_lock = threading.Lock()


def track_in_default_registry(client: EsClient) -> None:
    """Export ``client``'s pool on prometheus_client's default registry (what ``sidecar run`` serves)."""
    global _default
    from prometheus_client import REGISTRY

    with _default_lock:
        if _default is None:
            _default = ClientMetrics(REGISTRY)
        _default.track(client)
