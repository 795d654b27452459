"""How long to wait before a retry: the one formula every retry loop uses.

Exponential, as elastic-transport backs off from a dead node: ``base * 2**attempt`` capped at ``cap``.
With a random source the wait gets "equal jitter" (half fixed, half uniform), so many clients that failed
together do not retry together, and none retries at once. A server's Retry-After is a floor: we never
come back sooner than it asked.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 62  # 2**62 * any positive base is past every cap; keeps the power finite


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry); 0 <= result <= max(cap, retry_after)."""
    if base <= 0 or cap < base:
        raise ValueError("backoff needs base > 0 and cap >= base")
    delay = min(cap, base * 2.0 ** min(max(attempt, 0), _MAX_DOUBLINGS))
    if rng is not None:
        delay = delay / 2 + rng.uniform(0, delay / 2)
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay
