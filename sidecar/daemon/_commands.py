"""The handlers of the `sidecar` commands other than `run`: each takes the settings and the parsed
arguments and returns the exit code (0 ok, 1 a failure found or a server unreachable, 2 a usage error)."""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import sys

from sidecar.clock import format_utc
from sidecar.config import ShipperSettings
from sidecar.daemon._erase import denied_view
from sidecar.daemon._sinks import read_documents
from sidecar.errors import FAILURE, USAGE
from sidecar.terminal import fail, terminal_safe


def cmd_query(settings: ShipperSettings, args: argparse.Namespace) -> int:
    from sidecar.ship import QueryFilter, SqliteStore

    if settings.elasticsearch_url:
        print("sidecar query searches the embedded store; with Elasticsearch use Kibana or the _search API",
              file=sys.stderr)
        return USAGE
    path = settings.embedded_store_path
    if not path.exists():
        print(f"no embedded store at {path} yet: run `sidecar run --once` first", file=sys.stderr)
        return FAILURE
    store = SqliteStore(path)
    f = QueryFilter(provider=args.provider, model=args.model, status=args.status, errors_only=args.errors,
                    since=args.since, until=args.until, user=args.user, service=args.service,
                    limit=None if args.summary else args.limit)
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


def cmd_advise(settings: ShipperSettings, args: argparse.Namespace) -> int:
    from sidecar.daemon.advise import advise as judge
    from sidecar.daemon.advise import render

    since = args.since or format_utc(dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(hours=24))
    report = judge(read_documents(settings, since, args.until), max_timeout=args.max_timeout)
    if args.json:
        print(json.dumps({"records": report.records, "findings": [f.to_json() for f in report.findings],
                          "token_spend": [{"caller": c, "tokens": t} for c, t in report.spend]}))
    else:
        print(render(report))
    return FAILURE if report.has_errors else 0


def cmd_retention_apply(settings: ShipperSettings, args: argparse.Namespace) -> int:
    from sidecar.retention import retention_apply

    return retention_apply(settings, dry_run=args.dry_run, out=sys.stdout)


def cmd_retention_verify(settings: ShipperSettings, args: argparse.Namespace) -> int:
    from sidecar.retention import retention_verify

    return retention_verify(settings, out=sys.stdout)


def cmd_dashboards_install(settings: ShipperSettings, args: argparse.Namespace) -> int:
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


def cmd_dashboards_path(args: argparse.Namespace) -> int:
    """Needs no settings: it works before anything is configured."""
    from sidecar.dashboards.install import find_dashboards

    folder = find_dashboards(None)
    if folder is None:
        return fail("no dashboards folder inside the package: reinstall llm-audit-sidecar", FAILURE)
    print(folder)
    return 0


