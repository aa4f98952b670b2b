"""Rate limiting as Mastodon does it (rack-attack throttles, config/initializers/rack_attack.rb).

Fixed windows aligned to multiples of the period; every response carries
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (ISO 8601 with
microseconds, the end of the current window). The window uses the wall clock, since that
is what a client's own timers see.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime


class RateLimiter:
    """Fixed windows aligned to multiples of the period, like rack-attack's throttle."""

    def __init__(self, limit: int, period: float, wall: Callable[[], float]) -> None:
        self.limit, self.period, self.wall = limit, period, wall
        self.counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        now = self.wall()
        window = int(now // self.period)
        count = self.counts.get((key, window), 0) + 1
        self.counts[(key, window)] = count
        if len(self.counts) > 1000:  # forget old windows
            self.counts = {k: v for k, v in self.counts.items() if k[1] >= window}
        reset = (window + 1) * self.period
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - count, 0)),
            "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
        }
        if count > self.limit:
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return False, headers
        return True, headers
