"""`sidecar run`: the service wiring. The spool reader feeds the shipper, which writes to the sink; around
them the single-instance lock, the retention keeper, the /metrics and /healthz listener, the anomaly
detector, the advice metrics and the chain-head export. ``--once`` drains the spool and exits."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from sidecar.config import ShipperSettings
from sidecar.daemon._http import serve_health
from sidecar.daemon._lock import single_instance
from sidecar.daemon._retention import RetentionKeeper
from sidecar.daemon._sinks import make_sink
from sidecar.errors import FAILURE, USAGE

log = logging.getLogger("sidecar")


def run_service(settings: ShipperSettings, args: argparse.Namespace) -> int:
    """Exit codes: 0 stopped (or, with --once, everything delivered), 1 shipping failed or records are
    left, 2 the spool, the lock, the key or the listen address cannot be used."""
    from sidecar.files import UnsafePathError, private_dir, resolve_group
    from sidecar.ship import Shipper
    from sidecar.spool import SpoolReader

    once = bool(args.once)
    try:
        group = resolve_group(settings.spool_group)
        private_dir(settings.spool_dir, group, shared=True)  # checked before anything is made inside it
        lock = single_instance(settings.sidecar_state_dir)
        if lock is None:
            print(f"sidecar: another sidecar is already shipping {settings.spool_dir} (lock held on "
                  f"{settings.sidecar_state_dir / 'sidecar.lock'}); refusing to start a second one", file=sys.stderr)
            return USAGE
        reader = SpoolReader(settings.spool_dir, settings.sidecar_state_dir, group=group)
        key = _integrity_key(settings, group)
        if not settings.elasticsearch_url:  # the store file: private, never through a symlink
            from sidecar.ship.sqlite import connect_private

            connect_private(settings.embedded_store_path).close()
    except (UnsafePathError, ValueError) as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return USAGE
    sink = make_sink(settings, once, shipping=True)
    shipper = Shipper(reader, sink, batch_size=settings.batch_size, digest_key=key, digest_store=sink,
                      on_head=_head_exporter(settings))
    retention = RetentionKeeper(settings)
    if once:
        return _run_once(sink, shipper, reader, retention)
    return _serve(settings, sink, shipper, retention)


def _serve(settings: ShipperSettings, sink: Any, shipper: Any, retention: RetentionKeeper) -> int:
    from prometheus_client import REGISTRY, disable_created_metrics

    from sidecar.ship.metrics import ShipperMetrics

    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:  # before anything else starts: a busy port is a configuration error, reported alone
        server = serve_health(settings.listen, shipper, REGISTRY, stale_after=max(60.0, 10 * settings.poll_seconds),
                              max_connections=settings.http_max_connections)
    except (OSError, ValueError) as exc:
        print(f"sidecar: cannot listen on SIDECAR_LISTEN={settings.listen}: {exc}", file=sys.stderr)
        sink.close()
        return USAGE
    try:
        sink.open()
    except Exception as exc:  # the loop retries; the sink installs its schema when it can
        log.warning("sink not ready yet (%s); retrying while shipping", exc)
    retention.tick()  # retention in force from the first run (retried every minute until installed)
    shipper.metrics = ShipperMetrics(REGISTRY, sink=sink.name, max_models=settings.max_model_labels)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("shipping %s -> %s; /metrics and /healthz on %s", settings.spool_dir, sink.name, settings.listen)
    anomaly_tick, save_anomalies = _anomaly_watch(settings, sink, shipper, REGISTRY)
    _advice_watch(shipper, REGISTRY, stop)
    shipper.run(stop, settings.poll_seconds, every=[(30.0, anomaly_tick), (10.0, retention.tick)])
    save_anomalies()
    server.shutdown()
    server.server_close()
    sink.close()
    return 0


def _anomaly_watch(settings: ShipperSettings, sink: Any, shipper: Any,
                   registry: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """(tick, save): the detector watches what is shipped; each tick logs and stores what it found."""
    from sidecar.daemon.anomaly import AnomalyDetector

    detector = AnomalyDetector(settings.sidecar_state_dir / "anomaly.json", registry,
                               max_models=settings.max_model_labels)
    shipper.observers.append(detector.observe_docs)

    def tick() -> None:
        for doc in detector.tick():
            log.warning("anomaly: %s", doc.get("message"))
            sink.write_anomaly(doc)

    return tick, detector.save


def _advice_watch(shipper: Any, registry: Any, stop: threading.Event) -> None:
    """Advice from the shipped records as they pass (no re-reading of the store), published every minute
    from a thread of its own so the shipping loop never waits for it."""
    from sidecar.daemon.advise import AdviceMetrics, AdviceObserver

    advice = AdviceObserver(metrics=AdviceMetrics(registry))
    shipper.observers.append(advice.observe)
    advice.publish_every(60.0, stop)


def _integrity_key(settings: ShipperSettings, group: int | None) -> Any:
    """The sidecar's integrity key; a key it cannot use stops start-up (exit 2), unlike in the app."""
    from sidecar.audit import IntegrityKey
    from sidecar.redact import RedactionError, derive, load_or_create_key

    try:
        return IntegrityKey(derive(load_or_create_key(settings.hmac_key_text(), settings.key_file, group),
                                   "integrity"))
    except RedactionError as exc:
        raise ValueError(str(exc)) from None


def _head_exporter(settings: ShipperSettings) -> Callable[[dict[str, Any]], None]:
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


def _run_once(sink: Any, shipper: Any, reader: Any, retention: RetentionKeeper) -> int:
    try:
        sink.open()
        retention.tick()
        shipper.ship_available(threading.Event())
    except Exception as exc:
        print(f"sidecar: shipping failed: {exc}", file=sys.stderr)
        return FAILURE
    finally:
        sink.close()
    s = shipper.stats
    print(f"shipped to {sink.name}: {s.stored - s.duplicates} stored, {s.duplicates} already present, "
          f"{s.dead_lettered} dead-lettered, {s.segments_done} segments done", file=sys.stderr)
    left = reader.pending_bytes()
    return 0 if not reader.segments() or left == 0 else FAILURE
