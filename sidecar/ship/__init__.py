"""The sidecar process: sinks, batching, checkpoints, dead letters."""

from sidecar.ship._shipper import Shipper, ShipStats
from sidecar.ship._sink import Sink, SinkStopped, SpoolDoc, WriteResult
from sidecar.ship._sqlite import QueryFilter, SqliteStore

__all__ = ["QueryFilter", "ShipStats", "Shipper", "Sink", "SinkStopped", "SpoolDoc", "SqliteStore", "WriteResult"]
