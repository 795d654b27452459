"""The sidecar's own retention enforcer: delete whole daily partitions past the limit.

A partition is a daily Elasticsearch index (``{prefix}-YYYY.MM.DD``, ``{prefix}-deadletter-YYYY.MM.DD``,
``{prefix}-anomalies-YYYY.MM.DD``, ``{prefix}-digests-YYYY.MM.DD``) or one day of the embedded store
(``records`` and ``digests`` rows with that ``day``; ``deadletters`` rows whose ``ts`` falls on it).
Its date is the one in its name.

The rule (:func:`is_expired`): a partition dated ``D`` is deleted only when
``D + retention_days + 1 day < today`` (UTC). Its newest record is at most ``D 23:59:59.999``, so at
the earliest deletion (``today = D + N + 2``, 00:00) every record in it is more than ``N + 1`` days
old: at least ``N`` days even if this machine's clock runs a full day fast. Whole partitions only:
an index is deleted by its exact name (never a wildcard), a store day in one transaction. Names
that do not parse as ``prefix-[kind-]YYYY.MM.DD`` with a real date are never touched.

Legal holds (docs/erasure.md): in the store, a day's held records stay (the rest of the day goes);
in the cluster, held documents are copied to the hold index ``{prefix}-hold`` before any index is
deleted, and nothing is deleted in a pass whose copy failed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.clock import format_utc
from sidecar.config import ShipperSettings
from sidecar.retention._cluster import Client, ClusterError
from sidecar.retention._holds import holds_in_force, keep_held_in_cluster, store_clause, store_events
from sidecar.retention._policies import meta_index

MARKER_ID = "retention"
_DELETE_URL_BUDGET = 3000  # characters of index names per DELETE (the default HTTP line limit is 4 KB)


@dataclass(frozen=True, slots=True)
class Partition:
    name: str  # index name, or "records/YYYY.MM.DD" / "deadletters/YYYY.MM.DD" in the embedded store
    kind: str  # "audit", "deadletter", "anomalies" or "digests"
    day: dt.date
    docs: int | None = None

    def label(self) -> str:
        return self.name if self.docs is None else f"{self.name} ({self.docs} docs)"


@dataclass(slots=True)
class EnforceReport:
    """What one enforcer run saw and did."""

    target: str
    retention_days: int
    today: dt.date
    dry_run: bool = False
    deleted: list[Partition] = field(default_factory=list)
    kept: list[Partition] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # legal holds: what was kept past the limit

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def newest_deletable(self) -> dt.date:
        return newest_expired_day(self.retention_days, self.today)

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [
            f"enforcer on {self.target}: limit {self.retention_days} days; today (UTC) {self.today.isoformat()}; "
            f"partitions dated {self.newest_deletable.isoformat()} or earlier are past the limit"
        ]
        out.extend(f"  {verb} {p.label()}" for p in self.deleted)
        if self.kept:
            oldest = min(self.kept, key=lambda p: (p.day, p.name))
            newest = max(self.kept, key=lambda p: (p.day, p.name))
            out.append(f"  kept {len(self.kept)} partitions: oldest {oldest.name}, newest {newest.name}")
        else:
            out.append("  kept 0 partitions")
        out.append(f"  {verb} {len(self.deleted)} partitions in {self.seconds:.3f}s")
        out.extend(f"  {n}" for n in self.notes)
        out.extend(f"  error: {e}" for e in self.errors)
        return out


def utc_today(now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.timezone.utc).date()


def is_expired(day: dt.date, retention_days: int, today: dt.date) -> bool:
    """True when a partition dated ``day`` may be deleted today (see the module docstring)."""
    return day + dt.timedelta(days=retention_days + 1) < today


def newest_expired_day(retention_days: int, today: dt.date) -> dt.date:
    """The most recent date whose partition :func:`is_expired` today."""
    return today - dt.timedelta(days=retention_days + 2)


def _parse_day(y: str, m: str, d: str) -> dt.date | None:
    try:
        return dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


def index_regex(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(?:(deadletter|anomalies|digests)-)?(\d{{4}})\.(\d{{2}})\.(\d{{2}})$")


def parse_index(name: str, prefix: str) -> Partition | None:
    """The partition an index name stands for, or None if it is not one of the sidecar's daily indices."""
    match = index_regex(prefix).match(name)
    if not match:
        return None
    day = _parse_day(match.group(2), match.group(3), match.group(4))
    if day is None:
        return None
    return Partition(name=name, kind=match.group(1) or "audit", day=day)


