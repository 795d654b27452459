"""The ``sidecar`` command: the argument parser, the dispatch to each command's handler (in
:mod:`sidecar.daemon`) and the exit codes: 0 ok, 1 a failure found or a server unreachable, 2 a usage or
configuration error, one line on stderr and never a traceback (``--debug`` shows it)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import pathlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from sidecar import __version__
from sidecar import daemon as commands
from sidecar._cli_support import (
    Parser,
    bounded_int,
    check_paths,
    explain,
    finite_float,
    http_url,
    index_prefix,
)
from sidecar.clock import format_utc, parse_utc
from sidecar.config import AppSettings, ConfigError, ShipperSettings, describe_settings, load_settings
from sidecar.daemon import HEALTH_PATHS as HEALTH_PATHS  # what the deploy probes use
from sidecar.errors import USAGE
from sidecar.terminal import fail

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
            when = parse_utc(value)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{value!r}: use 15m, 2h, 7d or an ISO time") from None
    return format_utc(when)


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="sidecar", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Ship, search and check the audit records of model API calls. Exit codes: 0 ok, "
        "1 a failure found or a server unreachable, 2 a usage or configuration error.",
        epilog="configuration of the sidecar (environment variables):\n" + describe_settings(ShipperSettings)
        + "\n\nconfiguration of the instrumented app (environment variables or instrument() options):\n"
        + describe_settings(AppSettings))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="debug logging, and a traceback for unexpected errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="ship spooled records to Elasticsearch or the embedded store")
    run.add_argument("--once", action="store_true", help="drain the spool and exit (0 when all is delivered)")
    run.set_defaults(func=commands.run_service)
    _add_retention(sub)
    _add_audit(sub)
    _add_dashboards(sub)
    _add_advise(sub)
    _add_query(sub)
    # erase, hold add|remove|list (docs/erasure.md): their parsers live with their commands
    commands.add_erasure_parsers(sub, _since)
    sub.choices["erase"].set_defaults(func=commands.cmd_erase)
    sub.choices["hold"].set_defaults(func=commands.cmd_hold)
    return p


def _add_retention(sub: Any) -> None:
    ret = sub.add_parser("retention", help="install and prove the retention policy (at least 90 days)")
    ret_sub = ret.add_subparsers(dest="retention_command", required=True, metavar="{apply,verify}")
    apply = ret_sub.add_parser("apply", help="install what the cluster supports (ILM, ISM) or run the enforcer")
    apply.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    apply.set_defaults(func=commands.cmd_retention_apply)
    verify = ret_sub.add_parser("verify", help="exit 0 only when the policy in force keeps records the configured days")
    verify.set_defaults(func=commands.cmd_retention_verify)


def _add_audit(sub: Any) -> None:
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
    av.set_defaults(func=commands.cmd_audit_verify)
    anchor = audit.add_parser("anchor", help="print the newest digest of every sidecar chain, to keep elsewhere")
    anchor.set_defaults(func=commands.cmd_audit_anchor)


def _add_dashboards(sub: Any) -> None:
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
    di.set_defaults(func=commands.cmd_dashboards_install)
    path = dash.add_parser("path", help="print the folder holding the packaged dashboards (deploy examples beside it)")
    path.set_defaults(func=commands.cmd_dashboards_path)


def _add_advise(sub: Any) -> None:
    adv = sub.add_parser("advise", help="check the app's API hygiene from its records; exit 1 on errors")
    adv.add_argument("--since", type=_since, default=None, help="15m, 2h, 7d or an ISO time (default: 24h)")
    adv.add_argument("--until", type=_since)
    adv.add_argument("--json", action="store_true", help="the report as one JSON document")
    adv.add_argument("--max-timeout", type=finite_float(0.001, 86_400.0), default=120.0,
                     help="flag client timeouts above this (s)")
    adv.set_defaults(func=commands.cmd_advise)


def _add_query(sub: Any) -> None:
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
    q.set_defaults(func=commands.cmd_query)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.func is commands.cmd_dashboards_path:  # works before anything is configured
        return int(commands.cmd_dashboards_path(args))
    try:
        settings = load_settings(ShipperSettings)
    except ConfigError as exc:
        return fail(str(exc), exc.exit_code)
    problem = check_paths(settings)
    if problem:
        return fail(problem, USAGE)
    try:
        return int(args.func(settings, args))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:
        if args.debug:
            raise
        line, code = explain(exc, args.command, str(settings.listen))
        log.debug("%s", line, exc_info=True)
        return fail(line, code)


if __name__ == "__main__":
    sys.exit(main())
