"""Error-code anomaly detection over the records the sidecar ships.

Per (provider, model, status code) the detector counts calls in fixed windows of the records' own
``@timestamp`` (default 5 minutes). When a window closes it compares each code's count with a
learned baseline in two ways, and keeps the smaller (more conservative) score:

* ratio: the code's share of the provider/model's calls, binomial z-score against the expected
  share (p0), with the extra spread seen in the past (over-dispersion) added to the variance;
* rate: the code's count, Poisson z-score against the expected count.

A code must be both a larger share and more calls than usual: a traffic surge with the usual
error share is not an error anomaly, nor is a traffic drop with the usual error count.

Scores are computed on the closing window ("spike") and on the last hour of windows summed
("shift": a sustained change, such as 400s doubling after a deploy, that a single window is too
small to prove). Baselines are seasonal: 24 hour-of-day bins (UTC), linearly interpolated, learned
by slow exponential averaging, with a fast global average used until a bin has a day of data. A
daily pattern, such as a nightly batch job that hits rate limits, becomes part of the baseline.
Updates clip the observation at 3 standard deviations, so an anomaly moves the baseline slowly and
a lasting change becomes the new normal over days.

A third detector watches API keys: 401/403 answers concentrated on one
``sidecar.credential.fingerprint`` (a revoked or wrong key) raise a "credential" anomaly naming it.

Cost per record: parsing the record's metadata prefix (or nothing, with ``observe_docs`` given the
views the shipper's metrics already parsed) and a dict increment; the statistics run once per
window per series. State (baselines and open windows) is a JSON file
replaced atomically.

The parts: the fields read of a record (``_anomaly_fields``), the statistics (``_anomaly_stats``),
and here the detector: counting, closing windows, scoring, anomaly documents, state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pathlib
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from sidecar.clock import format_utc
from sidecar.daemon._anomaly_fields import Fields, extract, view_fields
from sidecar.daemon._anomaly_stats import CodeStats, KeyState, Learning, Moments, SeriesState, Window, learn, z_score
from sidecar.telemetry import ModelLabels

__all__ = ["AnomalyDetector", "Tuning", "extract"]

log = logging.getLogger("sidecar.anomaly")

STATE_VERSION = 1
AUTH_CODES = ("401", "403")
# Codes tracked from the first window of a provider/model, so the first 403 has a baseline of 0.
TRACKED_CODES = ("400", "401", "403", "429", "500", "503", "none")
_WHAT = {"spike": "jumped", "shift": "rose and stayed up", "credential": "appeared for one API key"}


def _is_alerting_code(code: str) -> bool:
    return code == "none" or not code.startswith(("1", "2", "3"))


def _z_both(w: Window) -> float:
    """A code must be both a larger share and more calls than usual: the smaller of the two scores."""
    return min(z_score(w.with_code - w.ratio_expected, w.ratio_variance),
               z_score(w.with_code - w.rate_expected, w.rate_variance))


@dataclass(frozen=True)
class Tuning:
    """The detector's knobs; the defaults are what `sidecar run` uses."""

    window_seconds: float = 300  # counting window, of the records' own @timestamp
    grace_seconds: float = 120  # a window closes this long after its end (late records)
    threshold: float = 5.0  # z-score of an anomaly
    min_count: int = 5  # calls with the code in the window, at least
    min_ratio_factor: float = 1.5  # times the expected share, at least
    ratio_floor: float = 0.001  # the smallest expected share (a code never seen is not "infinitely" rare)
    warmup_windows: int = 12  # windows learned before anything is reported
    hour_windows: int | None = None  # windows summed for "shift" (default: an hour's worth)
    global_alpha: float = 0.05  # learning rate of the global baseline
    bin_alpha: float = 0.03  # of the hour-of-day bins
    bin_ready: int = 12  # windows a bin learns before it is used
    clip_sigmas: float = 3.0
    min_auth_failures: int = 5  # 401/403 answers to one key in a window, at least
    max_keys: int = 10_000  # API keys remembered (the one seen longest ago is forgotten)


