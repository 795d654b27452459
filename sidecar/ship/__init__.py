"""The sidecar process: sinks, batching, checkpoints, dead letters; the stores and what each reader needs."""

from sidecar.ship._shipper import Shipper, ShipStats
from sidecar.ship._sink import (
    AnomalyStore,
    DigestStore,
    QueryFilter,
    RecordReader,
    Sink,
    SinkStopped,
    Store,
    WriteResult,
)
from sidecar.ship.sqlite import SqliteStore
from sidecar.spool import SpoolDoc

__all__ = ["AnomalyStore", "DigestStore", "QueryFilter", "RecordReader", "ShipStats", "Shipper", "Sink",
           "SinkStopped", "SpoolDoc", "SqliteStore", "Store", "WriteResult"]
