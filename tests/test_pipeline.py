"""Pipeline and supervision: malformed items are skipped, order and cursors hold, one
failing source never stops another."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest
from factories import make_post

from aggregator.bus import MemoryBus
from aggregator.pipeline import Checkpoint, Delete, Pipeline, RawItem, Stop, new_inbox
from aggregator.store import SQLiteStore
from aggregator.supervise import Backoff, SourceState, supervise


@pytest.fixture
async def parts(tmp_path: Path):
    store = SQLiteStore(tmp_path / "p.db")
    await store.open()
    bus = MemoryBus()
    inbox = new_inbox()
    pipeline = Pipeline(inbox, store, bus)
    yield inbox, store, bus, pipeline
    await store.close()


async def test_posts_deletes_and_cursors_in_order(parts, caplog: pytest.LogCaptureFixture) -> None:
    inbox, store, bus, pipeline = parts
    sub = bus.subscribe()
    caplog.set_level(logging.WARNING)
    await inbox.put(RawItem("test", "post", make_post(1)))
    await inbox.put(
        RawItem("test", "mastodon.status", {"not": "a status"}, {"server": "https://x.example"})
    )
    await inbox.put(RawItem("test", "no-such-kind", {}))
    await inbox.put(RawItem("test", "post", make_post(2)))
    await inbox.put(RawItem("test", "post", make_post(2)))  # repeat: no change
    await inbox.put(Delete("test", post_id=make_post(1).id))
    await inbox.put(Checkpoint("test", "c2"))
    await inbox.put(Stop())
    await pipeline.run()
    assert await store.load_cursor("test") == "c2"
    assert await store.count() == 1
    events = []
    while not sub.queue.empty():
        events.append(sub.queue.get_nowait())
    kinds = [(c.kind, c.id) for e in events for c in e.changes]
    assert kinds == [
        ("new", make_post(1).id),
        ("new", make_post(2).id),
        ("deleted", make_post(1).id),
    ]
    assert pipeline.stats.rejected == 2
    assert "malformed" in caplog.text and "unknown kind" in caplog.text


async def test_bus_subscriber_that_falls_behind_gets_resync() -> None:
    bus = MemoryBus()
    sub = bus.subscribe()
    from aggregator.bus import BusEvent

    for _ in range(sub.queue.maxsize + 5):
        bus.publish(BusEvent())
    # Everything it could not take is replaced by one resync; later events follow it.
    assert sub.queue.get_nowait().resync
    assert sub.queue.qsize() == 4


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(initial=1, maximum=30, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    assert 0.5 <= delays[0] <= 1.0
    assert all(d <= 30 for d in delays)
    assert delays[6] >= 15  # capped at 30, at least half of it
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_one_crashing_source_does_not_stop_another() -> None:
    ticks = 0
    crashes = 0

    async def healthy() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def broken() -> None:
        nonlocal crashes
        crashes += 1
        raise RuntimeError("server exploded")

    bad_state = SourceState("bad")
    tasks = [
        asyncio.create_task(supervise("good", healthy)),
        asyncio.create_task(
            supervise("bad", broken, state=bad_state, backoff=Backoff(initial=0.01, maximum=0.05))
        ),
    ]
    await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert crashes >= 5  # retried with backoff
    assert ticks >= 20  # and the healthy one kept running throughout
    assert "server exploded" in bad_state.last_error