def split(
    partitions: Iterable[Partition], retention_days: int, today: dt.date
) -> tuple[list[Partition], list[Partition]]:
    """(expired, kept), each sorted by date then name."""
    expired: list[Partition] = []
    kept: list[Partition] = []
    for p in sorted(partitions, key=lambda p: (p.day, p.name)):
        (expired if is_expired(p.day, retention_days, today) else kept).append(p)
    return expired, kept


# ---------------------------------------------------------------------- Elasticsearch / OpenSearch


def list_indices(client: Client, prefix: str) -> list[Partition]:
    """Every daily audit / dead-letter / anomaly / digest index of ``prefix`` (open or closed), with doc counts."""
    path = (
        f"/_cat/indices/{urllib.parse.quote(prefix)}-*?format=json&h=index,docs.count"
        "&expand_wildcards=open,closed&bytes=b"
    )
    rows = client.json_ok("GET", path, ok=(200, 404)) or []
    out: list[Partition] = []
    for row in rows if isinstance(rows, list) else []:
        name = str(row.get("index", ""))
        part = parse_index(name, prefix)
        if part is None:
            continue
        count = row.get("docs.count")
        docs = int(count) if isinstance(count, (int, str)) and str(count).isdigit() else None
        out.append(Partition(name=part.name, kind=part.kind, day=part.day, docs=docs))
    return out


