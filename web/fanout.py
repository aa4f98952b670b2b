"""FanOut: one bus subscription per node, turned into websocket messages for every client.

Changes are gathered for a short tick and encoded once per tick, not once per client.
Each client has a bounded buffer (messages and bytes); a client that falls behind is sent
`resync` and closed, so it can never stall the others or grow memory without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.bus import BusEvent, MemoryBus
from aggregator.store.base import Change

log = logging.getLogger(__name__)

TICK_SECONDS = 0.15
CLIENT_MAX_MESSAGES = 256
CLIENT_MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message encoded once; seqs let a resuming client skip what it already has."""

    text: str
    min_seq: int = 0
    max_seq: int = 0
    changes: tuple[Change, ...] = ()


def encode_changes(changes: list[Change]) -> list[Encoded]:
    """Group consecutive changes of one kind into messages, in seq order."""
    out: list[Encoded] = []
    group: list[Change] = []

    def flush() -> None:
        if not group:
            return
        kind = group[0].kind
        cursor = str(group[-1].seq)
        if kind == "new":
            msg: dict[str, Any] = {
                "type": "posts",
                "posts": [c.post.to_json() for c in group if c.post is not None],
                "cursor": cursor,
            }
            out.append(_encoded(msg, group))
        elif kind == "deleted":
            msg = {"type": "retract", "ids": [c.id for c in group], "cursor": cursor}
            out.append(_encoded(msg, group))
        else:
            for change in group:
                assert change.post is not None
                msg = {"type": "update", "post": change.post.to_json(), "cursor": str(change.seq)}
                out.append(_encoded(msg, [change]))
        group.clear()

    for change in sorted(changes, key=lambda c: c.seq):
        if group and group[0].kind != change.kind:
            flush()
        group.append(change)
    flush()
    return out


def _encoded(msg: dict[str, Any], group: list[Change]) -> Encoded:
    return Encoded(
        json.dumps(msg, ensure_ascii=False, separators=(",", ":")),
        min_seq=group[0].seq,
        max_seq=group[-1].seq,
        changes=tuple(group),
    )


def encode_control(msg: dict[str, Any]) -> Encoded:
    return Encoded(json.dumps(msg, ensure_ascii=False, separators=(",", ":")))


RESYNC = encode_control({"type": "resync"})


@dataclass(eq=False)
class Client:
    """One connected browser; `send` is the websocket's send_str."""

    send: Callable[[str], Awaitable[None]]
    peer: str = ""
    buffer: deque[Encoded] = field(default_factory=deque)
    buffered_bytes: int = 0
    resumed_seq: int = 0  # messages at or below this seq were sent during resume
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0

    def offer(self, message: Encoded) -> bool:
        """Queue without waiting; False means the client is too far behind."""
        if self.overflowed:
            return False
        size = len(message.text)
        if len(self.buffer) >= CLIENT_MAX_MESSAGES or self.buffered_bytes + size > CLIENT_MAX_BYTES:
            self.overflowed = True
            self.buffer.clear()
            self.buffered_bytes = 0
            self.buffer.append(RESYNC)
            self.ready.set()
            self.dropped.set()
            return False
        self.buffer.append(message)
        self.buffered_bytes += size
        self.ready.set()
        return True

    async def pump(self) -> None:
        """Send buffered messages until the client overflows or goes away."""
        while not self.closed.is_set():
            await self.ready.wait()
            self.ready.clear()
            while self.buffer:
                message = self.buffer.popleft()
                self.buffered_bytes -= len(message.text)
                text = self._for_resumed(message)
                if text is not None:
                    await self.send(text)
                    self.sent += 1
                if message is RESYNC:
                    return  # the client re-fetches and reconnects

    def _for_resumed(self, message: Encoded) -> str | None:
        if not message.max_seq or message.min_seq > self.resumed_seq:
            return message.text
        if message.max_seq <= self.resumed_seq:
            return None  # already delivered from the store
        rest = [c for c in message.changes if c.seq > self.resumed_seq]
        return encode_changes(rest)[0].text if rest else None


class FanOut:
    def __init__(self, bus: MemoryBus, *, tick: float = TICK_SECONDS) -> None:
        self.bus = bus
        self.tick = tick
        self.clients: set[Client] = set()
        self.dropped = 0
        self.batches = 0
        self.last_batch_seconds = 0.0
        self.on_resync: Callable[[], None] | None = None
        self._pending: list[Change] = []
        self._controls: list[Encoded] = []
        self._wake = asyncio.Event()

    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        client.closed.set()
        client.ready.set()

    def broadcast_control(self, msg: dict[str, Any]) -> None:
        self._controls.append(encode_control(msg))
        self._wake.set()

    async def run(self) -> None:
        sub = self.bus.subscribe()
        ticker = asyncio.create_task(self._tick_loop())
        try:
            async for event in sub:
                self._accept(event)
        finally:
            ticker.cancel()
            self.bus.unsubscribe(sub)

    def _accept(self, event: BusEvent) -> None:
        if event.resync:
            # The node itself fell behind the bus: every client must re-read the store.
            self._pending.clear()
            for client in list(self.clients):
                client.offer(RESYNC)
            return
        if event.control is not None:
            self._controls.append(encode_control(event.control))
        self._pending.extend(event.changes)
        self._wake.set()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = loop.time()
            self.flush()
            self.last_batch_seconds = loop.time() - started
            await asyncio.sleep(self.tick)

    def flush(self) -> None:
        """Encode what is pending once and offer it to every client."""
        if not self._pending and not self._controls:
            return
        messages = [*encode_changes(self._pending), *self._controls]
        self._pending = []
        self._controls = []
        self.batches += 1
        for client in list(self.clients):
            if client.overflowed:
                continue
            for message in messages:
                if not client.offer(message):
                    self.dropped += 1
                    break
