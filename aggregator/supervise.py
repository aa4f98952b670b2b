"""Run each source as its own supervised task: a crash is logged and retried with
exponential backoff and jitter, and never reaches another source or the web server.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Exponential backoff with full jitter; pure apart from the random source."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        # Half fixed, half random: spreads reconnects without ever retrying at once.
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class SourceState:
    name: str
    state: str = "starting"  # starting | running | backoff | stopped
    failures: int = 0
    last_error: str = ""
    restarts: int = 0


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    state: SourceState | None = None,
    backoff: Backoff | None = None,
    healthy_after: float = 60.0,
) -> None:
    """Run `run()` until it returns; restart it after any exception."""
    backoff = backoff or Backoff()
    state = state or SourceState(name)
    while True:
        started = time.monotonic()
        state.state = "running"
        try:
            await run()
        except asyncio.CancelledError:
            state.state = "stopped"
            raise
        except Exception as exc:
            if time.monotonic() - started > healthy_after:
                backoff.reset()
            delay = backoff.next_delay()
            state.state = "backoff"
            state.failures += 1
            state.restarts += 1
            state.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning(
                "source %s failed (%s); restarting in %.1fs",
                name,
                state.last_error,
                delay,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            await asyncio.sleep(delay)
            continue
        state.state = "stopped"
        log.info("source %s finished", name)
        return
