"""The durable local queue between the application and the sidecar."""

from sidecar.spool._reader import Checkpoint, SegmentBatch, SpoolReader
from sidecar.spool._writer import OPEN_SUFFIX, SEALED_SUFFIX, SpoolConfig, SpoolWriter
from sidecar.spool.document import SpoolDoc

__all__ = ["OPEN_SUFFIX", "SEALED_SUFFIX", "Checkpoint", "SegmentBatch", "SpoolConfig", "SpoolDoc", "SpoolReader",
           "SpoolWriter"]
