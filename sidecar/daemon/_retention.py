"""Retention in force from the first run: `sidecar run` installs or records the policy on start and runs
the enforcer then, and hourly after (until the install succeeds, it is retried every minute)."""

from __future__ import annotations

import io
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidecar.config import ShipperSettings

log = logging.getLogger("sidecar.retention")


class RetentionKeeper:
    """``tick()`` from the shipping loop: the first call applies the policy (ILM / ISM where the cluster
    has it, else the enforcer's limit recorded in the cluster or store) and runs the enforcer."""

    def __init__(self, settings: ShipperSettings, *, period: float = 3600.0, retry: float = 60.0) -> None:
        self.settings = settings
        self.period = period
        self.retry = retry
        self.installed = False
        self._next = 0.0

    def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        ok = self.enforce() if self.installed else self.install()
        self._next = time.monotonic() + (self.period if ok else self.retry)

    def install(self) -> bool:
        from sidecar.retention import retention_apply

        out = io.StringIO()
        try:
            rc = retention_apply(self.settings, out=out)
        except Exception as exc:  # unreachable cluster, refused request: retried soon
            log.warning("retention policy not installed yet (%s); retrying in %.0f s", exc, self.retry)
            return False
        for line in out.getvalue().splitlines():
            log.info("retention: %s", line)
        self.installed = rc == 0
        if not self.installed:
            log.warning("retention apply exited %d; retrying in %.0f s", rc, self.retry)
        return self.installed

    def enforce(self) -> bool:
        from sidecar.retention import enforce

        report = enforce(self.settings)
        for line in report.lines():
            log.info("retention: %s", line)
        return True