def _batches(names: list[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    size = 0
    for name in names:
        if batch and size + len(name) + 1 > _DELETE_URL_BUDGET:
            yield batch
            batch, size = [], 0
        batch.append(name)
        size += len(name) + 1
    if batch:
        yield batch


def delete_indices(client: Client, names: list[str]) -> list[str]:
    """Delete indices by exact name; returns error messages (empty when all went)."""
    errors: list[str] = []
    for batch in _batches(names):
        if any(ch in n for n in batch for ch in "*,?"):
            raise ValueError(f"refusing to delete a pattern: {batch}")
        path = "/" + ",".join(urllib.parse.quote(n) for n in batch) + "?ignore_unavailable=true"
        resp = client.request("DELETE", path)
        if resp.status != 200:
            errors.append(f"DELETE {','.join(batch)}: HTTP {resp.status}: {resp.text()}")
    return errors


def read_marker(client: Client, prefix: str) -> dict[str, Any] | None:
    """The enforcer's marker document (``{prefix}-retention-meta/_doc/retention``), or None."""
    resp = client.request("GET", f"/{meta_index(prefix)}/_doc/{MARKER_ID}")
    if resp.status == 404:
        return None
    if resp.status != 200:
        raise ClusterError(f"reading the retention marker: HTTP {resp.status}: {resp.text()}", status=resp.status)
    body = resp.json()
    source = body.get("_source") if isinstance(body, dict) and body.get("found") else None
    return source if isinstance(source, dict) else None


def write_marker(client: Client, prefix: str, fields: dict[str, Any]) -> None:
    """Merge ``fields`` into the marker document, creating its index if the cluster does not auto-create."""
    path = f"/{meta_index(prefix)}/_update/{MARKER_ID}?refresh=true"
    body = {"doc": fields, "doc_as_upsert": True}
    resp = client.request("POST", path, body)
    if resp.status == 404:
        created = client.request(
            "PUT",
            f"/{meta_index(prefix)}",
            {"mappings": {"dynamic": False, "properties": {"retention_days": {"type": "integer"}}}},
        )
        if created.status not in (200, 400):  # 400: created meanwhile (resource_already_exists_exception)
            raise ClusterError(f"creating {meta_index(prefix)}: HTTP {created.status}: {created.text()}")
        resp = client.request("POST", path, body)
    if resp.status not in (200, 201):
        raise ClusterError(f"writing the retention marker: HTTP {resp.status}: {resp.text()}", status=resp.status)


def enforce_cluster(
    client: Client,
    prefix: str,
    retention_days: int,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    record_marker: bool = True,
    keep_held: Callable[[], str] | None = None,
) -> EnforceReport:
    """Delete the expired daily indices of ``prefix``; record the limit and the run in the marker.
    ``keep_held``: copies held documents to the hold index first (returns a note; raises: delete nothing)."""
    started = time.perf_counter()
    today = utc_today(now)
    report = EnforceReport(target=f"cluster (prefix {prefix})", retention_days=retention_days, today=today,
                           dry_run=dry_run)
    expired, kept = split(list_indices(client, prefix), retention_days, today)
    report.kept = kept
    if keep_held is not None and not dry_run:
        try:
            note = keep_held()
            report.notes += [note] if note else []
        except Exception as exc:  # a hold must not lose records: nothing is deleted this pass
            report.errors.append(f"legal holds not secured, nothing deleted: {type(exc).__name__}: {exc}")
            report.kept = sorted(kept + expired, key=lambda p: (p.day, p.name))
            expired = []
    if dry_run:
        report.deleted = expired
    else:
        errors = delete_indices(client, [p.name for p in expired]) if expired else []
        report.errors.extend(errors)
        if errors:
            still = {p.name for p in list_indices(client, prefix)}
            report.deleted = [p for p in expired if p.name not in still]
            report.kept = sorted(kept + [p for p in expired if p.name in still], key=lambda p: (p.day, p.name))
        else:
            report.deleted = expired
        if record_marker:
            stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
            write_marker(client, prefix, {
                "retention_days": retention_days,
                "managed_by": "llm-audit-sidecar",
                "last_enforced_at": format_utc(stamp, timespec="seconds"),
                "last_deleted": [p.name for p in report.deleted][:100],
            })
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------- embedded store (SQLite)

_DAY_RE = re.compile(r"^(\d{4})[.-](\d{2})[.-](\d{2})")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def list_store_partitions(conn: sqlite3.Connection) -> list[Partition]:
    """Day partitions of the embedded store: ``records`` by ``day``, ``deadletters`` by the day of ``ts``."""
    out: list[Partition] = []
    tables = _tables(conn)
    if "records" in tables:
        for day_text, count in conn.execute("SELECT day, count(*) FROM records GROUP BY day"):
            m = _DAY_RE.match(str(day_text)) if len(str(day_text)) == 10 else None
            day = _parse_day(*m.groups()) if m else None
            if day is not None:
                out.append(Partition(f"records/{day_text}", "audit", day, int(count)))
    if "digests" in tables:
        for day_text, count in conn.execute("SELECT day, count(*) FROM digests GROUP BY day"):
            m = _DAY_RE.match(str(day_text)) if len(str(day_text)) == 10 else None
            day = _parse_day(*m.groups()) if m else None
            if day is not None:
                out.append(Partition(f"digests/{day_text}", "digests", day, int(count)))
    if "deadletters" in tables:
        for day_text, count in conn.execute("SELECT substr(ts, 1, 10), count(*) FROM deadletters GROUP BY 1"):
            m = _DAY_RE.match(str(day_text))
            day = _parse_day(*m.groups()) if m else None
            if day is not None:
                out.append(Partition(f"deadletters/{day:%Y.%m.%d}", "deadletter", day, int(count)))
    return out


def read_store_limit(conn: sqlite3.Connection) -> int | None:
    """The limit recorded in ``meta`` (``retention_days``), or None."""
    if "meta" not in _tables(conn):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'retention_days'").fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):
        return None


def _set_meta(conn: sqlite3.Connection, values: dict[str, str]) -> None:
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )


def _ensure_day_index(conn: sqlite3.Connection) -> None:
    if "records" not in _tables(conn):
        return
    indexed = False
    for row in conn.execute("PRAGMA index_list(records)"):
        cols = [str(c[2]) for c in conn.execute(f"PRAGMA index_info({json.dumps(str(row[1]))})")]
        if cols and cols[0] == "day":
            indexed = True
            break
    if not indexed:
        with conn:
            conn.execute("CREATE INDEX IF NOT EXISTS records_day ON records (day)")


def enforce_store(
    path: Path,
    retention_days: int,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    record_marker: bool = True,
    settings: ShipperSettings | None = None,
) -> EnforceReport:
    """Delete the expired day partitions of the embedded store, but the records a legal hold keeps
    (checked with the key of ``settings``); record the limit in ``meta``."""
    started = time.perf_counter()
    today = utc_today(now)
    report = EnforceReport(target=f"embedded store {path.name}", retention_days=retention_days, today=today,
                           dry_run=dry_run)
    if not path.exists():
        report.seconds = time.perf_counter() - started
        return report
    conn = _connect(path)
    try:
        if not dry_run:
            _ensure_day_index(conn)
        expired, kept = split(list_store_partitions(conn), retention_days, today)
        report.kept = kept
        held, args = store_clause(holds_in_force(settings, store_events(conn)))
        if dry_run:
            report.deleted = expired
        else:
            for part in expired:
                try:
                    with conn:  # one transaction per day: the whole partition (but held records) or nothing
                        if part.kind == "audit":
                            day = part.name.split("/", 1)[1]
                            conn.execute(f"DELETE FROM records WHERE day = ? AND NOT {held}", (day, *args))
                            left = conn.execute("SELECT count(*) FROM records WHERE day = ?", (day,)).fetchone()[0]
                            if left:
                                report.notes.append(f"kept {left} records of {part.name} past the limit: legal hold")
                        elif part.kind == "digests":
                            conn.execute("DELETE FROM digests WHERE day = ?", (part.name.split("/", 1)[1],))
                        else:
                            conn.execute("DELETE FROM deadletters WHERE substr(ts, 1, 10) = ?",
                                         (part.day.isoformat(),))
                    report.deleted.append(part)
                except sqlite3.Error as exc:
                    report.errors.append(f"deleting {part.name}: {exc}")
                    report.kept.append(part)
            report.kept.sort(key=lambda p: (p.day, p.name))
            if record_marker:
                stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
                _set_meta(conn, {
                    "retention_days": str(retention_days),
                    "retention_last_enforced_at": format_utc(stamp, timespec="seconds"),
                })
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------- entry point for `sidecar run`


def enforce(settings: ShipperSettings, *, now: dt.datetime | None = None, dry_run: bool = False) -> EnforceReport:
    """One enforcer pass over the configured destination (Elasticsearch if a URL is set, else the store).

    Safe to call every hour from the shipper loop, whatever else manages the cluster (ILM / ISM delete
    the same indices at the same age or earlier). Raises :class:`ClusterError` when the cluster cannot
    be reached; the caller logs it and tries again next time.
    """
    if settings.elasticsearch_url:
        client = Client.from_settings(settings)
        try:
            return enforce_cluster(client, settings.index_prefix, settings.retention_days, now=now, dry_run=dry_run,
                                   keep_held=lambda: keep_held_in_cluster(settings))
        finally:
            client.close()
    return enforce_store(settings.embedded_store_path, settings.retention_days, now=now, dry_run=dry_run,
                         settings=settings)
