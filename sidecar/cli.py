"""The ``sidecar`` command. Exit codes: 0 ok, 1 failure found, 2 usage or configuration error."""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import os
import pathlib
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sidecar import __version__
from sidecar._cli_support import (
    USAGE,
    Parser,
    bounded_int,
    check_paths,
    check_urls,
    explain,
    fail,
    finite_float,
    http_url,
    index_prefix,
)
from sidecar.config import ConfigError, Settings, describe_settings, load_settings
from sidecar.daemon import HEALTH_PATHS as HEALTH_PATHS  # what the deploy probes use
from sidecar.terminal import terminal_safe

log = logging.getLogger("sidecar")


def _since(value: str) -> str:
    """``15m``, ``2h``, ``7d`` or an ISO 8601 time -> RFC 3339 UTC string; at most 100 years back."""
    m = re.fullmatch(r"(\d{1,30})([smhd])", value.strip())
    try:
        if m:
            seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
            if seconds > 36_500 * 86400:
                raise argparse.ArgumentTypeError(f"{value!r} is more than 100 years back")
            when = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(seconds=seconds)
        else:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            when = when.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{value!r}: use 15m, 2h, 7d or an ISO time") from None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="sidecar", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Ship, search and check the audit records of model API calls. Exit codes: 0 ok, "
        "1 a failure found or a server unreachable, 2 a usage or configuration error.",
        epilog="configuration (environment variables):\n" + describe_settings())
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="debug logging, and a traceback for unexpected errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="ship spooled records to Elasticsearch or the embedded store")
    run.add_argument("--once", action="store_true", help="drain the spool and exit (0 when all is delivered)")
    ret = sub.add_parser("retention", help="install and prove the retention policy (at least 90 days)")
    ret_sub = ret.add_subparsers(dest="retention_command", required=True, metavar="{apply,verify}")
    apply = ret_sub.add_parser("apply", help="install what the cluster supports (ILM, ISM) or run the enforcer")
    apply.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    ret_sub.add_parser("verify", help="exit 0 only when the policy in force keeps records the configured days")
    audit = sub.add_parser("audit", help="tamper evidence").add_subparsers(dest="audit_command", required=True,
                                                                           metavar="{verify}")
    av = audit.add_parser("verify", help="walk the hash chains and signed digests; exit 1 on the first break")
    av.add_argument("--since", type=_since, help="report problems from this time on (15m, 2h, 7d or ISO)")
    av.add_argument("--until", type=_since)
    av.add_argument("--json", action="store_true", help="findings as JSON lines")
    av.add_argument("--anchor", type=pathlib.Path, metavar="FILE",
                    help="heads exported earlier (`sidecar audit anchor`, audit-head.json, `audit head:` log lines): "
                         "each must still be in the store, so a cut tail is caught")
    av.add_argument("--keyring", type=pathlib.Path, metavar="FILE",
                    help="older HMAC secrets, one per line, for records and digests made before a key rotation")
    audit.add_parser("anchor", help="print the newest digest of every sidecar chain, to keep elsewhere")
    dash = sub.add_parser("dashboards", help="import the Kibana and Grafana dashboards").add_subparsers(
        dest="dashboards_command", required=True, metavar="{install,path}")
    di = dash.add_parser("install", help="import into the servers given")
    di.add_argument("--kibana", metavar="URL", type=http_url)
    di.add_argument("--kibana-space")
    di.add_argument("--kibana-api-key", help="or set KIBANA_API_KEY")
    di.add_argument("--grafana", metavar="URL", type=http_url)
    di.add_argument("--grafana-token", help="service account token, or set GRAFANA_TOKEN")
    di.add_argument("--grafana-folder", metavar="UID")
    di.add_argument("--user", help="basic auth user for both")
    di.add_argument("--password", help="or set DASHBOARDS_PASSWORD")
    di.add_argument("--dir", type=pathlib.Path, help="the dashboards folder (default: the one inside the package)")
    di.add_argument("--index-prefix", type=index_prefix,
                    help="data views for these indices (default: SIDECAR_INDEX_PREFIX)")
    di.add_argument("--dry-run", action="store_true", help="say what would be imported, send nothing")
    dash.add_parser("path", help="print the folder holding the packaged dashboards (deploy examples beside it)")
    adv = sub.add_parser("advise", help="check the app's API hygiene from its records; exit 1 on errors")
    adv.add_argument("--since", type=_since, default=None, help="15m, 2h, 7d or an ISO time (default: 24h)")
    adv.add_argument("--until", type=_since)
    adv.add_argument("--json", action="store_true", help="the report as one JSON document")
    adv.add_argument("--max-timeout", type=finite_float(0.001, 86_400.0), default=120.0,
                     help="flag client timeouts above this (s)")
    q = sub.add_parser("query", help="search the embedded store")
    q.add_argument("--provider")
    q.add_argument("--model")
    q.add_argument("--status", type=bounded_int(100, 599), help="HTTP status code")
    q.add_argument("--errors", action="store_true", help="only failed calls")
    q.add_argument("--since", type=_since, help="15m, 2h, 7d or an ISO time")
    q.add_argument("--until", type=_since)
    q.add_argument("--user")
    q.add_argument("--service")
    q.add_argument("--limit", type=bounded_int(1, 10_000_000), default=100, help="most records shown (default 100)")
    q.add_argument("--json", action="store_true", help="one JSON document per line")
    q.add_argument("--summary", action="store_true", help="counts by provider and status code")
    # erase, hold add|remove|list (docs/erasure.md): their parsers live with their commands
    from sidecar.daemon import add_erasure_parsers

    add_erasure_parsers(sub, _since)
    return p


