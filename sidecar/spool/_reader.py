"""Sidecar side of the spool: read every producer's segments, checkpoint, delete what is shipped.

The checkpoint (one small JSON file, replaced atomically) maps each segment to the
byte offset up to which its records are acknowledged by the sink. It moves only
after the sink's ``write`` returned, so a crash at any moment re-sends at most the
last batch, which the sinks deduplicate by record id.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sidecar.ship._sink import SpoolDoc
from sidecar.spool._writer import OPEN_SUFFIX, SEALED_SUFFIX

# The writer puts event.id and @timestamp first, so id and day are read without parsing the document.
_PREFIX = re.compile(rb'^\{"event\.id":"([A-Za-z0-9_.:-]{1,200})","@timestamp":"(\d{4})-(\d{2})-(\d{2})T')
_SEGMENT = re.compile(r"^(?P<producer>[A-Za-z0-9_]{1,64})-(?P<no>\d{6,})-(?P<ms>\d{1,16})$")


def read_doc_header(line: bytes) -> tuple[str, str] | None:
    """(doc id, YYYY.MM.DD) from a spool line, or None when the line is not a record."""
    m = _PREFIX.match(line)
    if m:
        return m.group(1).decode(), f"{m.group(2).decode()}.{m.group(3).decode()}.{m.group(4).decode()}"
    try:  # a document written by something else than our writer: accept it if it is well-formed
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    doc_id, ts = doc.get("event.id"), doc.get("@timestamp")
    if not isinstance(doc_id, str) or not isinstance(ts, str) or not re.match(r"\d{4}-\d{2}-\d{2}T", ts):
        return None
    return doc_id, ts[:10].replace("-", ".")


@dataclass
class SegmentBatch:
    segment: str  # stem: producer-segment-created
    path: pathlib.Path
    start: int
    end: int
    docs: list[SpoolDoc] = field(default_factory=list)
    malformed: list[tuple[bytes, str]] = field(default_factory=list)
    finished: bool = False  # the segment is sealed and this batch reaches its end


class Checkpoint:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.offsets: dict[str, int] = {}
        self.digest_partial: dict[str, dict[str, Any]] = {}  # segment -> chain facts so far
        self.digest_last: dict[str, str] = {}  # producer -> hash of its latest digest
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.offsets = {str(k): int(v) for k, v in data.get("offsets", {}).items()}
                self.digest_partial = dict(data.get("digest_partial", {}))
                self.digest_last = dict(data.get("digest_last", {}))
            except (ValueError, OSError, AttributeError) as exc:
                raise RuntimeError(f"checkpoint {path} is unreadable ({exc}); move it aside to re-ship "
                                   "(records are deduplicated by id)") from exc

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump({"offsets": self.offsets, "digest_partial": self.digest_partial,
                       "digest_last": self.digest_last}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class SpoolReader:
    def __init__(self, spool_dir: pathlib.Path, state_dir: pathlib.Path, *, abandon_seconds: float = 300.0) -> None:
        self.spool_dir = spool_dir
        self.checkpoint = Checkpoint(state_dir / "checkpoint.json")
        self.abandon_seconds = abandon_seconds

    def segments(self) -> list[tuple[str, pathlib.Path, bool]]:
        """(stem, path, sealed) for every segment, oldest first per producer."""
        out = []
        try:
            entries = list(os.scandir(self.spool_dir))
        except FileNotFoundError:
            return []
        now = time.time()
        for e in entries:
            name = e.name
            if name.endswith(SEALED_SUFFIX):
                stem, sealed = name[: -len(SEALED_SUFFIX)], True
            elif name.endswith(OPEN_SUFFIX):
                stem, sealed = name[: -len(OPEN_SUFFIX)], False
                try:  # a segment its producer left open (crash, kill -9) counts as sealed after a while
                    if now - e.stat().st_mtime > self.abandon_seconds:
                        sealed = True
                except FileNotFoundError:
                    continue
            else:
                continue
            m = _SEGMENT.match(stem)
            if not m:
                continue
            out.append((m.group("ms").zfill(16) + m.group("no"), stem, pathlib.Path(e.path), sealed))
        out.sort()
        return [(stem, path, sealed) for _, stem, path, sealed in out]

    def pending(self) -> tuple[int, float | None, int]:
        """(undelivered bytes, creation time of the oldest segment holding some, segment count)."""
        total, oldest, segments = 0, None, self.segments()
        for stem, path, _ in segments:
            with contextlib.suppress(FileNotFoundError):
                left = path.stat().st_size - self.checkpoint.offsets.get(stem, 0)
                if left > 0:
                    total += left
                    created = int(stem.rsplit("-", 1)[1]) / 1000
                    oldest = created if oldest is None else min(oldest, created)
        return total, oldest, len(segments)

    def pending_bytes(self) -> int:
        return self.pending()[0]

    def next_batch(self, max_records: int, max_bytes: int = 8 * 1024 * 1024) -> SegmentBatch | None:
        for stem, path, sealed in self.segments():
            start = self.checkpoint.offsets.get(stem, 0)
            try:
                with open(path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    if start >= size:
                        if sealed:
                            return SegmentBatch(stem, path, start, start, finished=True)
                        continue
                    fh.seek(start)
                    data = fh.read(min(size - start, max_bytes))
            except FileNotFoundError:  # renamed from .open to .jsonl meanwhile: seen on the next pass
                continue
            batch = self._parse(stem, path, sealed, start, size, data, max_records)
            if batch.end == start and not batch.finished:
                continue  # only a line still being written: nothing to ship here yet
            return batch
        return None

    def _parse(self, stem: str, path: pathlib.Path, sealed: bool, start: int, size: int, data: bytes,
               max_records: int) -> SegmentBatch:
        batch = SegmentBatch(stem, path, start, start)
        pos = 0
        n = 0
        while pos < len(data) and n < max_records:
            nl = data.find(b"\n", pos)
            if nl < 0:
                if sealed and start + len(data) == size:
                    # Torn last line: the producer died mid-write. Keep it as a dead letter.
                    batch.malformed.append((data[pos:], "torn_line"))
                    pos = len(data)
                elif pos == 0 and len(data) >= 8 * 1024 * 1024:
                    batch.malformed.append((data[:4096], "line_too_long"))
                    pos = len(data)
                break
            line = data[pos:nl]
            pos = nl + 1
            if not line.strip():
                continue
            header = read_doc_header(line)
            if header is None:
                batch.malformed.append((line, "malformed_record"))
            else:
                batch.docs.append(SpoolDoc(header[0], header[1], line))
            n += 1
        batch.end = start + pos
        batch.finished = sealed and batch.end >= size
        return batch

    def commit(self, batch: SegmentBatch) -> None:
        """The sink acknowledged ``batch``: move the checkpoint; delete the segment once fully shipped."""
        if batch.finished:
            batch.path.unlink(missing_ok=True)
            self.checkpoint.offsets.pop(batch.segment, None)
        else:
            self.checkpoint.offsets[batch.segment] = batch.end
        self.checkpoint.save()
