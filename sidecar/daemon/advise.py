"""``sidecar advise``: check an application's API hygiene against the practices its developers are told
to follow (keys in headers, HTTPS, backoff that honours Retry-After, timeouts, bodies under 10 MB,
keep-alive, streaming long generations, caching repeated prompts), from the audit records alone.

Pure functions over record documents: ``advise(docs) -> AdviceReport``; the CLI and the sidecar's
periodic metrics both call it.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sidecar.clock import parse_utc

ERROR, WARNING, INFO = "error", "warning", "info"
_LOOPBACK = ("127.", "localhost", "::1", "[::1]")
MAX_BODY = 10 * 1024 * 1024


@dataclass
class Advice:
    rule: str
    severity: str
    service: str
    provider: str
    title: str
    fix: str
    count: int = 0
    examples: list[str] = field(default_factory=list)  # record ids, never content

    def add(self, record_id: str) -> None:
        self.count += 1
        if len(self.examples) < 3:
            self.examples.append(record_id)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "service": self.service, "provider": self.provider,
                "title": self.title, "fix": self.fix, "count": self.count, "examples": self.examples}


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


@dataclass
class AdviceReport:
    findings: list[Advice]
    records: int
    spend: list[tuple[str, int]]  # (caller, tokens), top spenders

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


_GROUP_FIELDS = ("@timestamp", "event.id", "gen_ai.provider.name", "http.response.status_code",
                 "sidecar.retry.delay", "sidecar.response.retry_after", "http.request.resend_count",
                 "sidecar.cache.hit")


def _ts(doc: dict[str, Any]) -> float:
    try:
        return parse_utc(str(doc.get("@timestamp", ""))).timestamp()
    except ValueError:
        return 0.0


def advise(docs: Iterable[dict[str, Any]], *, max_timeout: float = 120.0, long_call: float = 30.0,
           repeat_window: float = 3600.0, repeat_min: int = 3, reuse_min_calls: int = 5) -> AdviceReport:
    found: dict[tuple[str, str, str], Advice] = {}
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    reuse: dict[tuple[str, str], list[bool]] = defaultdict(list)
    reuse_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    spend: Counter[str] = Counter()
    n = 0

    def hit(rule: str, service: str, provider: str, record_id: str) -> None:
        key = (rule, service, provider)
        if key not in found:
            severity, title, fix = RULES[rule]
            found[key] = Advice(rule, severity, service, provider, title, fix)
        found[key].add(record_id)

    for d in docs:
        n += 1
        rid = str(d.get("event.id"))
        service = str(d.get("service.name") or "unknown")
        provider = str(d.get("gen_ai.provider.name") or "unknown")
        if d.get("sidecar.credential.location") == "query":
            hit("key_in_query", service, provider, rid)
        host = str(d.get("server.address") or "")
        if d.get("url.scheme") == "http" and host and not host.startswith(_LOOPBACK):
            hit("plain_http", service, provider, rid)
        if d.get("sidecar.client.timeout_set") is False:
            hit("no_timeout", service, provider, rid)
        elif (d.get("sidecar.client.timeout") or 0) > max_timeout:
            hit("long_timeout", service, provider, rid)
        size = d.get("http.request.body.bytes") or 0
        if size > MAX_BODY:
            hit("large_request", service, provider, rid)
        elif size > 0.8 * MAX_BODY:
            hit("near_size_limit", service, provider, rid)
        if d.get("gen_ai.request.stream") is False and (d.get("event.duration") or 0) > long_call * 1e9:
            hit("long_unstreamed", service, provider, rid)
        if d.get("sidecar.connection.reused") is not None:
            reuse[(service, provider)].append(bool(d["sidecar.connection.reused"]))
            reuse_ids[(service, provider)].append(rid)
        group = d.get("sidecar.retry.group")
        if group:
            # Only what the retry and repeat rules read: a reader streams records, this keeps memory
            # per record small.
            by_group[(service, str(group))].append({k: d.get(k) for k in _GROUP_FIELDS})
        if not d.get("sidecar.cache.hit"):
            caller = str(d.get("user.id") or d.get("sidecar.credential.fingerprint") or "unknown")
            spend[caller] += int(d.get("gen_ai.usage.input_tokens") or 0) + int(d.get("gen_ai.usage.output_tokens")
                                                                                 or 0)

    for (service, provider), flags in reuse.items():
        fresh_connections = [rid for rid, reused in zip(reuse_ids[(service, provider)], flags, strict=True)
                             if not reused]
        # Mostly new connections: each new one costs a TCP (and TLS) handshake that keep-alive avoids.
        if len(fresh_connections) >= reuse_min_calls and sum(flags) < len(flags) / 2:
            for rid in fresh_connections:
                hit("no_connection_reuse", service, provider, rid)

    for (service, _), attempts in by_group.items():
        attempts.sort(key=_ts)
        provider = str(attempts[0].get("gen_ai.provider.name") or "unknown")
        # Retries: each attempt after a 429/503 must wait at least Retry-After (else 1 s).
        for prev, cur in itertools.pairwise(attempts):
            if prev.get("http.response.status_code") in (429, 503) and cur.get("sidecar.retry.delay") is not None:
                needed = float(prev.get("sidecar.response.retry_after") or 1.0)
                if float(cur["sidecar.retry.delay"]) < 0.9 * needed:
                    hit("retry_storm", service, provider, str(cur.get("event.id")))
        # Repeats: the same request sent again and again (not retries) with no cached answer.
        fresh = [a for a in attempts if not a.get("http.request.resend_count") and not a.get("sidecar.cache.hit")
                 and a.get("http.response.status_code") == 200]
        if len(fresh) >= repeat_min and _ts(fresh[-1]) - _ts(fresh[0]) <= repeat_window \
                and not any(a.get("sidecar.cache.hit") for a in attempts):
            for a in fresh[1:]:
                hit("repeated_prompt", service, provider, str(a.get("event.id")))

    order = {ERROR: 0, WARNING: 1, INFO: 2}
    findings = sorted(found.values(), key=lambda f: (order[f.severity], f.service, f.provider, -f.count))
    return AdviceReport(findings, n, [(c, t) for c, t in spend.most_common(5) if t > 0])


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

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Gauge

        self.gauge = Gauge("sidecar_advice_findings", "API-hygiene findings over the last hour (sidecar advise), "
                           "by rule and severity.", ("rule", "severity", "service", "provider"), registry=registry)
        self._shown: set[tuple[str, str, str, str]] = set()

    def update(self, report: AdviceReport) -> None:
        now = {(f.rule, f.severity, f.service, f.provider): f.count for f in report.findings}
        for key in self._shown - now.keys():
            self.gauge.labels(*key).set(0)
        for key, count in now.items():
            self.gauge.labels(*key).set(count)
        self._shown |= now.keys()
