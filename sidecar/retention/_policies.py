"""Retention policy bodies, all generated from one number: ``retention_days``.

* :func:`ilm_policy` — ``PUT _ilm/policy/<prefix>-retention`` (self-managed Elasticsearch);
* :func:`index_template` — the audit index template with ``index.lifecycle.name`` set;
* :func:`data_stream_template` — the data stream lifecycle form (``template.lifecycle.data_retention``),
  for clusters without ILM such as Elastic serverless; it applies to data streams only;
* :func:`ism_policy` — ``PUT _plugins/_ism/policies/<prefix>-retention`` (OpenSearch).

Why ILM and ISM delete at ``retention_days + 1`` days: both count an index's age from its creation
(ILM's ``min_age`` without rollover, ISM's ``min_index_age``), and a daily index is created by the
first record of its day while the last record of that day arrives up to 24 hours later. Deleting at
``N`` days after creation would keep that last record only ``N`` days minus up to a day; ``N + 1``
days keeps every record at least ``N`` days. The data stream lifecycle counts from the backing
index's rollover (every document in it was written before), so ``data_retention`` is ``N`` days.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sidecar.config import MIN_RETENTION_DAYS
from sidecar.errors import ConfigError
from sidecar.ship.templates import (
    MANAGED_BY,
    audit_index_pattern,
    audit_mappings,
    audit_template,
)

DEFAULT_PREFIX = "llm-audit"
DEFAULT_RETENTION_DAYS = MIN_RETENTION_DAYS
ISM_TEMPLATE_PRIORITY = 100
DATA_STREAM_TEMPLATE_PRIORITY = 250  # above 200, the documented floor for avoiding built-in templates

# File name -> what it is, in the order the generator writes them.
FILES = ("ilm-policy.json", "index-template.json", "data-stream-lifecycle.json", "opensearch-ism-policy.json")


class RetentionConfigError(ConfigError):
    """The retention limit is not acceptable (below 90 days without the explicit override, or < 1)."""


def check_retention_days(days: int, *, allow_short: bool = False) -> int:
    """Return ``days`` if acceptable; raise :class:`RetentionConfigError` naming the variable otherwise."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise RetentionConfigError(f"SIDECAR_RETENTION_DAYS must be a whole number of days >= 1, got {days!r}")
    if days < MIN_RETENTION_DAYS and not allow_short:
        raise RetentionConfigError(
            f"SIDECAR_RETENTION_DAYS={days} is below {MIN_RETENTION_DAYS}; "
            "set SIDECAR_ALLOW_SHORT_RETENTION=true to override"
        )
    return days


def policy_name(prefix: str) -> str:
    """Name of the ILM / ISM policy: ``{prefix}-retention``."""
    return f"{prefix}-retention"


def meta_index(prefix: str) -> str:
    """Index holding the enforcer's marker document (the limit in force)."""
    return f"{prefix}-retention-meta"


def index_patterns(prefix: str) -> dict[str, str]:
    """Index pattern by role: the daily audit, dead-letter, anomaly and (tamper-evidence) digest indices."""
    return {
        "audit": audit_index_pattern(prefix),
        "deadletter": f"{prefix}-deadletter-*",
        "anomalies": f"{prefix}-anomalies-*",
        "digests": f"{prefix}-digests-*",
    }


def delete_after_days(retention_days: int) -> int:
    """Index age (from creation) at which ILM / ISM delete a daily index; see the module docstring."""
    return retention_days + 1


def _meta(retention_days: int, **extra: Any) -> dict[str, Any]:
    return {"managed_by": MANAGED_BY, "retention_days": retention_days, **extra}


