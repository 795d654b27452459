"""The Elasticsearch store's side indices: signed digests (``{prefix}-digests-*``) and anomaly documents
(``{prefix}-anomalies-*``), both created with their own id so a repeat is a 409, not a copy."""

from __future__ import annotations

import json
from typing import Any

from sidecar.ship._es_cluster import IGNORE_MISSING, ElasticsearchError, EsCluster, Transient, short


class EsSideIndices(EsCluster):
    """:class:`~sidecar.ship.DigestStore` and :class:`~sidecar.ship.AnomalyStore` on Elasticsearch."""

    def _digests_pattern(self) -> str:
        return f"{self.index_prefix}-digests-*"

    def write_digest(self, doc: dict[str, Any]) -> None:
        """Store a signed segment digest in ``{prefix}-digests-YYYY.MM.DD``; a 409 means it is already there."""
        self.create_one("digests", doc["sidecar.digest.id"], doc)

    def latest_digest(self, chain_id: str) -> dict[str, Any] | None:
        """The newest digest of a sidecar chain (after a refresh, so one just written is seen)."""
        pattern = self._digests_pattern()
        self.refresh(pattern)
        body = {"size": 1, "query": {"term": {"sidecar.chain.id": chain_id}},
                "sort": [{"sidecar.digest.seq": {"order": "desc", "unmapped_type": "long"}}]}
        try:
            resp = self.request("POST", f"/{pattern}/_search?{IGNORE_MISSING}", json.dumps(body).encode())
        except Transient as exc:
            raise ElasticsearchError(f"search of {pattern} failed: {exc.reason}") from exc
        if resp.status != 200:
            raise ElasticsearchError(f"search {pattern}: HTTP {resp.status}: {short(resp.body.decode())}")
        hits = resp.json().get("hits", {}).get("hits", [])
        return dict(hits[0]["_source"]) if hits else None

    def digests(self) -> list[dict[str, Any]]:
        return [d for _, d in self.scan(self._digests_pattern(), ["@timestamp", "sidecar.digest.id"])]

    def heads(self) -> list[dict[str, Any]]:
        """The newest digest of every sidecar chain (what `sidecar audit anchor` exports)."""
        newest: dict[str, dict[str, Any]] = {}
        for _, doc in self.scan(self._digests_pattern(), ["sidecar.digest.seq", "sidecar.digest.id"]):
            newest[str(doc.get("sidecar.chain.id"))] = doc
        return list(newest.values())

    def write_anomaly(self, doc: dict[str, Any]) -> None:
        """Store an anomaly document in ``{prefix}-anomalies-YYYY.MM.DD``; a 409 means it is already there."""
        self.create_one("anomalies", doc["event.id"], doc)
