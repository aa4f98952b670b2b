"""RedisBus against a real redis-server: two buses on one store stand for two nodes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis
from factories import make_post
from servers import RedisServer, create_database, shared_postgres, shared_redis

import aggregator.bus_redis as bus_redis
from aggregator.bus import BusEvent, Subscription
from aggregator.bus_redis import RedisBus
from aggregator.store import SQLiteStore, Store
from aggregator.store.postgres import PostgresStore


@dataclass
class Node:
    bus: RedisBus
    sub: Subscription
    seen: list[tuple[str, int, str]]  # (kind, seq, id) of every change delivered
    controls: list[dict[str, object]]

    async def collect(self, timeout: float = 0.05) -> None:
        while True:
            try:
                event = await asyncio.wait_for(self.sub.queue.get(), timeout)
            except TimeoutError:
                return
            self.seen.extend((c.kind, c.seq, c.id) for c in event.changes)
            if event.control is not None:
                self.controls.append(event.control)


async def node(url: str, store: Store, channel: str) -> Node:
    bus = RedisBus(url, store, channel=channel)
    await bus.start()
    for _ in range(200):
        if bus.connected:
            break
        await asyncio.sleep(0.02)
    assert bus.connected
    return Node(bus, bus.subscribe(), [], [])


async def until(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "t.db")
    else:
        s = PostgresStore(await create_database(shared_postgres()))
    await s.open()
    yield s
    await s.close()


async def test_two_nodes_see_the_same_changes_in_the_same_order(store: Store) -> None:
    server = shared_redis()
    channel = server.new_channel()
    a, b = await node(server.url, store, channel), await node(server.url, store, channel)
    try:
        for start in range(0, 30, 5):
            changes = await store.upsert([make_post(n) for n in range(start, start + 5)])
            a.bus.publish(BusEvent(changes=tuple(changes)))  # a publishes; both hear it
        edited = await store.upsert([make_post(3, text="edited #testcamp")])
        a.bus.publish(BusEvent(changes=tuple(edited)))
        a.bus.publish(BusEvent(control={"type": "announce", "text": "lunch"}))

        async def both_done() -> bool:
            await a.collect()
            await b.collect()
            return len(a.seen) == len(b.seen) == 31 and len(b.controls) == 1

        await until(both_done)
        assert a.seen == b.seen
        assert [s for _, s, _ in b.seen] == sorted(s for _, s, _ in b.seen)
        assert [k for k, _, _ in b.seen] == ["new"] * 30 + ["updated"]
        assert a.controls == b.controls == [{"type": "announce", "text": "lunch"}]
    finally:
        await a.bus.close()
        await b.bus.close()


async def test_a_redis_restart_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    server = RedisServer()
    store = SQLiteStore(tmp_path / "t.db")
    await store.open()
    server.start()
    a = b = None
    try:
        a = await node(server.url, store, "c")
        b = await node(server.url, store, "c")
        first = await store.upsert([make_post(n) for n in range(10)])
        a.bus.publish(BusEvent(changes=tuple(first)))
        await until(lambda: _seen(b, 10))
        server.stop()
        # While Redis is down the ingest side keeps storing and publishing.
        for n in range(10, 40, 10):
            more = await store.upsert([make_post(i) for i in range(n, n + 10)])
            a.bus.publish(BusEvent(changes=tuple(more)))
        await asyncio.sleep(0.5)
        server.start()
        await until(lambda: _seen(b, 40), timeout=20)
        await until(lambda: _seen(a, 40), timeout=20)
        await asyncio.sleep(0.3)
        await b.collect()
        ids = [i for _, _, i in b.seen]
        assert len(ids) == len(set(ids)) == 40
        assert sorted(ids) == sorted(make_post(n).id for n in range(40))
    finally:
        for n in (a, b):
            if n is not None:
                await n.bus.close()
        await store.close()
        server.destroy()


async def test_malformed_messages_are_skipped_and_a_lost_message_is_caught_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bus_redis, "CHECK_EVERY", 0.2)
    server = shared_redis()
    channel = server.new_channel()
    store = SQLiteStore(tmp_path / "t.db")
    await store.open()
    b = await node(server.url, store, channel)
    client = redis.from_url(server.url)
    try:
        with caplog.at_level(logging.WARNING, logger="aggregator.bus_redis"):
            for junk in (b"not json", b'{"changes": [[1]]}', b'{"control": [1, 2]}', b"\xff"):
                await client.publish(channel, junk)
            await client.publish(channel, b'{"control": {"type": "announce", "text": "ok"}}')
            await until(lambda: _controls(b, 1))
        assert b.controls == [{"type": "announce", "text": "ok"}]
        assert caplog.text.count("skipped a malformed message") == 4
        # A write whose message never went out (a crash between commit and publish):
        # the periodic check still delivers it.
        await store.upsert([make_post(1)])
        await until(lambda: _seen(b, 1), timeout=5)
    finally:
        await client.aclose()
        await b.bus.close()
        await store.close()


async def _seen(n: Node, count: int) -> bool:
    await n.collect(0.01)
    return len(n.seen) >= count


async def _controls(n: Node, count: int) -> bool:
    await n.collect(0.01)
    return len(n.controls) >= count
