"""The sidecar process: sinks, batching, checkpoints, dead letters."""

from sidecar.ship._shipper import Shipper, ShipStats
from sidecar.ship._sink import Sink, SinkStopped, WriteResult
from sidecar.ship.sqlite import QueryFilter, SqliteStore
from sidecar.spool import SpoolDoc

__all__ = ["QueryFilter", "ShipStats", "Shipper", "Sink", "SinkStopped", "SpoolDoc", "SqliteStore", "WriteResult"]
