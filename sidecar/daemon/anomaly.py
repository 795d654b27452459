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
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import math
import os
import pathlib
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from sidecar.clock import format_utc
from sidecar.ship.metrics import record_view
from sidecar.telemetry import ModelLabels, provider_label, status_label

log = logging.getLogger("sidecar.anomaly")

STATE_VERSION = 1
BINS = 24
AUTH_CODES = ("401", "403")
# Codes tracked from the first window of a provider/model, so the first 403 has a baseline of 0.
TRACKED_CODES = ("400", "401", "403", "429", "500", "503", "none")


def _is_alerting_code(code: str) -> bool:
    return code == "none" or not code.startswith(("1", "2", "3"))


# --------------------------------------------------------------------------------------------------
# Per-record field extraction


class _Fields:
    __slots__ = ("fingerprint", "model", "provider", "status", "ts")

    def __init__(self, ts: float, provider: str, model: str | None, status: str, fingerprint: str | None) -> None:
        self.ts = ts
        self.provider = provider
        self.model = model
        self.status = status
        self.fingerprint = fingerprint


_minute_cache: dict[str, float] = {}


def _parse_ts(value: str) -> float | None:
    """RFC 3339 in UTC ('2026-11-25T10:00:00.123456Z' or '...+00:00'); the minute is cached."""
    if len(value) < 19 or value[10] != "T":
        return None
    minute = value[:16]
    base = _minute_cache.get(minute)
    try:
        if base is None:
            y, mo, d = int(value[0:4]), int(value[5:7]), int(value[8:10])
            h, mi = int(value[11:13]), int(value[14:16])
            base = float(calendar.timegm((y, mo, d, h, mi, 0, 0, 0, 0)))
            if len(_minute_cache) > 4096:
                _minute_cache.clear()
            _minute_cache[minute] = base
        end = 19
        if value[19:20] == ".":
            end = 20
            while end < len(value) and value[end].isdigit():
                end += 1
        seconds = float(value[17:end])
    except ValueError:
        return None
    if end < len(value) and value[end:] not in ("Z", "+00:00"):
        return None  # records are written in UTC; anything else is not one of ours
    return base + seconds


def extract(raw: bytes) -> _Fields | None:
    """The few fields the detector needs from a raw record document.

    ``record_view`` parses the metadata part only (content fields come last and are cut off), with
    the C JSON parser: measured as fast as searching the bytes for each key, and exact."""
    view = record_view(raw)
    return _view_fields(view) if view is not None else None


def _view_fields(doc: dict[str, Any]) -> _Fields | None:
    """The same fields from an already parsed document (e.g. ``record_view``)."""
    stamp = doc.get("@timestamp")
    provider = doc.get("gen_ai.provider.name")
    if not isinstance(stamp, str) or not isinstance(provider, str):
        return None
    ts = _parse_ts(stamp)
    if ts is None:
        return None
    status = doc.get("http.response.status_code")
    model = doc.get("gen_ai.request.model") or doc.get("gen_ai.response.model")
    fingerprint = doc.get("sidecar.credential.fingerprint")
    return _Fields(ts, provider_label(provider), model if isinstance(model, str) else None,
                   status_label(status) if isinstance(status, int) else "none",  # labels: a bounded set
                   fingerprint if isinstance(fingerprint, str) else None)


# --------------------------------------------------------------------------------------------------
# Statistics


@dataclass
class _Moments:
    """Exponentially weighted mean of a ratio and a count, and their extra variance."""

    ratio: float = 0.0
    ratio_vx: float = 0.0
    rate: float = 0.0
    rate_vx: float = 0.0
    n: int = 0

    def to_list(self) -> list[float]:
        return [self.ratio, self.ratio_vx, self.rate, self.rate_vx, float(self.n)]

    @classmethod
    def from_list(cls, v: list[float]) -> _Moments:
        return cls(v[0], v[1], v[2], v[3], int(v[4]))


