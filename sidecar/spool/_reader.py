"""Sidecar side of the spool: read every producer's segments, checkpoint, delete what is shipped.

The checkpoint (one small JSON file, replaced atomically) maps each segment to the
byte offset up to which its records are acknowledged by the sink. It moves only
after the sink's ``write`` returned, so a crash at any moment re-sends at most the
last batch, which the sinks deduplicate by record id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import re
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from sidecar.files import UnsafePathError, private_dir, replace_private, write_all
from sidecar.spool._writer import OPEN_SUFFIX, SEALED_SUFFIX
from sidecar.spool.document import SpoolDoc

# The writer puts event.id and @timestamp first, so id and day are read without parsing the document.
log = logging.getLogger("sidecar.spool")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

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
    """Offsets and the digest state, in one private file replaced atomically (never via a symlink).

    A missing or unreadable checkpoint is not fatal: the spool is re-read from the start (the sinks
    deduplicate by id), and when the state directory shows this sidecar ran before (its chain id
    file), ``reset_reason`` says why, so the next digest is preceded by a signed reset marker.
    An unreadable file is kept aside (``checkpoint.json.unreadable-<time>``) for inspection."""

    def __init__(self, path: pathlib.Path, group: int | None = None) -> None:
        self.path = path
        self.group = group
        self.offsets: dict[str, int] = {}
        self.digest_partial: dict[str, dict[str, Any]] = {}  # segment -> chain facts so far
        self.chain: dict[str, Any] = {}  # this sidecar's digest chain: id, seq, head
        self.reset_reason: str | None = None
        try:
            self._load()
        except FileNotFoundError:
            chain_id = self._chain_id_file()
            if chain_id:
                self.chain = {"id": chain_id, "seq": 0, "head": ""}
                self.reset_reason = "checkpoint missing"
        except (ValueError, OSError, AttributeError, TypeError) as exc:
            aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            log.error("checkpoint %s is unreadable (%s); kept as %s, re-reading the spool from the start "
                      "(records are deduplicated by id) and marking the reset in the digest chain", path,
                      type(exc).__name__, aside.name)
            self.offsets, self.digest_partial = {}, {}
            chain_id = self._chain_id_file()
            self.chain = {"id": chain_id, "seq": 0, "head": ""} if chain_id else {}
            self.reset_reason = f"checkpoint unreadable ({type(exc).__name__})"

    def _load(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read())
        self.offsets = {str(k): int(v) for k, v in data.get("offsets", {}).items()}
        self.digest_partial = dict(data.get("digest_partial", {}))
        self.chain = dict(data.get("chain", {}))
        if not self.chain.get("id"):
            chain_id = self._chain_id_file()
            if chain_id:  # the chain began but its state was not saved here: continue it from the store
                self.chain = {"id": chain_id, "seq": 0, "head": ""}
                self.reset_reason = "checkpoint without chain state"

    def _chain_id_file(self) -> str | None:
        try:
            fd = os.open(self.path.with_name("chain-id"), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                value = fh.read(64).decode("ascii", "replace").strip()
        except OSError:
            return None
        return value if re.fullmatch(r"[0-9a-f]{16}", value) else None

    def save(self) -> None:
        private_dir(self.path.parent, self.group)
        data = json.dumps({"offsets": self.offsets, "digest_partial": self.digest_partial, "chain": self.chain})
        with replace_private(self.path, self.group) as fd:
            write_all(fd, data.encode())
        chain_id = self.chain.get("id")
        if chain_id and self._chain_id_file() != chain_id:
            with replace_private(self.path.with_name("chain-id"), self.group) as fd:
                write_all(fd, f"{chain_id}\n".encode())


class SpoolReader:
    def __init__(self, spool_dir: pathlib.Path, state_dir: pathlib.Path, *, abandon_seconds: float = 300.0,
                 group: int | None = None) -> None:
        """Raises :class:`~sidecar.files.UnsafePathError` for a spool or state directory someone else
        prepared (world-writable without the sticky bit, another owner) or a symlink."""
        self.spool_dir = private_dir(spool_dir, group, shared=True)
        self.group = group
        self._refused: set[str] = set()
        private_dir(state_dir)  # only the sidecar uses its state: private whatever the spool's group
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
            try:
                if not e.is_file(follow_symlinks=False):  # a symlink or anything else planted there
                    if name.endswith((SEALED_SUFFIX, OPEN_SUFFIX)):
                        self._refuse(name, "not a regular file (a symbolic link is never followed)")
                    continue
            except OSError:
                continue
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
                fd = self._open_segment(path)
            except FileNotFoundError:
                continue
            except PermissionError:
                raise  # the sidecar lacks the shared group: a configuration error, reported by the caller
            except OSError as exc:  # a symlink (ELOOP), a FIFO, a second link, a stranger's file
                self._refuse(path.name, str(exc))
                continue
            try:
                with os.fdopen(fd, "rb") as fh:
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

    def _open_segment(self, path: pathlib.Path) -> int:
        """A descriptor on a segment the app wrote: never through a symlink, never a FIFO or device, never a
        second link to some other file, owned by this user or carrying the shared group. Otherwise a user
        who can write the spool could make the sidecar read its own private files into the store."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePathError(f"{path.name} is not a regular file")
            if st.st_nlink != 1:
                raise UnsafePathError(f"{path.name} has {st.st_nlink} links (a segment has one)")
            if st.st_uid != os.geteuid() and (self.group is None or st.st_gid != self.group):
                raise UnsafePathError(f"{path.name} belongs to uid {st.st_uid} and not to the shared group")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _refuse(self, name: str, why: str) -> None:
        if name not in self._refused:  # once per file: it stays where it is for someone to look at
            self._refused.add(name)
            log.warning("spool: refusing %s: %s", name, why)

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
