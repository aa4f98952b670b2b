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

from aggregator.audience import AUDIENCES, Audience, Policy, visible
from aggregator.bus import Bus, BusEvent
from aggregator.store.base import Change

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
DEFAULT_POLICY = Policy()
CLIENT_MAX_MESSAGES = 256
CLIENT_MAX_BYTES = 2 * 1024 * 1024
WRITE_HIGH_WATER = 256 * 1024  # bytes in a socket's write buffer before we stop writing
DRAIN_POLL = 0.02


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message encoded once; seqs let a resuming client skip what it already has."""

    text: str
    min_seq: int = 0
    max_seq: int = 0
    changes: tuple[Change, ...] = ()
    frame: bytes = b""  # the whole websocket frame, identical for every client

    @classmethod
    def of(
        cls, text: str, min_seq: int = 0, max_seq: int = 0, changes: tuple[Change, ...] = ()
    ) -> Encoded:
        return cls(text, min_seq, max_seq, changes, text_frame(text))


def text_frame(text: str) -> bytes:
    """An unmasked, uncompressed RFC 6455 text frame: what a server sends to any client."""
    data = text.encode("utf-8")
    size = len(data)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + data


def post_json(change: Change, audience: Audience) -> dict[str, Any]:
    assert change.post is not None
    data = change.post.to_json()
    if audience == "admin":
        data["moderation"] = {
            "state": "hidden" if change.hidden else "visible" if change.approved else "pending",
            "hidden": change.hidden,
            "approved": change.approved,
            "pinned": change.pinned,
            "rule": change.rule,
        }
    return data


def _verb(change: Change, audience: Audience, policy: Policy) -> str | None:
    """What a client of `audience` must do with a change: show, update, retract or nothing."""
    if not visible(change, audience, policy):
        # A post the audience never saw needs no retraction.
        return None if change.kind == "new" else "retract"
    if change.kind == "new" or change.surfaced:
        return "show"  # clients insert, or replace a card they already have
    return "update"


def encode_changes(
    changes: list[Change], audience: Audience = "remote", policy: Policy = DEFAULT_POLICY
) -> list[Encoded]:
    """Group consecutive changes with the same verb into messages, in seq order."""
    out: list[Encoded] = []
    group: list[Change] = []
    verb = ""

    def flush() -> None:
        if not group:
            return
        cursor = str(group[-1].seq)
        if verb == "show":
            msg: dict[str, Any] = {
                "type": "posts",
                "posts": [post_json(c, audience) for c in group],
                "cursor": cursor,
            }
            out.append(_encoded(msg, group, audience))
        elif verb == "retract":
            msg = {"type": "retract", "ids": [c.id for c in group], "cursor": cursor}
            out.append(_encoded(msg, group, audience))
        else:
            for change in group:
                msg = {
                    "type": "update",
                    "post": post_json(change, audience),
                    "cursor": str(change.seq),
                }
                out.append(_encoded(msg, [change], audience))
        group.clear()

    for change in sorted(changes, key=lambda c: c.seq):
        this = _verb(change, audience, policy)
        if this is None:
            continue
        if group and this != verb:
            flush()
        verb = this
        group.append(change)
    flush()
    return out


def _encoded(msg: dict[str, Any], group: list[Change], audience: Audience) -> Encoded:
    return Encoded.of(
        json.dumps(msg, ensure_ascii=False, separators=(",", ":")),
        min_seq=group[0].seq,
        max_seq=group[-1].seq,
        changes=tuple(group),
    )


def encode_control(msg: dict[str, Any]) -> Encoded:
    return Encoded.of(json.dumps(msg, ensure_ascii=False, separators=(",", ":")))


RESYNC = encode_control({"type": "resync"})


@dataclass(eq=False, slots=True)
class Client:
    """One connected browser.

    Once live, a message goes straight into the client's socket as the shared frame
    bytes when its write buffer is low (the common case: no task, no per-client
    encoding). Otherwise it waits in the bounded buffer, drained by a pump task that
    exists only while there is a backlog, so an idle connection costs little memory.
    """

    send: Callable[[str], Awaitable[None]]
    transport: asyncio.Transport | None = None  # None: always go through `send`
    peer: str = ""
    audience: Audience = "remote"
    policy: Callable[[], Policy] = Policy
    live: bool = False
    buffer: deque[Encoded] = field(default_factory=deque)
    buffered_bytes: int = 0
    resumed_seq: int = 0  # messages at or below this seq were sent during resume
    overflowed: bool = False
    closed: bool = False
    sent: int = 0
    on_drop: Callable[[], None] | None = None
    pump_task: asyncio.Task[None] | None = None

    def go_live(self) -> None:
        """Resume is done: send what queued up meanwhile, then write directly."""
        self.live = True
        self._kick()

    def offer(self, message: Encoded) -> bool:
        """Queue or write without waiting; False means the client is too far behind."""
        if self.overflowed or self.closed:
            return False
        transport = self.transport
        if (
            self.live
            and not self.buffer
            and transport is not None
            and transport.get_write_buffer_size() < WRITE_HIGH_WATER
        ):
            if not transport.is_closing():
                frame = self._frame_for_resumed(message)
                if frame:
                    transport.write(frame)
                    self.sent += 1
            return True
        size = len(message.text)
        if len(self.buffer) >= CLIENT_MAX_MESSAGES or self.buffered_bytes + size > CLIENT_MAX_BYTES:
            self.overflowed = True
            self.buffer.clear()
            self.buffered_bytes = 0
            self.buffer.append(RESYNC)
            self._kick()
            if self.on_drop is not None:
                self.on_drop()
            return False
        self.buffer.append(message)
        self.buffered_bytes += size
        self._kick()
        return True

    def _kick(self) -> None:
        if self.live and self.buffer and (self.pump_task is None or self.pump_task.done()):
            self.pump_task = asyncio.create_task(self.pump())

    def close(self) -> None:
        self.closed = True
        if self.pump_task is not None:
            self.pump_task.cancel()

    async def pump(self) -> None:
        """Drain the backlog at the pace the client reads, then end."""
        while self.buffer and not self.closed:
            transport = self.transport
            if transport is not None and transport.get_write_buffer_size() >= WRITE_HIGH_WATER:
                if transport.is_closing():
                    return
                await asyncio.sleep(DRAIN_POLL)  # a slow reader: wait for its window
                continue
            message = self.buffer.popleft()
            self.buffered_bytes -= len(message.text)
            if message is RESYNC:
                await self.send(message.text)
                return  # the client re-fetches and reconnects
            if transport is not None:
                frame = self._frame_for_resumed(message)
                if frame and not transport.is_closing():
                    transport.write(frame)
                    self.sent += 1
            else:
                text = self._for_resumed(message)
                if text is not None:
                    await self.send(text)
                    self.sent += 1

    def _frame_for_resumed(self, message: Encoded) -> bytes:
        if not message.max_seq or message.min_seq > self.resumed_seq:
            return message.frame or text_frame(message.text)
        text = self._for_resumed(message)
        return text_frame(text) if text is not None else b""

    def _for_resumed(self, message: Encoded) -> str | None:
        if not message.max_seq or message.min_seq > self.resumed_seq:
            return message.text
        if message.max_seq <= self.resumed_seq:
            return None  # already delivered from the store
        rest = [c for c in message.changes if c.seq > self.resumed_seq]
        encoded = encode_changes(rest, self.audience, self.policy()) if rest else []
        return encoded[0].text if encoded else None


class FanOut:
    def __init__(self, bus: Bus, *, tick: float = TICK_SECONDS) -> None:
        self.bus = bus
        self.tick = tick
        self.clients: set[Client] = set()
        self.dropped = 0
        self.batches = 0
        self.resyncs = 0  # resync messages offered (policy change, node behind the bus)
        self.last_batch_seconds = 0.0
        self.batch_listeners: list[Callable[[float], None]] = []  # e.g. a histogram
        self.policy = Policy()
        self.pinned: dict[str, Any] | None = None  # post JSON of the pinned post
        self.announcement = ""
        self._pending: list[Change] = []
        self._controls: list[tuple[Encoded, tuple[Audience, ...]]] = []
        self._wake = asyncio.Event()

    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        client.close()

    def broadcast_control(
        self, msg: dict[str, Any], audiences: tuple[Audience, ...] = AUDIENCES
    ) -> None:
        self._controls.append((encode_control(msg), audiences))
        self._wake.set()

    def current_state(self) -> list[Encoded]:
        """What a newly connected client needs besides posts: the pin and the banner."""
        return [
            encode_control({"type": "pin", "post": self.pinned}),
            encode_control({"type": "announce", "text": self.announcement}),
        ]

    def apply_control(self, control: dict[str, Any]) -> None:
        """Controls from the bus (any node's admin): update our state, pass them on."""
        kind = control.get("type")
        if kind == "pin":
            self.pinned = control.get("post")
        elif kind == "announce":
            self.announcement = str(control.get("text") or "")
        elif kind == "settings":
            old = self.policy
            settings = control.get("settings") or {}
            self.policy = Policy(
                mode="pre" if settings.get("moderation") == "pre" else "post",
                remote_shows_unmoderated=bool(settings.get("remote_shows_unmoderated")),
                paused=bool(settings.get("paused")),
            )
            self.broadcast_control(control, ("admin",))
            if old != self.policy:
                # What each screen may see changed: let them re-read the store.
                self._resync(("wall", "remote"))
            return
        self.broadcast_control(control)

    def _resync(self, audiences: tuple[Audience, ...]) -> None:
        for client in list(self.clients):
            if client.audience in audiences:
                self.resyncs += 1
                client.offer(RESYNC)

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
                self.resyncs += 1
                client.offer(RESYNC)
            return
        if event.control is not None:
            self.apply_control(event.control)
        self._pending.extend(event.changes)
        self._wake.set()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = loop.time()
            if self.flush():
                self.last_batch_seconds = loop.time() - started
                for listener in self.batch_listeners:
                    listener(self.last_batch_seconds)
            # A tick is from flush to flush: a long flush (many clients) eats into it.
            await asyncio.sleep(max(0.0, self.tick - self.last_batch_seconds))

    def flush(self) -> bool:
        """Encode what is pending once per audience and offer it to its clients."""
        if not self._pending and not self._controls:
            return False
        pending, controls = self._pending, self._controls
        self._pending, self._controls = [], []
        self.batches += 1
        by_audience: dict[Audience, list[Encoded]] = {}
        joined: dict[Audience, bytes] = {}
        floor: dict[Audience, int] = {}
        for audience in AUDIENCES:
            paused = audience == "wall" and self.policy.paused
            messages = [] if paused else encode_changes(pending, audience, self.policy)
            messages += [message for message, targets in controls if audience in targets]
            by_audience[audience] = messages
            # One write per client per tick: every frame of the tick, concatenated once.
            joined[audience] = b"".join(m.frame for m in messages)
            seqs = [m.min_seq for m in messages if m.max_seq]
            floor[audience] = min(seqs) if seqs else 1 << 62
        for client in list(self.clients):
            if client.overflowed or client.closed:
                continue
            audience = client.audience
            data = joined[audience]
            if not data:
                continue
            transport = client.transport
            if (
                client.live
                and not client.buffer
                and transport is not None
                and floor[audience] > client.resumed_seq
                and transport.get_write_buffer_size() < WRITE_HIGH_WATER
            ):
                transport.write(data)  # the common case, kept free of per-message work
                client.sent += 1
                continue
            for message in by_audience[audience]:
                if not client.offer(message):
                    self.dropped += 1
                    break
        return True
