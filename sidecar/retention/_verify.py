"""``sidecar retention verify``: prove the retention in force keeps every record N days, then deletes it.

The limit *in force* is what the cluster or store will actually do, not the setting: the ILM / ISM
policy read back from the cluster, and the limit the sidecar's enforcer recorded when it last ran
(``{prefix}-retention-meta/_doc/retention`` in the cluster, ``meta.retention_days`` in the store).
Where several mechanisms act on the same indices, the one that deletes first sets the limit.

Verify fails (exit 1) when:

* no mechanism is in force (no ILM / ISM policy attached, no enforcer limit recorded);
* the limit in force is shorter than ``SIDECAR_RETENTION_DAYS``, or below 90 days without
  ``SIDECAR_ALLOW_SHORT_RETENTION``;
* an ILM / ISM policy has no delete step, deletes on another condition than age, or is not attached
  to an existing audit index or to the audit template (new indices would not be managed);
* ILM is not RUNNING;
* a partition past the limit in force is still there. "Past" uses the enforcer's rule
  (:func:`sidecar.retention._enforcer.is_expired`), judged at ``now - 2 hours`` so that an index
  that crossed the limit at midnight is not reported before an hourly enforcer pass had a chance.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.clock import format_utc
from sidecar.config import MIN_RETENTION_DAYS, ShipperSettings
from sidecar.retention._cluster import Client, ClusterError, ClusterInfo, _redact
from sidecar.retention._enforcer import (
    Partition,
    _connect,
    is_expired,
    list_indices,
    list_store_partitions,
    read_marker,
    read_store_limit,
    utc_today,
)
from sidecar.retention._holds import check_hold_index, holds_in_force, store_clause, store_events
from sidecar.retention._policies import delete_after_days, meta_index, parse_duration, policy_name
from sidecar.ship.templates import template_names

GRACE = dt.timedelta(hours=2)
_DAY = 86400.0


@dataclass(slots=True)
class Evidence:
    """What verify found; :meth:`lines` is what it prints."""

    target: str
    configured_days: int
    mechanisms: list[str] = field(default_factory=list)
    policy: str | None = None
    limits: dict[str, float] = field(default_factory=dict)  # mechanism -> days every record is kept
    partitions: list[Partition] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def limit_in_force(self) -> float | None:
        return min(self.limits.values()) if self.limits else None

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"retention verify: {self.target}"]
        out.append("  mechanism: " + (", ".join(self.mechanisms) if self.mechanisms else "none"))
        out.append(f"  policy: {self.policy or '-'}")
        limit = self.limit_in_force
        detail = "; ".join(f"{k}: {_days(v)}" for k, v in self.limits.items())
        out.append(
            f"  age limit in force: {_days(limit) if limit is not None else 'none'}"
            + (f" ({detail})" if len(self.limits) > 1 else "")
            + f"; configured SIDECAR_RETENTION_DAYS={self.configured_days}"
        )
        if self.partitions:
            ordered = sorted(self.partitions, key=lambda p: (p.day, p.name))
            out.append(f"  partitions: {len(ordered)}; oldest {ordered[0].label()}; newest {ordered[-1].label()}")
        else:
            out.append("  partitions: none")
        out.extend(f"  note: {n}" for n in self.notes)
        out.extend(f"  FAIL: {p}" for p in self.problems)
        out.append("result: OK" if self.ok else f"result: FAIL ({len(self.problems)} problem(s))")
        return out


def _days(value: float) -> str:
    return f"{int(value)} days" if float(value).is_integer() else f"{value:.2f} days"


def _check_limits(ev: Evidence, settings: ShipperSettings, now: dt.datetime) -> None:
    """The checks common to every target: limit vs setting, floor, nothing past the limit."""
    limit = ev.limit_in_force
    if limit is None:
        ev.problems.append("no retention mechanism is in force (run `sidecar retention apply`)")
        return
    if limit < settings.retention_days:
        ev.problems.append(
            f"the limit in force keeps records {_days(limit)}, less than SIDECAR_RETENTION_DAYS="
            f"{settings.retention_days}"
        )
    if limit < MIN_RETENTION_DAYS and not settings.allow_short_retention:
        ev.problems.append(
            f"the limit in force ({_days(limit)}) is below {MIN_RETENTION_DAYS} days and "
            "SIDECAR_ALLOW_SHORT_RETENTION is not set"
        )
    reference = utc_today(now - GRACE)
    whole = max(0, math.floor(limit))
    past = [p for p in ev.partitions if is_expired(p.day, whole, reference)]
    if past:
        names = ", ".join(p.name for p in past[:5]) + (f" and {len(past) - 5} more" if len(past) > 5 else "")
        ev.problems.append(
            f"{len(past)} partition(s) past the {whole}-day limit are still present: {names}"
        )


# ---------------------------------------------------------------------- cluster


def _lifecycle_name(settings_obj: Any) -> str | None:
    """``index.lifecycle.name`` from a settings object in flat or nested form."""
    if not isinstance(settings_obj, dict):
        return None
    candidates: list[Any] = [settings_obj.get("index.lifecycle.name")]
    index = settings_obj.get("index")
    if isinstance(index, dict):
        candidates.append(index.get("lifecycle.name"))
        lifecycle = index.get("lifecycle")
        if isinstance(lifecycle, dict):
            candidates.append(lifecycle.get("name"))
    return next((c for c in candidates if isinstance(c, str)), None)


def check_ilm_policy(policy: dict[str, Any], retention_days: int) -> tuple[float | None, list[str], list[str]]:
    """(days every record is kept, notes, problems) for an ILM policy body (the ``policy`` object).

    ILM counts ``min_age`` from the index's creation and a daily index takes records for a whole
    day, so a record is guaranteed ``min_age - 1 day``.
    """
    phases = policy.get("phases") or {}
    delete = phases.get("delete") if isinstance(phases, dict) else None
    if not isinstance(delete, dict) or "delete" not in (delete.get("actions") or {}):
        return None, [], ["no delete phase with a delete action: records are never deleted"]
    min_age = delete.get("min_age", "0ms")
    try:
        seconds = parse_duration(min_age)
    except ValueError as exc:
        return None, [], [f"delete phase min_age unreadable: {exc}"]
    kept = max(0.0, seconds / _DAY - 1)
    note = (
        f"ILM deletes a daily index at age {min_age} from its creation; the index spans one day, so every "
        f"record is kept {_days(kept)} (needs min_age >= {delete_after_days(retention_days)}d)"
    )
    return kept, [note], []


def check_ism_policy(policy: dict[str, Any], retention_days: int) -> tuple[float | None, list[str], list[str]]:
    """(days every record is kept, notes, problems) for an ISM policy body (the ``policy`` object)."""
    ages, problems = _ism_transitions_to_delete(policy)
    if not ages:
        return None, [], problems
    try:
        values = [(parse_duration(a), a) for a in ages]
    except ValueError as exc:
        return None, [], [*problems, f"min_index_age unreadable: {exc}"]
    seconds, shown = min(values)
    kept = max(0.0, seconds / _DAY - 1)
    note = (
        f"ISM deletes a daily index at min_index_age {shown} from its creation; every record is kept "
        f"{_days(kept)} (needs >= {delete_after_days(retention_days)}d)"
    )
    return kept, [note], problems


def _verify_ilm(client: Client, ev: Evidence, settings: ShipperSettings, info: ClusterInfo) -> None:
    prefix = settings.index_prefix
    name = policy_name(prefix)
    ev.policy = f"ILM {name}"
    if info.ilm_operation_mode != "RUNNING":
        ev.problems.append(f"ILM operation mode is {info.ilm_operation_mode}, not RUNNING (POST _ilm/start)")
    resp = client.request("GET", f"/_ilm/policy/{urllib.parse.quote(name)}")
    if resp.status == 404:
        ev.problems.append(f"ILM policy {name} does not exist")
        return
    if resp.status != 200:
        raise ClusterError(f"GET _ilm/policy/{name}: HTTP {resp.status}: {resp.text()}", status=resp.status)
    body = resp.json() or {}
    limit, notes, problems = check_ilm_policy((body.get(name) or {}).get("policy") or {}, settings.retention_days)
    ev.notes.extend(notes)
    ev.problems.extend(f"ILM policy {name}: {p}" for p in problems)
    if limit is None:
        return
    ev.limits["ILM"] = limit
    ev.mechanisms.append(f"ILM policy {name}")

    tpl_name = template_names(prefix)["audit"]
    tpl = client.request("GET", f"/_index_template/{urllib.parse.quote(tpl_name)}")
    tpl_body = tpl.json() if tpl.status == 200 else None
    templates = (tpl_body.get("index_templates") or []) if isinstance(tpl_body, dict) else []
    attached = None
    if templates:
        attached = _lifecycle_name(((templates[0].get("index_template") or {}).get("template") or {}).get("settings"))
    if attached != name:
        ev.problems.append(
            f"index template {tpl_name} does not set index.lifecycle.name={name} (it has {attached!r}): "
            "new daily indices would not be managed"
        )
    audit = [p for p in ev.partitions if p.kind == "audit"]
    if audit:
        res = client.json_ok(
            "GET",
            f"/{urllib.parse.quote(prefix)}-2*/_settings/index.lifecycle.name"
            "?flat_settings=true&expand_wildcards=open,closed&allow_no_indices=true",
            ok=(200, 404),
        ) or {}
        unmanaged = [
            p.name for p in audit
            if ((res.get(p.name) or {}).get("settings") or {}).get("index.lifecycle.name") != name
        ]
        if unmanaged:
            shown = ", ".join(unmanaged[:5]) + (f" and {len(unmanaged) - 5} more" if len(unmanaged) > 5 else "")
            ev.problems.append(f"{len(unmanaged)} audit index(es) not managed by {name}: {shown}")


def _ism_transitions_to_delete(policy: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """(min_index_age values of transitions into deleting states, problems)."""
    states = policy.get("states") or []
    deleting = {
        s.get("name") for s in states
        if isinstance(s, dict) and any(isinstance(a, dict) and "delete" in a for a in s.get("actions") or [])
    }
    problems: list[str] = []
    ages: list[Any] = []
    if not deleting:
        problems.append("no state with a delete action: records are never deleted")
    if policy.get("default_state") in deleting:
        problems.append("the default state deletes indices immediately")
    for s in states:
        for t in (s.get("transitions") or []) if isinstance(s, dict) else []:
            if not isinstance(t, dict) or t.get("state_name") not in deleting:
                continue
            cond = t.get("conditions") or {}
            if "min_index_age" not in cond or len(cond) != 1:
                problems.append(f"transition {s.get('name')} -> {t.get('state_name')} deletes on {cond or 'nothing'}, "
                                "not on index age alone")
            else:
                ages.append(cond["min_index_age"])
    return ages, problems


def _verify_ism(client: Client, ev: Evidence, settings: ShipperSettings) -> None:
    prefix = settings.index_prefix
    name = policy_name(prefix)
    ev.policy = f"ISM {name}"
    resp = client.request("GET", f"/_plugins/_ism/policies/{urllib.parse.quote(name)}")
    if resp.status == 404:
        ev.problems.append(f"ISM policy {name} does not exist")
        return
    if resp.status != 200:
        raise ClusterError(f"GET _plugins/_ism/policies/{name}: HTTP {resp.status}: {resp.text()}")
    policy = (resp.json() or {}).get("policy") or {}
    limit, notes, problems = check_ism_policy(policy, settings.retention_days)
    ev.notes.extend(notes)
    ev.problems.extend(f"ISM policy {name}: {p}" for p in problems)
    if limit is None:
        return
    ev.limits["ISM"] = limit
    ev.mechanisms.append(f"ISM policy {name}")
    sample = f"{prefix}-2000.01.01"
    templates = policy.get("ism_template") or []
    if isinstance(templates, dict):
        templates = [templates]
    patterns = [pat for t in templates if isinstance(t, dict) for pat in t.get("index_patterns") or []]
    covered = any(isinstance(pat, str) and fnmatch.fnmatchcase(sample, pat) for pat in patterns)
    if not covered:
        ev.problems.append(f"ISM policy {name} has no ism_template for {prefix}-2*: new indices would not be managed")
    audit = [p for p in ev.partitions if p.kind == "audit"]
    if audit:
        res = client.json_ok("GET", f"/_plugins/_ism/explain/{urllib.parse.quote(prefix)}-2*", ok=(200, 404)) or {}
        unmanaged = []
        for p in audit:
            entry = res.get(p.name) or {}
            pid = entry.get("index.plugins.index_state_management.policy_id") or entry.get("policy_id")
            if pid != name:
                unmanaged.append(p.name)
        if unmanaged:
            shown = ", ".join(unmanaged[:5]) + (f" and {len(unmanaged) - 5} more" if len(unmanaged) > 5 else "")
            ev.problems.append(f"{len(unmanaged)} audit index(es) not managed by {name}: {shown}")


def verify_cluster(client: Client, settings: ShipperSettings, info: ClusterInfo, *, now: dt.datetime) -> Evidence:
    prefix = settings.index_prefix
    ev = Evidence(target=f"{_redact(client.url)} ({info.describe()}); prefix {prefix}",
                  configured_days=settings.retention_days)
    ev.partitions = list_indices(client, prefix)
    if info.mode == "ilm":
        _verify_ilm(client, ev, settings, info)
    elif info.mode == "ism":
        _verify_ism(client, ev, settings)
    marker = read_marker(client, prefix)
    if marker is not None:
        try:
            marker_days = int(marker["retention_days"])
        except (KeyError, TypeError, ValueError):
            ev.problems.append(f"{meta_index(prefix)}/_doc/retention has no readable retention_days")
        else:
            ev.limits["enforcer"] = float(marker_days)
            ev.policy = ev.policy or f"sidecar enforcer, limit recorded in {meta_index(prefix)}/_doc/retention"
            ev.mechanisms.append(f"sidecar enforcer (limit recorded in {meta_index(prefix)})")
            if marker.get("last_enforced_at"):
                ev.notes.append(f"enforcer last ran at {marker['last_enforced_at']}")
            else:
                ev.notes.append("enforcer limit recorded by `retention apply`; no enforcer pass recorded yet")
    elif info.mode == "enforcer":
        ev.problems.append(
            f"no enforcer limit recorded ({meta_index(prefix)}/_doc/retention missing): "
            "run `sidecar retention apply`"
        )
    _check_limits(ev, settings, now)
    if ev.limit_in_force is not None:  # held copies outlive the daily indices; released ones must not
        oldest = format_utc(now - dt.timedelta(days=math.floor(ev.limit_in_force) + 2))
        try:
            notes, problems = check_hold_index(settings, oldest)
        except Exception as exc:  # the ledger or hold index unreadable: say so, do not pass silently
            notes, problems = [], [f"cannot check legal holds: {exc}"]
        ev.notes += notes
        ev.problems += problems
    return ev


# ---------------------------------------------------------------------- embedded store


def _without_held(conn: sqlite3.Connection, parts: list[Partition], settings: ShipperSettings,
                  ev: Evidence) -> list[Partition]:
    """Record days that hold only records under legal hold are kept on purpose: not past the limit."""
    holds = holds_in_force(settings, store_events(conn))
    if not holds:
        return parts
    clause, args = store_clause(holds)
    held = dict(conn.execute(f"SELECT day, count(*) FROM records WHERE {clause} GROUP BY day", args).fetchall())
    free = dict(conn.execute(f"SELECT day, count(*) FROM records WHERE NOT {clause} GROUP BY day", args).fetchall())
    out = []
    for p in parts:
        day = p.name.split("/", 1)[1]
        if p.kind == "audit" and held.get(day) and not free.get(day):
            ev.notes.append(f"{p.name}: {held[day]} records kept by legal hold")
            continue
        out.append(p)
    ev.notes.append(f"{len(holds)} legal holds in force")
    return out



def verify_store(path: Path, settings: ShipperSettings, *, now: dt.datetime) -> Evidence:
    ev = Evidence(target=f"embedded store {path}", configured_days=settings.retention_days)
    if not path.exists():
        ev.problems.append("the embedded store does not exist (nothing shipped yet? run `sidecar retention apply`)")
        return ev
    conn = _connect(path)
    try:
        conn.execute("PRAGMA query_only=ON")
        ev.partitions = _without_held(conn, list_store_partitions(conn), settings, ev)
        limit = read_store_limit(conn)
        last = None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'retention_last_enforced_at'").fetchone()
            last = row[0] if row else None
        except sqlite3.Error:
            last = None
    finally:
        conn.close()
    ev.policy = "sidecar enforcer, limit recorded in meta.retention_days"
    if limit is None:
        ev.problems.append("no enforcer limit recorded (meta.retention_days missing): run `sidecar retention apply`")
    else:
        ev.limits["enforcer"] = float(limit)
        ev.mechanisms.append("sidecar enforcer (limit recorded in meta.retention_days)")
        ev.notes.append(f"enforcer last ran at {last}" if last else "no enforcer pass recorded yet")
    _check_limits(ev, settings, now)
    return ev
