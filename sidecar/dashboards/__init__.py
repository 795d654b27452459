"""``sidecar dashboards install``: the Kibana saved objects (``kibana``, built for the configured index
prefix) and the Grafana dashboard shipped in the package, sent to the servers by ``install``."""