class AnomalyDetector:
    """Learns per (provider, model, status code) baselines from shipped records and flags breaks.

    Wiring (the sidecar's shipper): ``observe(raws)`` for every delivered batch (a Shipper
    observer); ``tick()`` periodically, every 30-60 s, which closes finished windows and returns
    anomaly documents to store (index ``{prefix}-anomalies-YYYY.MM.DD``, ``_id`` = ``event.id``);
    ``save()`` at shutdown (``tick`` saves by itself whenever it closed a window).
    """

    def __init__(self, state_path: pathlib.Path, registry: CollectorRegistry, tuning: Tuning | None = None, *,
                 max_models: int = 50, autosave: bool = True) -> None:
        self.state_path = pathlib.Path(state_path)
        self.tuning = t = tuning or Tuning()
        self.window = float(t.window_seconds)
        self.hour_windows = t.hour_windows or max(1, round(3600 / self.window))
        self.learning = Learning(t.global_alpha, t.bin_alpha, t.clip_sigmas)
        self.autosave = autosave
        self.model_label = ModelLabels(max_models)
        self.score = Gauge("sidecar_anomaly_score", "Error-code anomaly score per provider, model and status code "
                           "(standard deviations above the seasonal baseline; >= the threshold is an anomaly).",
                           ("provider", "model", "status_code"), registry=registry)
        self.anomalies = Counter("sidecar_anomalies", "Anomaly records written, by kind (spike, shift, credential).",
                                 ("kind",), registry=registry)
        for kind in _WHAT:
            self.anomalies.labels(kind)
        # open windows: (window start, provider, model, code) -> calls; (window start, provider, key) -> counts
        self._counts: defaultdict[tuple[float, str, str, str], int] = defaultdict(int)
        self._keys: dict[tuple[float, str, str], list[Any]] = {}
        self._series: dict[tuple[str, str], SeriesState] = {}
        self._key_state: dict[tuple[str, str], KeyState] = {}
        self.closed_until = 0.0
        self.late_records = 0
        self.records_seen = 0
        self._load()

    # ---------------------------------------------------------------------------------- records

    def observe(self, raws: list[bytes]) -> None:
        """Count a delivered batch (raw record documents). Records of windows already closed are
        counted in ``late_records`` and left out."""
        for f in map(extract, raws):
            if f is not None:
                self._count(f)

    def observe_docs(self, docs: list[dict[str, Any]]) -> None:
        """Same as :meth:`observe` for documents already parsed (e.g. by ``record_view``), which
        saves parsing each record twice when the caller has them."""
        for f in map(view_fields, docs):
            if f is not None:
                self._count(f)

    def _count(self, f: Fields) -> None:
        self.records_seen += 1
        start = f.ts - f.ts % self.window
        if start < self.closed_until:
            self.late_records += 1
            return
        model = self.model_label(f.model)
        self._counts[(start, f.provider, model, f.status)] += 1
        if f.fingerprint:
            entry = self._keys.setdefault((start, f.provider, f.fingerprint), [0, 0, model, f.status])
            entry[0] += 1
            if f.status in AUTH_CODES:
                entry[1] += 1
                entry[2] = model
                entry[3] = f.status

    # ---------------------------------------------------------------------------------- windows

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close every window that ended more than ``grace_seconds`` before ``now`` and score it.

        Returns the anomaly documents (possibly none) in time order."""
        now = time.time() if now is None else now
        starts = sorted({k[0] for k in self._counts} | {k[0] for k in self._keys})
        docs: list[dict[str, Any]] = []
        closed_any = False
        for start in starts:
            if start + self.window + self.tuning.grace_seconds > now:
                break
            docs.extend(self._close(start))
            self.closed_until = start + self.window
            closed_any = True
        if closed_any and self.autosave:
            self.save()
        return docs

    def _close(self, start: float) -> list[dict[str, Any]]:
        by_series: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for key in [k for k in self._counts if k[0] == start]:
            by_series[(key[1], key[2])][key[3]] = self._counts.pop(key)
        docs: list[dict[str, Any]] = []
        for (provider, model), codes in sorted(by_series.items()):
            docs.extend(self._score_series(start, provider, model, codes))
        for series, state in self._series.items():  # idle series: nothing to report
            if series not in by_series:
                for code in state.codes:
                    if _is_alerting_code(code):
                        self.score.labels(series[0], series[1], code).set(0)
        for window_key in sorted(k for k in self._keys if k[0] == start):
            docs.extend(self._score_key(start, window_key[1], window_key[2], self._keys.pop(window_key)))
        return docs

    def _score_series(self, start: float, provider: str, model: str, codes: dict[str, int]) -> list[dict[str, Any]]:
        state = self._series.setdefault((provider, model), SeriesState())
        calls = sum(codes.values())
        for code in (*TRACKED_CODES, *codes):
            state.codes.setdefault(code, CodeStats())
        docs: list[dict[str, Any]] = []
        for code, stats in state.codes.items():
            k = codes.get(code, 0)
            if state.windows == 0:  # first window: start the baseline where the data is
                stats.glob = Moments.from_list([k / calls, 0.0, float(k), 0.0, 1])
            doc, window, p0 = self._score_code(start, provider, model, code, stats, k, calls,
                                               warm=state.windows >= self.tuning.warmup_windows)
            if doc is not None:
                docs.append(doc)
            learn(stats, start, window, p0, self.learning, first=state.windows == 0)
        state.windows += 1
        return docs

    def _score_code(self, start: float, provider: str, model: str, code: str, stats: CodeStats, k: int,
                    calls: int, *, warm: bool) -> tuple[dict[str, Any] | None, Window, float]:
        """Score one code's window ("spike") and its last hour ("shift"); (anomaly document or None, the
        window as it is remembered, the expected ratio)."""
        t = self.tuning
        exp = stats.expected(start + self.window / 2, t.bin_ready)
        p0 = max(exp.ratio, t.ratio_floor)
        lam = max(exp.rate, 0.5)
        window = Window(k, calls, calls * p0, calls * p0 * (1 - p0) + calls * calls * exp.ratio_extra,
                        lam, lam + exp.rate_extra)
        stats.recent.append(window)
        del stats.recent[:-self.hour_windows]
        hour = stats.hour()
        z5 = _z_both(window)
        z60 = _z_both(hour)
        spike = z5 >= t.threshold and k >= t.min_count and k >= t.min_ratio_factor * calls * p0
        shift = (len(stats.recent) >= self.hour_windows // 2 and z60 >= t.threshold
                 and hour.with_code >= 2 * t.min_count and hour.with_code >= t.min_ratio_factor * hour.ratio_expected)
        score = max(z5, z60, 0.0)
        if not _is_alerting_code(code):
            return None, window, p0
        self.score.labels(provider, model, code).set(round(min(score, 1000.0), 3) if warm else 0.0)
        if warm and (spike or shift) and not stats.active:
            stats.active = True
            seen = window if spike else hour
            expected = p0 if spike else hour.ratio_expected / max(hour.calls, 1)
            return (self._doc(start, "spike" if spike else "shift", provider, model, code, max(z5, z60),
                              seen.with_code / max(seen.calls, 1), expected, round(seen.with_code), round(seen.calls)),
                    window, p0)
        if stats.active and score < t.threshold / 2:
            stats.active = False
        return None, window, p0

    def _score_key(self, start: float, provider: str, fingerprint: str, entry: list[Any]) -> list[dict[str, Any]]:
        t = self.tuning
        calls, failures, model, code = int(entry[0]), int(entry[1]), str(entry[2]), str(entry[3])
        state = self._key_state.get((provider, fingerprint))
        if state is None:
            if len(self._key_state) >= t.max_keys:  # forget the key seen longest ago
                oldest = min(self._key_state, key=lambda k: self._key_state[k].last_seen)
                del self._key_state[oldest]
            state = self._key_state[(provider, fingerprint)] = KeyState()
        p0 = max(state.ratio, t.ratio_floor)
        var = calls * p0 * (1 - p0)
        z = z_score(failures - calls * p0, var)
        docs: list[dict[str, Any]] = []
        anomalous = failures >= t.min_auth_failures and z >= t.threshold and failures / calls >= 2 * p0
        if anomalous and not state.active:
            state.active = True
            doc = self._doc(start, "credential", provider, model, code, z, failures / calls, p0, failures, calls)
            doc["sidecar.credential.fingerprint"] = fingerprint
            doc["message"] = (f"{failures} of {calls} calls with API key {fingerprint} to {provider} were refused "
                              f"({code}) in {self.window / 60:g} minutes; usual share "
                              f"{state.ratio:.2%}: the key may be revoked, rotated or out of quota")
            docs.append(doc)
        elif state.active and not anomalous and failures < t.min_auth_failures:
            state.active = False
        # learn slowly and never let a burst of refusals become "normal" within hours
        r = failures / calls
        state.ratio += 0.02 * (min(r, p0 + 3 * math.sqrt(var) / calls) - state.ratio)
        state.windows += 1
        state.last_seen = start
        return docs

    def _doc(self, start: float, kind: str, provider: str, model: str, code: str, score: float, observed: float,
             expected: float, count: int, calls: int) -> dict[str, Any]:
        self.anomalies.labels(kind).inc()
        span = f"{self.window / 60:g} minutes" if kind != "shift" else "the last hour"
        doc: dict[str, Any] = {
            "@timestamp": format_utc(start, timespec="milliseconds"),
            "event.id": hashlib.sha256(f"{kind}|{provider}|{model}|{code}|{start}".encode()).hexdigest()[:32],
            "event.kind": "alert",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "sidecar.anomaly.kind": kind,
            "sidecar.anomaly.score": round(score, 2),
            "sidecar.anomaly.observed_ratio": round(observed, 6),
            "sidecar.anomaly.expected_ratio": round(expected, 6),
            "sidecar.anomaly.count": count,
            "sidecar.anomaly.calls": calls,
            "sidecar.anomaly.window_seconds": self.window,
            "message": (f"HTTP {code} from {provider} {model} {_WHAT[kind]}: {count} of {calls} calls "
                        f"({observed:.2%}) in {span}, expected {expected:.2%}; score {score:.1f}"),
        }
        if code != "none":
            doc["http.response.status_code"] = int(code)
        else:
            doc["error.type"] = "no_response"
        return doc

    # ---------------------------------------------------------------------------------- state

    def save(self) -> None:
        """Write the baselines and the open windows atomically (temp file, fsync, rename)."""
        state = {
            "version": STATE_VERSION,
            "window_seconds": self.window,
            "closed_until": self.closed_until,
            "late_records": self.late_records,
            "series": [[p, m, s.to_json()] for (p, m), s in self._series.items()],
            "keys": [[p, f, s.to_list()] for (p, f), s in self._key_state.items()],
            "open": [[*k, v] for k, v in self._counts.items()],
            "open_keys": [[*k, v] for k, v in self._keys.items()],
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".anomaly-", dir=self.state_path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(state, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.state_path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        if not self.state_path.exists():
            return
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if state.get("version") != STATE_VERSION or state.get("window_seconds") != self.window:
                log.warning("anomaly state %s is of another version or window size; starting afresh",
                            self.state_path)
                return
            self.closed_until = float(state["closed_until"])
            self.late_records = int(state.get("late_records", 0))
            for p, m, s in state["series"]:
                self._series[(p, m)] = SeriesState.from_json(s)
                self.model_label(m)
            for p, f, s in state["keys"]:
                self._key_state[(p, f)] = KeyState.from_list(s)
            for start, p, m, code, n in state["open"]:
                self._counts[(float(start), p, m, code)] = int(n)
            for start, p, f, entry in state["open_keys"]:
                self._keys[(float(start), p, f)] = list(entry)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("anomaly state %s unreadable (%s); starting afresh", self.state_path, exc)
            self._series.clear()
            self._key_state.clear()
            self._counts.clear()
            self._keys.clear()
            self.closed_until = 0.0
