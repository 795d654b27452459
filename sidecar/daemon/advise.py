"""``sidecar advise``: check an application's API hygiene against the practices its developers are told
to follow (keys in headers, HTTPS, backoff that honours Retry-After, timeouts, bodies under 10 MB,
keep-alive, streaming long generations, caching repeated prompts), from the audit records alone.

One computation, two feeds (the rules are running aggregates, see ``_advice_rules``):

* ``advise(docs)``: the CLI over stored records;
* :class:`AdviceObserver`: a shipper observer in ``sidecar run``, fed the delivered records (metadata only,
  as the shipper parsed them) and keeping per-window tallies of the last hour, bounded in memory; its
  findings go to ``sidecar_advice_findings`` on /metrics. No record is read back from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from sidecar.daemon._advice_rules import RULES, Advice, AdviceReport, Limits, Tally, findings_of, timestamp

__all__ = ["RULES", "Advice", "AdviceMetrics", "AdviceObserver", "AdviceReport", "Limits", "advise", "render"]

log = logging.getLogger("sidecar.advise")


def advise(docs: Iterable[dict[str, Any]], *, max_timeout: float = 120.0, long_call: float = 30.0,
           repeat_window: float = 3600.0, repeat_min: int = 3, reuse_min_calls: int = 5) -> AdviceReport:
    tally = Tally(Limits(max_timeout, long_call, repeat_window, repeat_min, reuse_min_calls))
    for d in docs:
        tally.add(d)
    return findings_of(tally)


def render(report: AdviceReport) -> str:
    lines = [f"checked {report.records} records: "
             + (f"{len(report.findings)} findings" if report.findings else "no findings")]
    for f in report.findings:
        lines.append(f"[{f.severity}] {f.service} / {f.provider}: {f.title} ({f.count}x; e.g. "
                     f"{', '.join(f.examples)})")
        lines.append(f"    fix: {f.fix}")
    if report.spend:
        lines.append("token spend by caller: " + ", ".join(f"{c} {t:,}" for c, t in report.spend))
    return "\n".join(lines)


class AdviceMetrics:
    """``sidecar_advice_findings{rule,severity,service,provider}``: the same findings on /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.gauge = Gauge("sidecar_advice_findings", "API-hygiene findings over the last hour (sidecar advise), "
                           "by rule and severity.", ("rule", "severity", "service", "provider"), registry=registry)
        self.errors = Counter("sidecar_advice_errors", "Records the advice observer could not count (a bug; "
                              "shipping goes on).", registry=registry)
        self._shown: set[tuple[str, str, str, str]] = set()

    def update(self, report: AdviceReport) -> None:
        now = {(f.rule, f.severity, f.service, f.provider): f.count for f in report.findings}
        for key in self._shown - now.keys():
            self.gauge.labels(*key).set(0)
        for key, count in now.items():
            self.gauge.labels(*key).set(count)
        self._shown |= now.keys()


class AdviceObserver:
    """Advice over the last ``span_seconds`` of shipped records, computed as they are shipped.

    ``observe(views)`` is the shipper observer: per record, a few dict lookups into the tally of its
    window (by the record's own @timestamp); it never raises (a failing record is counted in ``errors``
    and skipped). ``report()`` merges the live windows (their indexes are copied under a lock, the
    merging and the group rules run outside it); ``publish_every()`` puts that on /metrics from a thread
    of its own, so the shipping loop never waits for it. Memory: at most ``max_attempts`` retry-group
    entries (a few fields each) over all windows, beyond which records still count for the other rules
    (``dropped``); windows older than the span are dropped. Token spend is not kept (callers are unbounded)."""

    def __init__(self, limits: Limits | None = None, *, metrics: AdviceMetrics | None = None,
                 window_seconds: float = 300.0, span_seconds: float = 3600.0, max_attempts: int = 200_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or Limits()
        self.metrics = metrics
        self.window = window_seconds
        self.span = span_seconds
        self.max_attempts = max_attempts
        self.clock = clock
        self.windows: dict[float, Tally] = {}
        self.errors = self.late = self.dropped = 0
        self._lock = threading.Lock()

    def observe(self, views: list[dict[str, Any]]) -> None:
        with self._lock:
            self._observe(views, self.clock())

    def _observe(self, views: list[dict[str, Any]], now: float) -> None:
        self._expire(now)
        budget = self.max_attempts - sum(t.attempts for t in self.windows.values())
        for view in views:
            try:
                budget -= self._add(view, now, budget > 0)
            except Exception:  # a bug here must never stop or slow delivery: count it, go on
                self.errors += 1
                if self.metrics is not None:
                    self.metrics.errors.inc()
                if self.errors == 1 or self.errors % 1000 == 0:
                    log.exception("advice observer: a record could not be counted (%d so far)", self.errors)

    def _add(self, view: dict[str, Any], now: float, keep_attempt: bool) -> int:
        # Records stamped in the future (a skewed clock) count in the current window: the windows stay
        # between now - span and now.
        stamped = timestamp(view)
        ts = min(stamped or now, now)
        start = ts - ts % self.window
        if start + self.window <= now - self.span:
            self.late += 1
            return 0
        tally = self.windows.get(start)
        if tally is None:
            tally = self.windows[start] = Tally(self.limits, spend=False)
        before = tally.attempts
        tally.add(view, ts=stamped or None, keep_attempt=keep_attempt)
        if not keep_attempt and view.get("sidecar.retry.group"):
            self.dropped += 1
        return tally.attempts - before

    def _expire(self, now: float) -> None:
        for start in [s for s in self.windows if s + self.window <= now - self.span]:
            del self.windows[start]

    def report(self) -> AdviceReport:
        """The findings over the windows still in the span (the tallies are not changed)."""
        with self._lock:
            self._expire(self.clock())
            parts = [self.windows[start].snapshot() for start in sorted(self.windows)]
        merged = Tally(self.limits, spend=False)
        for part in parts:
            merged.merge(part)
        return findings_of(merged)

    def publish(self) -> None:
        if self.metrics is not None:
            self.metrics.update(self.report())

    def publish_every(self, seconds: float, stop: threading.Event) -> threading.Thread:
        """Publish every ``seconds`` until ``stop``, from a daemon thread (returned, started)."""
        def loop() -> None:
            while not stop.wait(seconds):
                try:
                    self.publish()
                except Exception:  # the next round tries again; shipping is not affected
                    log.exception("advice: could not publish the findings")

        thread = threading.Thread(target=loop, name="sidecar-advice", daemon=True)
        thread.start()
        return thread