@dataclass
class _CodeStats:
    glob: _Moments = field(default_factory=_Moments)
    bins: list[_Moments] = field(default_factory=lambda: [_Moments() for _ in range(BINS)])
    # last hour of windows: [count, calls, expected count (ratio), variance (ratio), expected (rate), variance (rate)]
    recent: list[list[float]] = field(default_factory=list)
    active: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"g": self.glob.to_list(), "b": [b.to_list() for b in self.bins], "r": self.recent, "a": self.active}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _CodeStats:
        return cls(_Moments.from_list(d["g"]), [_Moments.from_list(b) for b in d["b"]], d["r"], bool(d["a"]))


@dataclass
class _SeriesState:
    windows: int = 0
    codes: dict[str, _CodeStats] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"w": self.windows, "c": {k: v.to_json() for k, v in self.codes.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _SeriesState:
        return cls(int(d["w"]), {k: _CodeStats.from_json(v) for k, v in d["c"].items()})


@dataclass
class _KeyState:
    """One API key fingerprint: how often its calls are refused with 401/403."""

    ratio: float = 0.0
    windows: int = 0
    last_seen: float = 0.0
    active: bool = False

    def to_list(self) -> list[Any]:
        return [self.ratio, self.windows, self.last_seen, self.active]

    @classmethod
    def from_list(cls, v: list[Any]) -> _KeyState:
        return cls(float(v[0]), int(v[1]), float(v[2]), bool(v[3]))


def _z(excess: float, variance: float) -> float:
    return excess / math.sqrt(variance) if variance > 0 else 0.0


class AnomalyDetector:
    """Learns per (provider, model, status code) baselines from shipped records and flags breaks.

    Wiring (the sidecar's shipper): ``observe(raws)`` for every delivered batch (a Shipper
    observer); ``tick()`` periodically, every 30-60 s, which closes finished windows and returns
    anomaly documents to store (index ``{prefix}-anomalies-YYYY.MM.DD``, ``_id`` = ``event.id``);
    ``save()`` at shutdown (``tick`` saves by itself whenever it closed a window).
    """

    def __init__(
        self,
        state_path: pathlib.Path,
        registry: CollectorRegistry,
        *,
        window_seconds: float = 300,
        grace_seconds: float = 120,
        threshold: float = 5.0,
        min_count: int = 5,
        min_ratio_factor: float = 1.5,
        ratio_floor: float = 0.001,
        warmup_windows: int = 12,
        hour_windows: int | None = None,
        global_alpha: float = 0.05,
        bin_alpha: float = 0.03,
        bin_ready: int = 12,
        clip_sigmas: float = 3.0,
        min_auth_failures: int = 5,
        max_keys: int = 10_000,
        max_models: int = 50,
        autosave: bool = True,
    ) -> None:
        self.state_path = pathlib.Path(state_path)
        self.window = float(window_seconds)
        self.grace = float(grace_seconds)
        self.threshold = threshold
        self.min_count = min_count
        self.min_ratio_factor = min_ratio_factor
        self.ratio_floor = ratio_floor
        self.warmup = warmup_windows
        self.hour_windows = hour_windows or max(1, round(3600 / self.window))
        self.global_alpha = global_alpha
        self.bin_alpha = bin_alpha
        self.bin_ready = bin_ready
        self.clip = clip_sigmas
        self.min_auth_failures = min_auth_failures
        self.max_keys = max_keys
        self.autosave = autosave
        self.model_label = ModelLabels(max_models)
        self.score = Gauge("sidecar_anomaly_score", "Error-code anomaly score per provider, model and status code "
                           "(standard deviations above the seasonal baseline; >= the threshold is an anomaly).",
                           ("provider", "model", "status_code"), registry=registry)
        self.anomalies = Counter("sidecar_anomalies", "Anomaly records written, by kind (spike, shift, credential).",
                                 ("kind",), registry=registry)
        for kind in ("spike", "shift", "credential"):
            self.anomalies.labels(kind)
        # open windows: (window start, provider, model, code) -> calls; (window start, provider, key) -> counts
        self._counts: defaultdict[tuple[float, str, str, str], int] = defaultdict(int)
        self._keys: dict[tuple[float, str, str], list[Any]] = {}
        self._series: dict[tuple[str, str], _SeriesState] = {}
        self._key_state: dict[tuple[str, str], _KeyState] = {}
        self.closed_until = 0.0
        self.late_records = 0
        self.records_seen = 0
        self._load()

    # ---------------------------------------------------------------------------------- records

    def observe(self, raws: list[bytes]) -> None:
        """Count a delivered batch (raw record documents). Records of windows already closed are
        counted in ``late_records`` and left out."""
        for raw in raws:
            f = extract(raw)
            if f is not None:
                self._count(f)

    def observe_docs(self, docs: list[dict[str, Any]]) -> None:
        """Same as :meth:`observe` for documents already parsed (e.g. by ``record_view``), which
        saves parsing each record twice when the caller has them."""
        for doc in docs:
            f = _view_fields(doc)
            if f is not None:
                self._count(f)

    def _count(self, f: _Fields) -> None:
        self.records_seen += 1
        start = f.ts - f.ts % self.window
        if start < self.closed_until:
            self.late_records += 1
            return
        model = self.model_label(f.model)
        self._counts[(start, f.provider, model, f.status)] += 1
        if f.fingerprint:
            key = (start, f.provider, f.fingerprint)
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = [0, 0, model, f.status]
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
            if start + self.window + self.grace > now:
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

    def _expected(self, stats: _CodeStats, t: float) -> tuple[float, float, float, float]:
        """Seasonal expectation at time t: (ratio, ratio extra variance, count, count extra variance)."""
        pos = (t % 86400) / 3600 - 0.5
        b0 = math.floor(pos)
        w = pos - b0
        lo, hi = stats.bins[b0 % BINS], stats.bins[(b0 + 1) % BINS]
        parts = [(m, wt) for m, wt in ((lo, 1 - w), (hi, w)) if m.n >= self.bin_ready and wt > 0]
        if not parts:
            g = stats.glob
            return g.ratio, g.ratio_vx, g.rate, g.rate_vx
        total = sum(wt for _, wt in parts)
        return (sum(m.ratio * wt for m, wt in parts) / total, sum(m.ratio_vx * wt for m, wt in parts) / total,
                sum(m.rate * wt for m, wt in parts) / total, sum(m.rate_vx * wt for m, wt in parts) / total)

    def _score_series(self, start: float, provider: str, model: str, codes: dict[str, int]) -> list[dict[str, Any]]:
        state = self._series.get((provider, model))
        if state is None:
            state = self._series[(provider, model)] = _SeriesState()
        calls = sum(codes.values())
        for code in (*TRACKED_CODES, *codes):
            if code not in state.codes:
                state.codes[code] = _CodeStats()
        warm = state.windows >= self.warmup
        mid = start + self.window / 2
        docs: list[dict[str, Any]] = []
        for code, stats in state.codes.items():
            k = codes.get(code, 0)
            if state.windows == 0:  # first window: start the baseline where the data is
                stats.glob = _Moments(k / calls, 0.0, float(k), 0.0, 1)
            p_exp, p_vx, lam_exp, lam_vx = self._expected(stats, mid)
            p0 = max(p_exp, self.ratio_floor)
            var_r = calls * p0 * (1 - p0) + calls * calls * p_vx
            lam = max(lam_exp, 0.5)
            var_l = lam + lam_vx
            z5 = min(_z(k - calls * p0, var_r), _z(k - lam, var_l))
            stats.recent.append([k, calls, calls * p0, var_r, lam, var_l])
            del stats.recent[:-self.hour_windows]
            hk = sum(r[0] for r in stats.recent)
            hn = sum(r[1] for r in stats.recent)
            he_r = sum(r[2] for r in stats.recent)
            z60 = min(_z(hk - he_r, sum(r[3] for r in stats.recent)),
                      _z(hk - sum(r[4] for r in stats.recent), sum(r[5] for r in stats.recent)))
            spike = (z5 >= self.threshold and k >= self.min_count and k >= self.min_ratio_factor * calls * p0)
            shift = (len(stats.recent) >= self.hour_windows // 2 and z60 >= self.threshold
                     and hk >= 2 * self.min_count and hk >= self.min_ratio_factor * he_r)
            score = max(z5, z60, 0.0)
            if _is_alerting_code(code):
                self.score.labels(provider, model, code).set(round(min(score, 1000.0), 3) if warm else 0.0)
                if warm and (spike or shift) and not stats.active:
                    stats.active = True
                    kind = "spike" if spike else "shift"
                    observed = k / calls if spike else hk / max(hn, 1)
                    expected = p0 if spike else he_r / max(hn, 1)
                    docs.append(self._doc(start, kind, provider, model, code, max(z5, z60), observed, expected,
                                          k if spike else round(hk), calls if spike else round(hn)))
                elif stats.active and score < self.threshold / 2:
                    stats.active = False
            self._learn(stats, start, k, calls, p0, var_r, lam, var_l, first=state.windows == 0)
        state.windows += 1
        return docs

    def _learn(self, stats: _CodeStats, start: float, k: int, calls: int, p0: float, var_r: float, lam: float,
               var_l: float, *, first: bool) -> None:
        # Clip the observation so one anomalous window moves the baseline by a bounded amount.
        sd_r = math.sqrt(var_r) / calls
        r = min(max(k / calls, p0 - self.clip * sd_r), p0 + self.clip * sd_r)
        sd_l = math.sqrt(var_l)
        c = min(max(float(k), lam - self.clip * sd_l), lam + self.clip * sd_l)
        binom = p0 * (1 - p0) / calls
        for m, alpha in ((stats.glob, self.global_alpha), (stats.bins[int(start % 86400 // 3600)], self.bin_alpha)):
            if m.n == 0 and m is not stats.glob:  # a new bin starts from the global baseline
                g = stats.glob
                m.ratio, m.ratio_vx, m.rate, m.rate_vx = g.ratio, g.ratio_vx, g.rate, g.rate_vx
            if first and m is stats.glob:
                m.n += 1
                continue
            dr = r - m.ratio
            dl = c - m.rate
            m.ratio += alpha * dr
            m.ratio_vx += alpha * (max(dr * dr - binom, 0.0) - m.ratio_vx)
            m.rate += alpha * dl
            m.rate_vx += alpha * (max(dl * dl - max(m.rate, 0.0), 0.0) - m.rate_vx)
            m.n += 1

    def _score_key(self, start: float, provider: str, fingerprint: str, entry: list[Any]) -> list[dict[str, Any]]:
        calls, failures, model, code = int(entry[0]), int(entry[1]), str(entry[2]), str(entry[3])
        state = self._key_state.get((provider, fingerprint))
        if state is None:
            if len(self._key_state) >= self.max_keys:  # forget the key seen longest ago
                oldest = min(self._key_state, key=lambda k: self._key_state[k].last_seen)
                del self._key_state[oldest]
            state = self._key_state[(provider, fingerprint)] = _KeyState()
        p0 = max(state.ratio, self.ratio_floor)
        var = calls * p0 * (1 - p0)
        z = _z(failures - calls * p0, var)
        docs: list[dict[str, Any]] = []
        anomalous = failures >= self.min_auth_failures and z >= self.threshold and failures / calls >= 2 * p0
        if anomalous and not state.active:
            state.active = True
            doc = self._doc(start, "credential", provider, model, code, z, failures / calls, p0, failures, calls)
            doc["sidecar.credential.fingerprint"] = fingerprint
            doc["message"] = (f"{failures} of {calls} calls with API key {fingerprint} to {provider} were refused "
                              f"({code}) in {self.window / 60:g} minutes; usual share "
                              f"{state.ratio:.2%}: the key may be revoked, rotated or out of quota")
            docs.append(doc)
        elif state.active and not anomalous and failures < self.min_auth_failures:
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
        what = {"spike": "jumped", "shift": "rose and stayed up", "credential": "appeared for one API key"}[kind]
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
            "message": (f"HTTP {code} from {provider} {model} {what}: {count} of {calls} calls ({observed:.2%}) in "
                        f"{span}, expected {expected:.2%}; score {score:.1f}"),
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
                self._series[(p, m)] = _SeriesState.from_json(s)
                self.model_label(m)
            for p, f, s in state["keys"]:
                self._key_state[(p, f)] = _KeyState.from_list(s)
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
