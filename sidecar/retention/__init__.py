"""Retention: at least 90 days, as code.

* :func:`retention_apply` / :func:`retention_verify` — ``sidecar retention apply [--dry-run]`` and
  ``sidecar retention verify`` (exit codes 0 ok, 1 failure found, 2 configuration error).
* :func:`enforce` — one pass of the sidecar's own enforcer (delete whole daily indices / store days
  past the limit); ``sidecar run`` calls it periodically.
* Policy generators (ILM, index template, data stream lifecycle, OpenSearch ISM), written to
  ``retention/`` by ``python -m sidecar.retention.generate``.

See ``docs/retention.md``.
"""

from sidecar.retention._apply import retention_apply, retention_verify
from sidecar.retention._cluster import Client, ClusterError, ClusterInfo, detect
from sidecar.retention._enforcer import EnforceReport, Partition, enforce, is_expired, newest_expired_day
from sidecar.retention._policies import (
    RetentionConfigError,
    check_retention_days,
    data_stream_template,
    generated_files,
    ilm_policy,
    index_template,
    ism_policy,
    policy_name,
)

__all__ = [
    "Client",
    "ClusterError",
    "ClusterInfo",
    "EnforceReport",
    "Partition",
    "RetentionConfigError",
    "check_retention_days",
    "data_stream_template",
    "detect",
    "enforce",
    "generated_files",
    "ilm_policy",
    "index_template",
    "is_expired",
    "ism_policy",
    "newest_expired_day",
    "policy_name",
    "retention_apply",
    "retention_verify",
]
