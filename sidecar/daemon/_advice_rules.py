"""The advice rules as running aggregates: a :class:`Tally` takes records one at a time (keeping only the
fields each rule reads), tallies merge, and :func:`findings_of` turns one into the findings.

Every result is independent of the order the records came in: examples are the earliest records by
(@timestamp, id), retry groups are judged in (@timestamp, id) order, ties are broken by name. So
``sidecar advise`` over stored records and the sidecar's observer over shipped batches agree.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sidecar.clock import parse_utc

ERROR, WARNING, INFO = "error", "warning", "info"
_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}
_LOOPBACK = ("127.", "localhost", "::1", "[::1]")
MAX_BODY = 10 * 1024 * 1024
EXAMPLES = 3

RULES: dict[str, tuple[str, str, str]] = {  # rule -> (severity, title, fix)
    "key_in_query": (ERROR, "API key sent in the URL query string",
                     "Send the key in a header (Authorization / x-api-key / x-goog-api-key); URLs end up in logs."),
    "plain_http": (ERROR, "Plain HTTP to a non-loopback host",
                   "Use HTTPS (TLS 1.2+) for every call that leaves the machine."),
    "retry_storm": (WARNING, "Retries on 429/503 faster than backoff or ignoring Retry-After",
                    "Back off exponentially from 1 s up to 30 s with jitter and wait at least Retry-After."),
    "no_timeout": (WARNING, "Calls without a timeout",
                   "Set a timeout on every call (the guide suggests 30 s); a stalled server otherwise hangs the app."),
    "long_timeout": (INFO, "Timeout above the threshold", "Lower the client timeout, or stream long generations."),
    "large_request": (ERROR, "Request body over 10 MB", "Split the input, or send files through the file APIs."),
    "near_size_limit": (WARNING, "Request body close to 10 MB", "Trim the prompt before it crosses the limit."),
    "no_connection_reuse": (WARNING, "A new connection for every call",
                            "Reuse one client (keep-alive) instead of creating one per call."),
    "long_unstreamed": (INFO, "Long generations without streaming",
                        "Stream long generations (stream=True) so users see output and timeouts stay short."),
    "repeated_prompt": (INFO, "Identical requests repeated without a cache",
                        "Cache answers to repeated prompts (e.g. requests-cache) or de-duplicate them."),
}


@dataclass(frozen=True)
class Limits:
    max_timeout: float = 120.0  # seconds; a longer client timeout is `long_timeout`
    long_call: float = 30.0  # seconds; a longer unstreamed call is `long_unstreamed`
    repeat_window: float = 3600.0  # seconds within which identical requests count as repeats
    repeat_min: int = 3
    reuse_min_calls: int = 5


@dataclass
class Advice:
    rule: str
    severity: str
    service: str
    provider: str
    title: str
    fix: str
    count: int = 0
    examples: list[str] = field(default_factory=list)  # record ids (the earliest), never content

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "service": self.service, "provider": self.provider,
                "title": self.title, "fix": self.fix, "count": self.count, "examples": self.examples}


@dataclass
class AdviceReport:
    findings: list[Advice]
    records: int
    spend: list[tuple[str, int]]  # (caller, tokens), top spenders

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


def timestamp(doc: dict[str, Any]) -> float:
    """The record's @timestamp in seconds; 0.0 when it has none that parses."""
    value = doc.get("@timestamp")
    if not isinstance(value, str):
        return 0.0
    try:
        return parse_utc(value).timestamp()
    except ValueError:
        return 0.0