def _ilm_policy(settings: Settings) -> str | None:
    """The ILM policy to name in the audit template, when the cluster has ILM (see `retention apply`)."""
    from sidecar.retention import Client, detect, policy_name

    client = Client.from_settings(settings)
    try:
        return policy_name(settings.index_prefix) if detect(client).mode == "ilm" else None
    except Exception as exc:  # unreachable now: the enforcer still applies the limit
        log.warning("could not detect ILM support (%s); the audit template names no ILM policy", exc)
        return None
    finally:
        client.close()


def _make_sink(settings: Settings, once: bool, *, shipping: bool = False) -> Any:
    """The configured sink. Only a shipping sink asks the cluster about ILM (its template names the
    policy) and exports its node pool on /metrics; readers (verify, advise) do not need to."""
    if settings.elasticsearch_url:
        from sidecar.es import EsClient
        from sidecar.ship.elasticsearch import ElasticsearchSink

        client = EsClient.from_settings(settings)
        if shipping and not once:
            from sidecar.es import track_in_default_registry

            track_in_default_registry(client)
        return ElasticsearchSink(
            client, index_prefix=settings.index_prefix,
            retention_policy=_ilm_policy(settings) if shipping else None,
            max_retries=8 if once else None,  # --once gives up after ~4 minutes of an unreachable cluster
            number_of_replicas=settings.elasticsearch_replicas, number_of_shards=settings.elasticsearch_shards,
            timeout=settings.elasticsearch_timeout, deadletter_dir=settings.sidecar_state_dir / "deadletter")
    from sidecar.ship import SqliteStore

    return SqliteStore(settings.embedded_store_path)


def cmd_run(settings: Settings, once: bool) -> int:
    from sidecar.daemon import RetentionKeeper, serve_health, single_instance
    from sidecar.files import UnsafePathError, private_dir, resolve_group
    from sidecar.ship import Shipper
    from sidecar.ship.metrics import ShipperMetrics
    from sidecar.spool import SpoolReader

    try:
        group = resolve_group(settings.spool_group)
        private_dir(settings.spool_dir, group, shared=True)  # checked before anything is made inside it
        lock = single_instance(settings.sidecar_state_dir)
        if lock is None:
            print(f"sidecar: another sidecar is already shipping {settings.spool_dir} (lock held on "
                  f"{settings.sidecar_state_dir / 'sidecar.lock'}); refusing to start a second one", file=sys.stderr)
            return 2
        reader = SpoolReader(settings.spool_dir, settings.sidecar_state_dir, group=group)
        key = _integrity_key(settings, group)
        if not settings.elasticsearch_url:  # the store file: private, never through a symlink
            from sidecar.ship.sqlite import connect_private

            connect_private(settings.embedded_store_path).close()
    except (UnsafePathError, ValueError) as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    sink = _make_sink(settings, once, shipping=True)
    shipper = Shipper(reader, sink, batch_size=settings.batch_size, digest_key=key, digest_store=sink,
                      on_head=_head_exporter(settings))
    retention = RetentionKeeper(settings)
    stop = threading.Event()
    if once:
        return _run_once(settings, sink, shipper, reader, retention, stop)
    from prometheus_client import REGISTRY, disable_created_metrics

    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:  # before anything else starts: a busy port is a configuration error, reported alone
        server = serve_health(settings.listen, shipper, REGISTRY, stale_after=max(60.0, 10 * settings.poll_seconds),
                              max_connections=settings.http_max_connections)
    except (OSError, ValueError) as exc:
        print(f"sidecar: cannot listen on SIDECAR_LISTEN={settings.listen}: {exc}", file=sys.stderr)
        sink.close()
        return 2
    try:
        sink.open()
    except Exception as exc:  # the loop retries; the sink installs its schema when it can
        log.warning("sink not ready yet (%s); retrying while shipping", exc)
    retention.tick()  # retention in force from the first run (retried every minute until installed)
    shipper.metrics = ShipperMetrics(REGISTRY, sink=sink.name, max_models=settings.max_model_labels)
    from sidecar.daemon.anomaly import AnomalyDetector

    detector = AnomalyDetector(settings.sidecar_state_dir / "anomaly.json", REGISTRY,
                               max_models=settings.max_model_labels)
    shipper.observers.append(detector.observe_docs)

    def anomaly_tick() -> None:
        for doc in detector.tick():
            log.warning("anomaly: %s", doc.get("message"))
            sink.write_anomaly(doc)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("shipping %s -> %s; /metrics and /healthz on %s", settings.spool_dir, sink.name, settings.listen)
    from sidecar.daemon.advise import AdviceMetrics, AdviceObserver

    advice = AdviceObserver(metrics=AdviceMetrics(REGISTRY))  # advice from the shipped records, as they pass
    shipper.observers.append(advice.observe)
    advice.publish_every(60.0, stop)
    shipper.run(stop, settings.poll_seconds, every=[(30.0, anomaly_tick), (10.0, retention.tick)])
    detector.save()
    server.shutdown()
    server.server_close()
    sink.close()
    return 0


