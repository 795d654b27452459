"""The one Elasticsearch / OpenSearch client: the sink, retention, the readers and the dashboards
installer all talk to the cluster through :class:`EsClient` (see ``_client`` for why it is built on
``elastic-transport``)."""

from sidecar.es._client import (
    ClientOptions,
    EsClient,
    EsHttpError,
    EsUnavailable,
    Response,
    api_key_header,
    cloud_node_config,
    node_config,
    redact_url,
    short,
    split_urls,
)
from sidecar.es._metrics import ClientMetrics, track_in_default_registry
from sidecar.es._scan import ScanError, distribution, scan

__all__ = [
    "ClientMetrics",
    "ClientOptions",
    "EsClient",
    "EsHttpError",
    "EsUnavailable",
    "Response",
    "ScanError",
    "api_key_header",
    "cloud_node_config",
    "distribution",
    "node_config",
    "redact_url",
    "scan",
    "short",
    "split_urls",
    "track_in_default_registry",
]