def _number(value: Any, default: float = 0.0) -> float:
    """A numeric field as a float; anything else (missing, a string, a bool) is ``default``."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


Example = tuple[float, str]  # (timestamp, record id)


class Hits:
    """How many records a rule hit, and the earliest few."""

    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.count = 0
        self.first: list[Example] = []

    def add(self, example: Example, n: int = 1) -> None:
        self.count += n
        if len(self.first) < EXAMPLES or example < self.first[-1]:
            bisect.insort(self.first, example)
            del self.first[EXAMPLES:]

    def merge(self, other: Hits) -> None:
        self.count += other.count
        for example in other.first:
            self.add(example, 0)


class Attempt(NamedTuple):
    """What the retry and repeat rules read of one record of a retry group."""

    ts: float
    rid: str
    provider: str
    status: int | None
    delay: float | None
    retry_after: float
    resend: bool
    cache_hit: bool


def _record_rules(d: dict[str, Any], limits: Limits) -> Iterator[str]:
    """The rules one record breaks on its own."""
    if d.get("sidecar.credential.location") == "query":
        yield "key_in_query"
    host = str(d.get("server.address") or "")
    if d.get("url.scheme") == "http" and host and not host.startswith(_LOOPBACK):
        yield "plain_http"
    if d.get("sidecar.client.timeout_set") is False:
        yield "no_timeout"
    elif _number(d.get("sidecar.client.timeout")) > limits.max_timeout:
        yield "long_timeout"
    size = _number(d.get("http.request.body.bytes"))
    if size > MAX_BODY:
        yield "large_request"
    elif size > 0.8 * MAX_BODY:
        yield "near_size_limit"
    if d.get("gen_ai.request.stream") is False and _number(d.get("event.duration")) > limits.long_call * 1e9:
        yield "long_unstreamed"


class Tally:
    """Running aggregates of the records added: per rule, per (service, provider), per retry group."""

    def __init__(self, limits: Limits, *, spend: bool = True) -> None:
        self.limits = limits
        self.records = 0
        self.hits: dict[tuple[str, str, str], Hits] = {}
        self.reuse: dict[tuple[str, str], tuple[list[int], Hits]] = {}  # ([calls, reused], fresh connections)
        self.groups: dict[tuple[str, str], list[Attempt]] = {}
        self.attempts = 0
        self.spend: Counter[str] | None = Counter() if spend else None

    def add(self, d: dict[str, Any], *, ts: float | None = None, keep_attempt: bool = True) -> None:
        """Count one record (``ts``: its timestamp, when the caller parsed it already). ``keep_attempt=False``:
        its retry group is left out (a memory bound)."""
        self.records += 1
        rid = str(d.get("event.id"))
        ts = timestamp(d) if ts is None else ts
        service = str(d.get("service.name") or "unknown")
        provider = str(d.get("gen_ai.provider.name") or "unknown")
        for rule in _record_rules(d, self.limits):
            self._hit(rule, service, provider).add((ts, rid))
        if d.get("sidecar.connection.reused") is not None:
            counts, fresh = self.reuse.setdefault((service, provider), ([0, 0], Hits()))
            counts[0] += 1
            if d["sidecar.connection.reused"]:
                counts[1] += 1
            else:
                fresh.add((ts, rid))
        group = d.get("sidecar.retry.group")
        if group and keep_attempt:
            status = d.get("http.response.status_code")
            delay = d.get("sidecar.retry.delay")
            self.groups.setdefault((service, str(group)), []).append(Attempt(
                ts, rid, provider, status if isinstance(status, int) else None,
                _number(delay) if delay is not None else None, _number(d.get("sidecar.response.retry_after"), 1.0),
                bool(d.get("http.request.resend_count")), bool(d.get("sidecar.cache.hit"))))
            self.attempts += 1
        if self.spend is not None and not d.get("sidecar.cache.hit"):
            caller = str(d.get("user.id") or d.get("sidecar.credential.fingerprint") or "unknown")
            self.spend[caller] += int(_number(d.get("gen_ai.usage.input_tokens"))
                                      + _number(d.get("gen_ai.usage.output_tokens")))

    def _hit(self, rule: str, service: str, provider: str) -> Hits:
        key = (rule, service, provider)
        hits = self.hits.get(key)
        if hits is None:
            hits = self.hits[key] = Hits()
        return hits

    def snapshot(self) -> Tally:
        """A copy of the tally's indexes (the values are shared), cheap enough to take under a lock; merge
        it into a fresh tally to read it."""
        copy = Tally(self.limits, spend=False)
        copy.records, copy.attempts = self.records, self.attempts
        copy.hits, copy.reuse, copy.groups = dict(self.hits), dict(self.reuse), dict(self.groups)
        return copy

    def merge(self, other: Tally) -> None:
        """Add ``other``'s aggregates to this one, for reading: ``other`` is left as it was, and this tally
        may share retry-group lists with it, so nothing is added to it afterwards."""
        self.records += other.records
        for (rule, service, provider), hits in other.hits.items():
            self._hit(rule, service, provider).merge(hits)
        for key, (counts, fresh) in other.reuse.items():
            mine, my_fresh = self.reuse.setdefault(key, ([0, 0], Hits()))
            mine[0] += counts[0]
            mine[1] += counts[1]
            my_fresh.merge(fresh)
        for key, attempts in other.groups.items():
            kept = self.groups.get(key)
            self.groups[key] = attempts if kept is None else kept + attempts
        self.attempts += other.attempts
        if self.spend is not None and other.spend is not None:
            self.spend.update(other.spend)


def _group_rules(tally: Tally) -> None:
    """Retries that ignore backoff, and identical requests repeated without a cache, per retry group."""
    limits = tally.limits
    for (service, _), group in tally.groups.items():
        if len(group) < 2:  # one attempt: no retry, no repeat
            continue
        attempts = sorted(group, key=lambda a: (a.ts, a.rid))
        provider = attempts[0].provider
        # Retries: each attempt after a 429/503 must wait at least Retry-After (else 1 s).
        for prev, cur in itertools.pairwise(attempts):
            if prev.status in (429, 503) and cur.delay is not None and cur.delay < 0.9 * prev.retry_after:
                tally._hit("retry_storm", service, provider).add((cur.ts, cur.rid))
        # Repeats: the same request sent again and again (not retries) with no cached answer.
        fresh = [a for a in attempts if not a.resend and not a.cache_hit and a.status == 200]
        if len(fresh) >= limits.repeat_min and fresh[-1].ts - fresh[0].ts <= limits.repeat_window \
                and not any(a.cache_hit for a in attempts):
            for a in fresh[1:]:
                tally._hit("repeated_prompt", service, provider).add((a.ts, a.rid))


def findings_of(tally: Tally) -> AdviceReport:
    """The findings of everything added to ``tally`` (which then holds the group rules' hits too: use a
    merged copy when it keeps counting)."""
    for (service, provider), ((calls, reused), fresh) in tally.reuse.items():
        # Mostly new connections: each new one costs a TCP (and TLS) handshake that keep-alive avoids.
        if fresh.count >= tally.limits.reuse_min_calls and reused < calls / 2:
            tally._hit("no_connection_reuse", service, provider).merge(fresh)
    _group_rules(tally)
    found = []
    for (rule, service, provider), hits in tally.hits.items():
        severity, title, fix = RULES[rule]
        found.append(Advice(rule, severity, service, provider, title, fix, hits.count,
                             [rid for _, rid in hits.first]))
    found.sort(key=lambda f: (_ORDER[f.severity], f.service, f.provider, -f.count, f.rule))
    spend = sorted(((c, t) for c, t in (tally.spend or Counter()).items() if t > 0), key=lambda ct: (-ct[1], ct[0]))
    return AdviceReport(found, tally.records, spend[:5])