def _integrity_key(settings: Settings, group: int | None) -> Any:
    """The sidecar's integrity key; a key it cannot use stops start-up (exit 2), unlike in the app."""
    from sidecar.audit import IntegrityKey
    from sidecar.redact import RedactionError, derive, load_or_create_key

    try:
        return IntegrityKey(derive(load_or_create_key(settings.hmac_key, settings.key_file, group), "integrity"))
    except RedactionError as exc:
        raise ValueError(str(exc)) from None


def _head_exporter(settings: Settings) -> Callable[[dict[str, Any]], None]:
    """Each new chain head goes to the log (`audit head: {...}`) and to state_dir/audit-head.json: ship
    either somewhere the store's writers cannot reach, for `sidecar audit verify --anchor`."""
    from sidecar.files import replace_private, write_all

    path = settings.sidecar_state_dir / "audit-head.json"

    def export(head: dict[str, Any]) -> None:
        line = json.dumps(head, sort_keys=True)
        log.info("audit head: %s", line)
        with replace_private(path) as fd:
            write_all(fd, (line + "\n").encode())

    return export


def _run_once(settings: Settings, sink: Any, shipper: Any, reader: Any, retention: Any,
              stop: threading.Event) -> int:
    try:
        sink.open()
        retention.tick()
        shipper.ship_available(stop)
    except Exception as exc:
        print(f"sidecar: shipping failed: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.close()
    s = shipper.stats
    print(f"shipped to {sink.name}: {s.stored - s.duplicates} stored, {s.duplicates} already present, "
          f"{s.dead_lettered} dead-lettered, {s.segments_done} segments done", file=sys.stderr)
    left = reader.pending_bytes()
    return 0 if not reader.segments() or left == 0 else 1


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from sidecar.ship import QueryFilter, SqliteStore

    if settings.elasticsearch_url:
        print("sidecar query searches the embedded store; with Elasticsearch use Kibana or the _search API",
              file=sys.stderr)
        return 2
    path = settings.embedded_store_path
    if not path.exists():
        print(f"no embedded store at {path} yet: run `sidecar run --once` first", file=sys.stderr)
        return 1
    store = SqliteStore(path)
    f = QueryFilter(provider=args.provider, model=args.model, status=args.status, errors_only=args.errors,
                    since=args.since, until=args.until, user=args.user, service=args.service,
                    limit=None if args.summary else args.limit)
    from sidecar.daemon import denied_view

    docs = denied_view(settings, store, store.query(f))  # erased subjects' pseudonyms show as <erased>
    if args.summary:
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for d in docs:
            outcome = str(d.get("http.response.status_code", d.get("error.type")))
            counts[(d.get("gen_ai.provider.name", "?"), outcome)] += 1
        for (provider, status), n in sorted(counts.items()):
            print(terminal_safe(f"{provider:<16} {status:<8} {n}"))
        return 0
    out = sys.stdout
    for d in docs:
        if args.json:
            line = json.dumps(d, ensure_ascii=False)
        else:
            usage = f"{d.get('gen_ai.usage.input_tokens', '-')}/{d.get('gen_ai.usage.output_tokens', '-')}"
            line = (f"{d.get('@timestamp', '')[:23]}  {d.get('gen_ai.provider.name', '?'):<12} "
                    f"{(d.get('gen_ai.request.model') or '-'):<18} "
                    f"{d.get('http.response.status_code', d.get('error.type', '-'))!s:<5} "
                    f"{d.get('event.duration', 0) / 1e6:8.1f}ms tokens={usage:<7} user={d.get('user.id', '-')} "
                    f"key={d.get('sidecar.credential.fingerprint', '-')}")
        out.write(terminal_safe(line) + "\n")
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from sidecar.daemon import cmd_audit_anchor, cmd_audit_verify

    def make_sink(s: Settings) -> Any:
        return _make_sink(s, once=True)

    if args.audit_command == "anchor":
        return cmd_audit_anchor(settings, make_sink)
    return cmd_audit_verify(settings, args, make_sink)


def fetch_docs(settings: Settings, since: str | None, until: str | None) -> Iterator[dict[str, Any]]:
    """Record documents in a time range, without their content (the store filters the range)."""
    from sidecar.daemon import open_store
    from sidecar.ship import QueryFilter

    try:
        store = open_store(settings, lambda s: _make_sink(s, once=True))
    except FileNotFoundError:
        return iter(())
    return store.query(QueryFilter(since=since, until=until, limit=None), content=False)


def cmd_advise(settings: Settings, args: argparse.Namespace) -> int:
    from sidecar.daemon.advise import advise, render

    since = args.since or _since("24h")
    report = advise(fetch_docs(settings, since, args.until), max_timeout=args.max_timeout)
    if args.json:
        print(json.dumps({"records": report.records, "findings": [f.to_json() for f in report.findings],
                          "token_spend": [{"caller": c, "tokens": t} for c, t in report.spend]}))
    else:
        print(render(report))
    return 1 if report.has_errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "dashboards" and args.dashboards_command == "path":
        from sidecar.dashboards.install import find_dashboards

        folder = find_dashboards(None)
        if folder is None:
            return fail("no dashboards folder inside the package: reinstall llm-audit-sidecar", 1)
        print(folder)
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        return fail(str(exc), USAGE)
    problem = check_paths(settings) or check_urls(settings)
    if problem:
        return fail(problem, USAGE)
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except ConfigError as exc:
        return fail(str(exc), USAGE)
    except Exception as exc:
        if args.debug:
            raise
        line, code = explain(exc, args.command, settings.listen)
        log.debug("%s", line, exc_info=True)
        return fail(line, code)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        return cmd_run(settings, args.once)
    if args.command == "query":
        return cmd_query(settings, args)
    if args.command == "audit":
        return cmd_audit(settings, args)
    if args.command == "advise":
        return cmd_advise(settings, args)
    if args.command in ("erase", "hold"):  # docs/erasure.md
        from sidecar.daemon import cmd_erase, cmd_hold

        return (cmd_erase if args.command == "erase" else cmd_hold)(settings, args, lambda s: _make_sink(s, once=True))
    if args.command == "dashboards":
        return cmd_dashboards(settings, args)
    if args.command == "retention":
        from sidecar.retention import retention_apply, retention_verify

        if args.retention_command == "apply":
            return retention_apply(settings, dry_run=args.dry_run, out=sys.stdout)
        return retention_verify(settings, out=sys.stdout)
    return USAGE


def cmd_dashboards(settings: Settings, args: argparse.Namespace) -> int:
    from sidecar.dashboards.install import find_dashboards, install

    if not args.kibana and not args.grafana:
        return fail("dashboards install: nothing to do: give --kibana URL and/or --grafana URL", USAGE)
    folder = find_dashboards(args.dir)
    if folder is None:
        where = f"--dir {args.dir}" if args.dir else "the package"
        return fail(f"no dashboards folder (kibana/ and grafana/) in {where}", USAGE)
    return install(folder, sys.stdout, kibana=args.kibana, kibana_space=args.kibana_space,
                   kibana_api_key=args.kibana_api_key or os.environ.get("KIBANA_API_KEY"),
                   grafana=args.grafana, grafana_token=args.grafana_token or os.environ.get("GRAFANA_TOKEN"),
                   grafana_folder=args.grafana_folder, user=args.user,
                   password=args.password or os.environ.get("DASHBOARDS_PASSWORD"), dry_run=args.dry_run,
                   index_prefix=args.index_prefix or settings.index_prefix)


if __name__ == "__main__":
    sys.exit(main())
