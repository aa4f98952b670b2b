"""Virtual time for the simulators.

`SimClock` maps a real monotonic clock onto a virtual timeline that starts at `epoch`:

    virtual = epoch + start_offset + (now - t0) * speed + advanced

`speed=0` gives a manual clock that only moves when `advance()` or `set_offset()` is called,
which is what deterministic tests use. The time function is injectable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """Virtual clock: seconds since `epoch`, running `speed` times faster than real time."""

    def __init__(
        self,
        epoch: datetime,
        *,
        speed: float = 1.0,
        start_offset: float = 0.0,
        time_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.epoch = epoch.astimezone(UTC)
        self.speed = float(speed)
        self._time_fn = time_fn
        self._t0 = time_fn()
        self._base = float(start_offset)

    @classmethod
    def manual(cls, epoch: datetime, offset: float = 0.0) -> SimClock:
        """A clock that stands still until `advance()`/`set_offset()` moves it."""
        return cls(epoch, speed=0.0, start_offset=offset)

    def offset(self) -> float:
        """Virtual seconds since `epoch` (negative before it)."""
        return self._base + (self._time_fn() - self._t0) * self.speed

    def now(self) -> datetime:
        """The current virtual time as an aware UTC datetime."""
        return self.epoch + timedelta(seconds=self.offset())

    def advance(self, seconds: float) -> float:
        """Move virtual time forward (or back, if negative); returns the new offset."""
        self._base += float(seconds)
        return self.offset()

    def set_offset(self, offset: float) -> None:
        """Jump to `offset` virtual seconds since `epoch`, keeping the speed."""
        self._base = float(offset)
        self._t0 = self._time_fn()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on without jumping."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        current = self.offset()
        self.speed = float(speed)
        self.set_offset(current)

    def real_seconds_until(self, offset: float) -> float | None:
        """Real seconds until the clock reaches `offset` (None if it never will)."""
        remaining = offset - self.offset()
        if remaining <= 0:
            return 0.0
        if self.speed == 0:
            return None
        return remaining / self.speed
