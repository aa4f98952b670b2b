"""RedisBus: the bus shared by an `ingest` node and any number of `serve` nodes.

Why Redis pub/sub and not Redis Streams: the store is already the durable, ordered log.
Every post change has a `seq` that the store hands out in commit order on every backend,
and `changes_since(seq)` replays it (it is what resuming websocket clients use). So a
message on the bus only has to say "the log grew to seq N" (plus the organiser controls,
which are not in the log); each node reads the changes themselves from the store after
its own `last_seq`. A message lost while Redis or the network blinks costs nothing: the
next message, the reconnect, or the periodic check reads everything after `last_seq`,
so every node delivers every change exactly once and in the same order. Streams would
add retention, trimming and consumer bookkeeping for a guarantee the store already gives.

What a message carries: `{"node", "changes": [[seq, kind, surfaced], ...], "control",
"resync"}`. The kinds let the receiving node tell a new post (animated on the wall) from
an update, which the store's latest-state log cannot; a change read after a gap falls
back to "show or replace", which every client handles.

Controls (announcements, pins, settings, bans) reach every node, the publisher's
included, in the order they were published. If Redis is down they wait in a bounded
outbox and go out when it is back; the moderation state itself is in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import uuid
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from aggregator.bus import BusEvent, MemoryBus, Subscription
from aggregator.store.base import Change, Store
from aggregator.supervise import Backoff

log = logging.getLogger(__name__)

CHANNEL = "backchannel:changes"
OUTBOX_SIZE = 10_000
READ_BATCH = 500
CHECK_EVERY = 5.0  # seconds between checks of the store's seq, in case a message was lost

Hint = tuple[str, bool]  # (kind, surfaced) of a change, by seq


class RedisBus:
    def __init__(self, url: str, store: Store, *, channel: str = CHANNEL) -> None:
        self.url = url
        self.store = store
        self.channel = channel
        self.node = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.last_seq = 0
        self.connected = False
        self.published = 0
        self.received = 0
        self._local = MemoryBus()
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=OUTBOX_SIZE)
        self._hints: dict[int, Hint] = {}
        self._client: redis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._catch_up_lock = asyncio.Lock()

    # the MemoryBus interface ------------------------------------------------------------

    def subscribe(self) -> Subscription:
        return self._local.subscribe()

    def unsubscribe(self, sub: Subscription) -> None:
        self._local.unsubscribe(sub)

    def publish(self, event: BusEvent) -> None:
        """Queue `event` for every node; this node hears it back from Redis like the rest."""
        message = {
            "node": self.node,
            "changes": [[c.seq, c.kind, c.surfaced] for c in event.changes],
            "control": event.control,
            "resync": event.resync,
        }
        try:
            self._outbox.put_nowait(json.dumps(message, separators=(",", ":")))
        except asyncio.QueueFull:
            # Changes are not lost (the store has them); only a control can be.
            log.error("bus: Redis outbox full; dropped a message (control: %s)", event.control)

    async def start(self) -> None:
        self._client = redis.from_url(self.url, socket_connect_timeout=5, health_check_interval=15)
        self.last_seq = await self.store.last_seq()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="bus:redis-send"),
            asyncio.create_task(self._listen_loop(), name="bus:redis-listen"),
            asyncio.create_task(self._check_loop(), name="bus:redis-check"),
        ]

    async def close(self) -> None:
        # Let queued messages go out (a shutting-down ingest node's last changes).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain_outbox(), timeout=2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
        await self._local.close()

    async def ping(self) -> bool:
        """Whether Redis answers now (for readiness checks)."""
        if self._client is None:
            return False
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    # sending --------------------------------------------------------------------------

    async def _drain_outbox(self) -> None:
        while not self._outbox.empty() and self.connected:
            await asyncio.sleep(0.01)

    async def _send_loop(self) -> None:
        assert self._client is not None
        backoff = Backoff(initial=0.1, maximum=5.0)
        while True:
            message = await self._outbox.get()
            while True:
                try:
                    await self._client.publish(self.channel, message)
                    self.published += 1
                    backoff.reset()
                    break
                except (RedisError, OSError) as exc:
                    delay = backoff.next_delay()
                    log.warning("bus: Redis publish failed (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)

    # receiving ------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        assert self._client is not None
        backoff = Backoff(initial=0.1, maximum=5.0)
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if not self.connected:
                    log.info("bus: subscribed to %s on %s", self.channel, _redact(self.url))
                self.connected = True
                backoff.reset()
                # What was published while we were not listening is in the store.
                await self._catch_up()
                async for raw in pubsub.listen():
                    if raw.get("type") == "message":
                        await self._on_message(raw.get("data"))
            except (RedisError, OSError) as exc:
                self.connected = False
                delay = backoff.next_delay()
                log.warning("bus: Redis connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _on_message(self, data: Any) -> None:
        try:
            message = json.loads(data)
            changes = [(int(s), str(k), bool(f)) for s, k, f in message.get("changes") or []]
            control = message.get("control")
            if control is not None and not isinstance(control, dict):
                raise ValueError("control is not an object")
        except (ValueError, TypeError) as exc:
            log.warning("bus: skipped a malformed message: %s", exc)
            return
        self.received += 1
        for seq, kind, surfaced in changes:
            if seq > self.last_seq:
                self._hints[seq] = (kind, surfaced)
        if changes and max(seq for seq, _, _ in changes) > self.last_seq:
            # Only up to what this message announces: later commits come with their own
            # message, and their kinds with it.
            await self._catch_up(upto=max(seq for seq, _, _ in changes))
        if control is not None:
            self._local.publish(BusEvent(control=control))
        if message.get("resync"):
            self._local.publish(BusEvent(resync=True))

    async def _check_loop(self) -> None:
        # A store seq that was already there one period ago and is still not delivered
        # means its message was lost (a crash between commit and publish): read it.
        seen_in_store = 0
        while True:
            await asyncio.sleep(CHECK_EVERY)
            try:
                if seen_in_store > self.last_seq:
                    log.info(
                        "bus: changes up to seq %d were never announced; reading them",
                        seen_in_store,
                    )
                    await self._catch_up(upto=seen_in_store)
                seen_in_store = await self.store.last_seq()
            except Exception as exc:  # a store blip must not end the checks
                log.warning("bus: store check failed: %s", exc)

    async def _catch_up(self, upto: int | None = None) -> None:
        """Deliver every change after `last_seq` (up to `upto`), in seq order, once."""
        async with self._catch_up_lock:
            try:
                while upto is None or self.last_seq < upto:
                    changes = await self.store.changes_since(self.last_seq, READ_BATCH)
                    full = len(changes) == READ_BATCH
                    if upto is not None:
                        changes = [c for c in changes if c.seq <= upto]
                    if not changes:
                        return
                    restored = tuple(self._restore(c) for c in changes)
                    self.last_seq = changes[-1].seq
                    self._local.publish(BusEvent(changes=restored))
                    if not full:
                        return
            finally:
                # A post changed twice before we read it keeps only its newest seq.
                self._hints = {s: h for s, h in self._hints.items() if s > self.last_seq}

    def _restore(self, change: Change) -> Change:
        hint = self._hints.pop(change.seq, None)
        if hint is None or change.kind == "deleted":
            return change
        kind, surfaced = hint
        if kind not in ("new", "updated"):
            return change
        return dataclasses.replace(change, kind=kind, surfaced=surfaced)  # type: ignore[arg-type]


def _redact(url: str) -> str:
    _, sep, tail = url.rpartition("@")
    return f"redis://…@{tail}" if sep else url
