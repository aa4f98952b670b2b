"""The in-process bus: the store's changes and organiser actions, published once, read by
every fan-out on this node. A subscriber that cannot keep up is told to resync instead of
growing memory or slowing the publisher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from aggregator.store.base import Change, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BusEvent:
    changes: tuple[Change, ...] = ()
    control: dict[str, Any] | None = None  # e.g. {"type": "announce", ...}
    resync: bool = False  # the subscriber missed events and must re-read the store


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[BusEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    async def __aiter__(self) -> AsyncIterator[BusEvent]:
        while True:
            event = await self.queue.get()
            yield event


class MemoryBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    async def start(self) -> None:
        """Nothing to connect: here for the same lifecycle as `RedisBus`."""

    async def ping(self) -> bool:
        return True

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def publish(self, event: BusEvent) -> None:
        for sub in self._subscribers:
            try:
                sub.queue.put_nowait(event)
                sub.overflowed = False
            except asyncio.QueueFull:
                if not sub.overflowed:
                    log.warning("bus: subscriber fell behind; it will resync from the store")
                    sub.overflowed = True
                    _replace_with_resync(sub.queue)

    async def close(self) -> None:
        self._subscribers.clear()


class Bus(Protocol):
    """What the pipeline, the admin API and the fan-out need of a bus."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    def subscribe(self) -> Subscription: ...

    def unsubscribe(self, sub: Subscription) -> None: ...

    def publish(self, event: BusEvent) -> None: ...


def open_bus(url: str, store: Store) -> Bus:
    """The bus for a `bus.url`: in-process, or Redis shared by several nodes."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from aggregator.bus_redis import RedisBus

        return RedisBus(url, store)
    return MemoryBus()


def _replace_with_resync(queue: asyncio.Queue[BusEvent]) -> None:
    # Drop what is queued: the subscriber will re-read everything from the store anyway.
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(BusEvent(resync=True))
