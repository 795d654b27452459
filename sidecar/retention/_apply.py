"""``sidecar retention apply`` and ``sidecar retention verify`` (the functions the CLI calls)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import urllib.parse
from typing import Any, TextIO

from sidecar.clock import format_utc
from sidecar.config import MIN_RETENTION_DAYS, ShipperSettings
from sidecar.retention._cluster import Client, ClusterError, ClusterInfo, detect
from sidecar.retention._enforcer import enforce_cluster, enforce_store, write_marker
from sidecar.retention._holds import keep_held_in_cluster
from sidecar.retention._policies import (
    RetentionConfigError,
    check_retention_days,
    data_stream_template,
    delete_after_days,
    ilm_policy,
    index_patterns,
    index_template,
    ism_policy,
    meta_index,
    policy_name,
)
from sidecar.retention._verify import verify_cluster, verify_store
from sidecar.ship.sqlite import SqliteStore
from sidecar.ship.templates import template_names

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _say(out: TextIO, line: str = "") -> None:
    print(line, file=out)


def _checked_days(settings: ShipperSettings, out: TextIO) -> int | None:
    try:
        days = check_retention_days(settings.retention_days, allow_short=settings.allow_short_retention)
    except RetentionConfigError as exc:
        _say(out, f"error: {exc}")
        return None
    if days < MIN_RETENTION_DAYS:
        _say(out, f"warning: retention {days} days is below {MIN_RETENTION_DAYS} "
                  "(SIDECAR_ALLOW_SHORT_RETENTION is set)")
    return days


def _cluster_error(exc: ClusterError, out: TextIO) -> int:
    _say(out, f"error: {exc}")
    return EXIT_CONFIG if exc.status == 401 else EXIT_FAILURE


# ---------------------------------------------------------------------- apply


def retention_apply(settings: ShipperSettings, *, dry_run: bool = False, out: TextIO,
                    now: dt.datetime | None = None) -> int:
    """Install what the target supports and run the enforcer once; print what was done (``now``: the
    clock, for tests).

    Exit codes: 0 done, 1 something failed (cluster unreachable, a request refused, ILM stopped),
    2 configuration error (retention below 90 days without the override, credentials refused).
    """
    days = _checked_days(settings, out)
    if days is None:
        return EXIT_CONFIG
    if settings.elasticsearch_url:
        client = Client.from_settings(settings)
        try:
            return _apply_cluster(client, settings, days, dry_run=dry_run, out=out, now=now)
        except ClusterError as exc:
            return _cluster_error(exc, out)
        finally:
            client.close()
    return _apply_store(settings, days, dry_run=dry_run, out=out, now=now)


def _apply_cluster(
    client: Client, settings: ShipperSettings, days: int, *, dry_run: bool, out: TextIO, now: dt.datetime | None
) -> int:
    prefix = settings.index_prefix
    name = policy_name(prefix)
    info = detect(client)
    _say(out, f"cluster: {info.describe()}")
    if dry_run:
        _say(out, "dry run: nothing is changed")
    rc = EXIT_OK
    mode = info.mode
    if mode == "ilm":
        rc = _apply_ilm(client, info, settings, days, dry_run=dry_run, out=out)
    elif mode == "ism":
        rc = _apply_ism(client, prefix, days, dry_run=dry_run, out=out)
    else:
        _explain_enforcer(info, prefix, days, out)
    if not dry_run:
        write_marker(client, prefix, {
            "retention_days": days,
            "managed_by": "llm-audit-sidecar",
            "mechanism": mode,
            "policy": name if mode != "enforcer" else None,
            "applied_at": format_utc(now, timespec="seconds"),
        })
        _say(out, f"recorded the enforcer limit ({days} days) in {meta_index(prefix)}/_doc/retention")
    report = enforce_cluster(client, prefix, days, now=now, dry_run=dry_run, record_marker=not dry_run,
                             keep_held=lambda: keep_held_in_cluster(settings))
    for line in report.lines():
        _say(out, line)
    if report.errors:
        rc = EXIT_FAILURE
    return rc


def _apply_ilm(client: Client, info: ClusterInfo, settings: ShipperSettings, days: int, *, dry_run: bool,
               out: TextIO) -> int:
    prefix = settings.index_prefix
    name = policy_name(prefix)
    tpl = template_names(prefix)["audit"]
    after = delete_after_days(days)
    patterns = index_patterns(prefix)
    verb = "would install" if dry_run else "installed"
    if not dry_run:
        client.json_ok("PUT", f"/_ilm/policy/{urllib.parse.quote(name)}", ilm_policy(days, prefix=prefix))
    _say(out, f"{verb} ILM policy {name}: delete phase min_age {after}d (index age from creation; "
              f"every record is kept at least {days} days)")
    if not dry_run:
        body = index_template(days, prefix=prefix, replicas=settings.elasticsearch_replicas,
                              shards=settings.elasticsearch_shards)
        client.json_ok("PUT", f"/_index_template/{urllib.parse.quote(tpl)}", body)
    _say(out, f"{verb} index template {tpl} with index.lifecycle.name={name} (new daily indices)")
    targets = ",".join(patterns.values())
    if not dry_run:
        client.json_ok(
            "PUT",
            f"/{targets}/_settings?allow_no_indices=true&expand_wildcards=open,closed",
            {"index.lifecycle.name": name},
        )
    _say(out, f"{'would attach' if dry_run else 'attached'} {name} to existing indices {targets}")
    _say(out, "note: new dead-letter, anomaly and digest indices are not covered by the ILM policy; "
              "the sidecar's enforcer deletes them at the same limit")
    if info.ilm_operation_mode != "RUNNING":
        _say(out, f"error: ILM is {info.ilm_operation_mode}: the policy is installed but not in force "
                  "(start it with POST _ilm/start)")
        return EXIT_FAILURE
    return EXIT_OK


def _apply_ism(client: Client, prefix: str, days: int, *, dry_run: bool, out: TextIO) -> int:
    name = policy_name(prefix)
    path = f"/_plugins/_ism/policies/{urllib.parse.quote(name)}"
    after = delete_after_days(days)
    targets = ",".join(index_patterns(prefix).values())
    if dry_run:
        _say(out, f"would install ISM policy {name}: hot -> delete at min_index_age {after}d, "
                  f"ism_template {targets}; would attach it to existing indices")
        return EXIT_OK
    existing = client.request("GET", path)
    body = ism_policy(days, prefix=prefix)
    if existing.status == 200:
        cur: dict[str, Any] = existing.json() or {}
        client.json_ok(
            "PUT", f"{path}?if_seq_no={cur.get('_seq_no')}&if_primary_term={cur.get('_primary_term')}", body
        )
    else:
        client.json_ok("PUT", path, body)
    _say(out, f"installed ISM policy {name}: hot -> delete at min_index_age {after}d "
              f"(every record is kept at least {days} days); ism_template {targets}")
    added = client.json_ok("POST", f"/_plugins/_ism/add/{targets}", {"policy_id": name}, ok=(200, 404)) or {}
    failed = [f.get("index_name") for f in added.get("failed_indices") or [] if isinstance(f, dict)]
    _say(out, f"attached {name} to {added.get('updated_indices', 0)} existing index(es)")
    if failed:
        # Already managed (by this policy's older version or another policy): switch them to this one.
        names = ",".join(str(n) for n in failed if n)
        changed = client.json_ok("POST", f"/_plugins/_ism/change_policy/{names}", {"policy_id": name}) or {}
        _say(out, f"switched {changed.get('updated_indices', 0)} already managed index(es) to {name}")
        if changed.get("failures"):
            _say(out, f"error: ISM change_policy failed: {json.dumps(changed.get('failed_indices'))[:500]}")
            return EXIT_FAILURE
    return EXIT_OK


def _explain_enforcer(info: ClusterInfo, prefix: str, days: int, out: TextIO) -> None:
    if info.distribution == "opensearch":
        _say(out, "the ISM plugin is not available on this cluster")
    elif info.data_stream_lifecycle:
        _say(out, "no ILM here; the data stream lifecycle is available but applies only to data streams, and "
                  "this project writes daily indices (exact _id dedupe on retries), so it does not manage them")
        _say(out, f"for a data stream of your own, this index template keeps {days} days "
                  f"(PUT _index_template/{prefix}-stream):")
        _say(out, json.dumps(data_stream_template(days, prefix=prefix)["template"]["lifecycle"]))
        _say(out, "  (full body: retention/data-stream-lifecycle.json, or "
                  "python -m sidecar.retention.generate --days N --prefix P)")
    else:
        _say(out, "no ILM, no data stream lifecycle on this cluster")
    _say(out, f"using the sidecar's enforcer: daily indices of {prefix} are deleted whole once past {days} days "
              "(+1 day for clock skew); it runs now and `sidecar run` repeats it every hour")


def _apply_store(settings: ShipperSettings, days: int, *, dry_run: bool, out: TextIO, now: dt.datetime | None) -> int:
    path = settings.embedded_store_path
    _say(out, f"embedded store: {path}")
    if dry_run:
        _say(out, "dry run: nothing is changed")
        if not path.exists():
            _say(out, f"the store does not exist yet; would create it and record retention_days={days}")
    else:
        try:
            store = SqliteStore(path)
            store.open()
            store.close()
        except (sqlite3.Error, OSError) as exc:
            _say(out, f"error: cannot open the embedded store: {exc}")
            return EXIT_FAILURE
        _say(out, f"recorded the enforcer limit ({days} days) in meta.retention_days; "
                  "`sidecar run` repeats the enforcer pass every hour")
    try:
        report = enforce_store(path, days, now=now, dry_run=dry_run, settings=settings)
    except sqlite3.Error as exc:
        _say(out, f"error: enforcer failed on the embedded store: {exc}")
        return EXIT_FAILURE
    for line in report.lines():
        _say(out, line)
    return EXIT_FAILURE if report.errors else EXIT_OK


# ---------------------------------------------------------------------- verify


def retention_verify(settings: ShipperSettings, *, out: TextIO, now: dt.datetime | None = None) -> int:
    """Print the evidence; 0 when the retention in force keeps every record N days and deletes after,
    1 with the reasons otherwise, 2 on a configuration error (``now``: the clock, for tests)."""
    if _checked_days(settings, out) is None:
        return EXIT_CONFIG
    now = now or dt.datetime.now(dt.timezone.utc)
    if settings.elasticsearch_url:
        client = Client.from_settings(settings)
        try:
            info = detect(client)
            ev = verify_cluster(client, settings, info, now=now)
        except ClusterError as exc:
            return _cluster_error(exc, out)
        finally:
            client.close()
    else:
        try:
            ev = verify_store(settings.embedded_store_path, settings, now=now)
        except sqlite3.Error as exc:
            _say(out, f"error: cannot read the embedded store: {exc}")
            return EXIT_FAILURE
    for line in ev.lines():
        _say(out, line)
    return EXIT_OK if ev.ok else EXIT_FAILURE
