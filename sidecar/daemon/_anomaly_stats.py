"""The detector's statistics: exponentially weighted baselines (global and 24 hour-of-day bins), their
seasonal expectation, clipped learning, and z-scores."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

BINS = 24


def z_score(excess: float, variance: float) -> float:
    return excess / math.sqrt(variance) if variance > 0 else 0.0


class Ewma:
    """Exponentially weighted mean of an observation, and its variance beyond the expected noise
    (over-dispersion)."""

    __slots__ = ("extra", "mean")

    def __init__(self, mean: float = 0.0, extra: float = 0.0) -> None:
        self.mean = mean
        self.extra = extra

    def update(self, x: float, alpha: float, noise: float | None) -> None:
        """``noise``: the variance the model expects anyway; None: Poisson (the variance is the mean)."""
        d = x - self.mean
        self.mean += alpha * d
        expected = max(self.mean, 0.0) if noise is None else noise
        self.extra += alpha * (max(d * d - expected, 0.0) - self.extra)


class Expectation(NamedTuple):
    ratio: float  # the code's share of the calls
    ratio_extra: float
    rate: float  # the code's count per window
    rate_extra: float


@dataclass
class Moments:
    """The learned ratio and rate of one status code (globally or in one hour-of-day bin)."""

    ratio: Ewma = field(default_factory=Ewma)
    rate: Ewma = field(default_factory=Ewma)
    n: int = 0

    def expectation(self) -> Expectation:
        return Expectation(self.ratio.mean, self.ratio.extra, self.rate.mean, self.rate.extra)

    def start_from(self, other: Moments) -> None:
        self.ratio = Ewma(other.ratio.mean, other.ratio.extra)
        self.rate = Ewma(other.rate.mean, other.rate.extra)

    def to_list(self) -> list[float]:
        return [*self.expectation(), float(self.n)]

    @classmethod
    def from_list(cls, v: list[float]) -> Moments:
        return cls(Ewma(v[0], v[1]), Ewma(v[2], v[3]), int(v[4]))


class Window(NamedTuple):
    """One closed window of a code: the count, the calls, and the expected count and variance of each test."""

    with_code: float  # calls answered with the code
    calls: float
    ratio_expected: float
    ratio_variance: float
    rate_expected: float
    rate_variance: float


@dataclass
class CodeStats:
    glob: Moments = field(default_factory=Moments)
    bins: list[Moments] = field(default_factory=lambda: [Moments() for _ in range(BINS)])
    recent: list[Window] = field(default_factory=list)  # the last hour of windows
    active: bool = False

    def expected(self, t: float, bin_ready: int) -> Expectation:
        """Seasonal expectation at time t: the two nearest hour bins interpolated, where they have learned
        enough, else the global baseline."""
        pos = (t % 86400) / 3600 - 0.5
        b0 = math.floor(pos)
        w = pos - b0
        lo, hi = self.bins[b0 % BINS], self.bins[(b0 + 1) % BINS]
        parts = [(m.expectation(), wt) for m, wt in ((lo, 1 - w), (hi, w)) if m.n >= bin_ready and wt > 0]
        if not parts:
            return self.glob.expectation()
        total = sum(wt for _, wt in parts)
        return Expectation(*(sum(e[i] * wt for e, wt in parts) / total for i in range(4)))

    def hour(self) -> Window:
        """The recent windows summed."""
        return Window(*(sum(w[i] for w in self.recent) for i in range(6)))

    def to_json(self) -> dict[str, Any]:
        return {"g": self.glob.to_list(), "b": [b.to_list() for b in self.bins], "r": [list(w) for w in self.recent],
                "a": self.active}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CodeStats:
        return cls(Moments.from_list(d["g"]), [Moments.from_list(b) for b in d["b"]],
                   [Window(*w) for w in d["r"]], bool(d["a"]))


@dataclass
class SeriesState:
    windows: int = 0
    codes: dict[str, CodeStats] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"w": self.windows, "c": {k: v.to_json() for k, v in self.codes.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SeriesState:
        return cls(int(d["w"]), {k: CodeStats.from_json(v) for k, v in d["c"].items()})


@dataclass
class KeyState:
    """One API key fingerprint: how often its calls are refused with 401/403."""

    ratio: float = 0.0
    windows: int = 0
    last_seen: float = 0.0
    active: bool = False

    def to_list(self) -> list[Any]:
        return [self.ratio, self.windows, self.last_seen, self.active]

    @classmethod
    def from_list(cls, v: list[Any]) -> KeyState:
        return cls(float(v[0]), int(v[1]), float(v[2]), bool(v[3]))


@dataclass(frozen=True)
class Learning:
    global_alpha: float
    bin_alpha: float
    clip: float  # standard deviations an observation is clipped to before it is learned


def learn(stats: CodeStats, start: float, w: Window, p0: float, how: Learning, *, first: bool) -> None:
    """Move the baselines towards the window (``p0``: the expected ratio it was scored against); clipped,
    so one anomalous window moves them a bounded amount."""
    sd_r = math.sqrt(w.ratio_variance) / w.calls
    r = min(max(w.with_code / w.calls, p0 - how.clip * sd_r), p0 + how.clip * sd_r)
    sd_l = math.sqrt(w.rate_variance)
    c = min(max(w.with_code, w.rate_expected - how.clip * sd_l), w.rate_expected + how.clip * sd_l)
    binom = p0 * (1 - p0) / w.calls
    for m, alpha in ((stats.glob, how.global_alpha), (stats.bins[int(start % 86400 // 3600)], how.bin_alpha)):
        if m.n == 0 and m is not stats.glob:  # a new bin starts from the global baseline
            m.start_from(stats.glob)
        if first and m is stats.glob:
            m.n += 1
            continue
        m.ratio.update(r, alpha, binom)
        m.rate.update(c, alpha, None)
        m.n += 1