def ilm_policy(retention_days: int, *, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """Body for ``PUT _ilm/policy/{prefix}-retention``: keep, then delete whole indices."""
    days = delete_after_days(retention_days)
    return {
        "policy": {
            "_meta": _meta(
                retention_days,
                description=f"Keep every {prefix} audit record at least {retention_days} days, then delete the "
                f"daily index ({days}d after its creation: a daily index spans one day).",
            ),
            "phases": {
                "hot": {"min_age": "0ms", "actions": {"set_priority": {"priority": 100}}},
                "delete": {"min_age": f"{days}d", "actions": {"delete": {}}},
            },
        }
    }


def index_template(retention_days: int, *, prefix: str = DEFAULT_PREFIX, replicas: int | str = "0-1",
                   shards: int = 1) -> dict[str, Any]:
    """Body for ``PUT _index_template/{prefix}-audit``: the shipper's audit template (same replicas and
    shards as the shipper is configured with) plus the ILM policy."""
    body = audit_template(prefix, retention_policy=policy_name(prefix), number_of_replicas=replicas,
                          number_of_shards=shards)
    body["_meta"] = {**body.get("_meta", {}), "retention_days": retention_days}
    return body


def data_stream_template(retention_days: int, *, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """Body for ``PUT _index_template/{prefix}-stream``: a data stream ``{prefix}-stream*`` with a lifecycle.

    For users who ship into a data stream themselves (clusters without ILM, Elastic serverless); the
    sidecar writes daily indices, which a data stream lifecycle does not manage. No shard or replica
    settings, which serverless refuses.
    """
    return {
        "index_patterns": [f"{prefix}-stream*"],
        "data_stream": {},
        "priority": DATA_STREAM_TEMPLATE_PRIORITY,
        "_meta": _meta(retention_days, role="audit-data-stream"),
        "template": {
            "mappings": audit_mappings(),
            "lifecycle": {"data_retention": f"{retention_days}d"},
        },
    }


def ism_policy(retention_days: int, *, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """Body for ``PUT _plugins/_ism/policies/{prefix}-retention`` (OpenSearch Index State Management).

    ``ism_template`` attaches the policy to new audit, dead-letter, anomaly and digest indices; existing
    indices are attached with ``POST _plugins/_ism/add/<indices>``.
    """
    days = delete_after_days(retention_days)
    return {
        "policy": {
            "description": f"llm-audit-sidecar: keep every {prefix} record at least {retention_days} days "
            f"(retention_days={retention_days}), then delete the daily index ({days}d after its creation).",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{days}d"}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [
                {"index_patterns": list(index_patterns(prefix).values()), "priority": ISM_TEMPLATE_PRIORITY}
            ],
        }
    }


def generated_files(retention_days: int = DEFAULT_RETENTION_DAYS, *, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """File name -> exact file content, as committed under ``retention/`` for the defaults."""
    bodies: dict[str, dict[str, Any]] = {
        "ilm-policy.json": ilm_policy(retention_days, prefix=prefix),
        "index-template.json": index_template(retention_days, prefix=prefix),
        "data-stream-lifecycle.json": data_stream_template(retention_days, prefix=prefix),
        "opensearch-ism-policy.json": ism_policy(retention_days, prefix=prefix),
    }
    return {name: json.dumps(bodies[name], indent=2, ensure_ascii=False) + "\n" for name in FILES}


_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}


def parse_duration(value: Any) -> float:
    """Seconds in an Elasticsearch / OpenSearch time value (``"91d"``, ``"2184h"``, ``"0ms"``).

    Raises ``ValueError`` for anything else (no unit, a unit such as ``M`` or ``y`` that these
    settings do not accept, a negative number).
    """
    if not isinstance(value, str):
        raise ValueError(f"not a time value: {value!r}")
    text = value.strip()
    for unit in sorted(_UNIT_SECONDS, key=len, reverse=True):
        if text.endswith(unit):
            number = text[: -len(unit)].strip()
            try:
                amount = float(number)
            except ValueError:
                break
            if not math.isfinite(amount) or amount < 0:
                break
            return amount * _UNIT_SECONDS[unit]
    raise ValueError(f"not a time value with a unit of d, h, m, s, ms, micros or nanos: {value!r}")
