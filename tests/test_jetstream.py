"""The Jetstream source against the local Jetstream v2 simulator, with a real SQLite
store, the real pipeline and profile hydration from the local AppView: matching,
deletes, edits, identity and account events, the cursor across restarts and
reconnects, CursorTooOld, malformed frames, and 200,000 events at network-like rates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aggregator.bus import MemoryBus
from aggregator.config import load_config
from aggregator.demo import event_epoch, load_dataset
from aggregator.match import HashtagMatcher
from aggregator.model import Post
from aggregator.pipeline import Pipeline, Stop, new_inbox
from aggregator.sim.appview import AppViewSimulator, SimProfile
from aggregator.sim.bluesky_data import (
    LoadGenerator,
    bluesky_share,
    did_for,
    post_record,
    start_bluesky_sims,
)
from aggregator.sim.clock import SimClock
from aggregator.sim.jetstream import JetstreamSimulator, tid
from aggregator.sources.bluesky_profiles import KnownPosts, ProfileHydrator
from aggregator.sources.jetstream import JetstreamCursor, JetstreamSource, bluesky_sources
from aggregator.store import PageQuery, SQLiteStore
from aggregator.store.base import Change

TAGS = ("bluelightcamp", "blc26")
ALICE, BOB, CAROL = did_for("alice"), did_for("bob"), did_for("carol")
CREATED = "2026-11-21T10:00:00.000Z"
POST = "app.bsky.feed.post"


def uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST}/{rkey}"


def tagged(text: str = "hello", tag: str | None = "blc26", **extra: Any) -> dict[str, Any]:
    segments = [("text", f"{text} "), ("tag", tag)] if tag else [("text", text)]
    record = post_record(segments, CREATED)
    record.update(extra)
    return record


@dataclass
class Harness:
    sim: JetstreamSimulator
    url: str
    appview: AppViewSimulator
    appview_url: str
    store: SQLiteStore
    pipeline: Pipeline
    http: aiohttp.ClientSession
    changes: list[Change] = field(default_factory=list)
    tasks: dict[JetstreamSource, list[asyncio.Task[None]]] = field(default_factory=dict)

    def source(
        self,
        tags: tuple[str, ...] = TAGS,
        since: datetime | None = None,
        **kwargs: Any,
    ) -> JetstreamSource:
        known = KnownPosts()
        hydrator = ProfileHydrator(
            self.appview_url, self.http, self.pipeline.inbox, store=self.store, known=known
        )
        source = JetstreamSource(
            self.url,
            HashtagMatcher(tags),
            self.pipeline.inbox,
            self.store,
            hydrator=hydrator,
            known=known,
            since=since,
            checkpoint_every=kwargs.pop("checkpoint_every", 0.1),
            **kwargs,
        )
        self.tasks[source] = [
            asyncio.create_task(source.run()),
            asyncio.create_task(hydrator.run()),
        ]
        return source

    async def stop(self, source: JetstreamSource) -> None:
        for task in self.tasks.pop(source):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def posts(self) -> dict[str, Post]:
        found: dict[str, Post] = {}
        page = await self.store.page(PageQuery(limit=200))
        while True:
            found.update((p.id, p) for p in page.posts)
            if page.next is None:
                return found
            page = await self.store.page(PageQuery(limit=200, before=page.next))

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)

    async def stored(self, *uris: str) -> None:
        async def check() -> bool:
            return set(uris) <= set(await self.posts())

        await self.until(check)

    async def drained(self) -> None:
        """Everything handed to the inbox is stored (cursors included)."""
        await self.until(lambda: _true(self.pipeline.inbox.empty()))
        await asyncio.sleep(0.2)

    async def cursor(self) -> JetstreamCursor | None:
        return JetstreamCursor.decode(await self.store.load_cursor("bluesky:jetstream"))


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, *, retention: int = 300_000, max_lag: int = 300_000, **appview: Any
) -> AsyncIterator[Harness]:
    sim = JetstreamSimulator(retention=retention, max_lag=max_lag)
    url = await sim.start()
    profiles = [
        SimProfile(ALICE, "alice.example", "Alice A.", "https://cdn.example/alice.jpg"),
        SimProfile(BOB, "bob.example", "Bob"),
        SimProfile(CAROL, "carol.example", "Carol"),
    ]
    av = AppViewSimulator(profiles, **appview)
    av_url = await av.start()
    store = SQLiteStore(tmp_path / "bsky.db")
    await store.open()
    bus = MemoryBus()
    pipeline = Pipeline(new_inbox(), store, bus)
    pipeline_task = asyncio.create_task(pipeline.run())
    async with aiohttp.ClientSession() as http:
        h = Harness(sim, url, av, av_url, store, pipeline, http)
        sub = bus.subscribe()

        async def collect() -> None:
            async for event in sub:
                h.changes.extend(event.changes)

        collector = asyncio.create_task(collect())
        try:
            yield h
        finally:
            for source in list(h.tasks):
                await h.stop(source)
            await pipeline.inbox.put(Stop())
            await asyncio.wait_for(pipeline_task, 10)
            collector.cancel()
            await store.close()
            await sim.stop()
            await av.stop()


async def test_matching_on_tag_facets_and_the_tags_array_never_substrings(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        source = h.source(tags=("bluelightcamp", "blc26", "勉強会"))
        await h.until(lambda: _true(source.connected))
        s = h.sim
        emoji = post_record([("text", "🎉👩‍👩‍👧 é "), ("tag", "blc26"), ("text", " ✨")], CREATED)
        cases = {
            "facet": tagged("plain"),
            "tags-array": post_record(
                [("text", "no visible tag")], CREATED, tags=["BlueLightCamp"]
            ),
            "mixed-case": tagged("shout", "BlueLightCAMP"),
            "non-ascii": tagged("日本語の投稿", "勉強会"),
            "emoji-before": emoji,
            "fullwidth": tagged("wide", "ｂｌｃ２６"),
        }
        misses = {
            "near-miss": tagged("almost", "bluelightcamping"),
            "substring": tagged("camp only", "camp"),
            "text-only": post_record([("text", "typed #blc26 but no facet")], CREATED),
            "other-link": post_record([("link", "https://blc26.example/")], CREATED),
        }
        for rkey, record in {**misses, **cases}.items():
            s.publish_commit(ALICE, "create", rkey, record)
        # The same non-ASCII tag written as \\u escapes must get through the prefilter.
        s.publish_commit(
            BOB, "create", "escaped", tagged("エスケープ", "勉強会"), ensure_ascii=True
        )
        expected = {uri(ALICE, k) for k in cases} | {uri(BOB, "escaped")}
        await h.stored(*expected)
        await asyncio.sleep(0.3)
        posts = await h.posts()
        assert set(posts) == expected
        post = posts[uri(ALICE, "emoji-before")]
        assert post.text == "🎉👩‍👩‍👧 é #blc26 ✨"
        link = '<a href="https://bsky.app/hashtag/blc26" class="mention hashtag"'
        assert f'é {link} rel="nofollow noopener noreferrer">#blc26</a> ✨' in post.html
        assert posts[uri(ALICE, "tags-array")].tags == ("bluelightcamp",)
        assert source.decoded < source.events  # most frames were never decoded


async def test_posts_are_stored_at_once_then_hydrated_deletes_and_edits(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        source = h.source()
        await h.until(lambda: _true(source.connected))
        h.sim.publish_commit(ALICE, "create", "p1", tagged("first"))
        h.sim.publish_commit(ALICE, "create", "p2", tagged("second"))
        await h.stored(uri(ALICE, "p1"), uri(ALICE, "p2"))

        async def hydrated() -> bool:
            posts = await h.posts()
            return all(posts[uri(ALICE, k)].author.handle == "@alice.example" for k in ("p1", "p2"))

        await h.until(hydrated, timeout=5)
        post = (await h.posts())[uri(ALICE, "p1")]
        assert (
            post.author.name == "Alice A." and post.author.avatar == "https://cdn.example/alice.jpg"
        )
        assert post.author.url == "https://bsky.app/profile/alice.example"
        kinds = Counter((c.kind, c.id) for c in h.changes)
        assert kinds[("new", uri(ALICE, "p1"))] == 1 and kinds[("updated", uri(ALICE, "p1"))] == 1
        # Known authors come with the record: no DID-only copy, no update.
        h.sim.publish_commit(ALICE, "create", "p3", tagged("third"))
        h.sim.publish_commit(ALICE, "update", "p1", tagged("first, edited"))
        h.sim.publish_commit(ALICE, "update", "p2", tagged("tag removed", None))  # still ours
        h.sim.publish_commit(BOB, "update", "x", tagged("not ours", None))
        h.sim.publish_commit(ALICE, "delete", "p3")
        h.sim.publish_commit(BOB, "delete", "unknown")  # not ours: no tombstone
        await h.until(lambda: _true(source.deletes == 1))
        await asyncio.sleep(0.3)
        posts = await h.posts()
        assert set(posts) == {uri(ALICE, "p1"), uri(ALICE, "p2")}
        assert posts[uri(ALICE, "p1")].text == "first, edited #blc26"
        assert posts[uri(ALICE, "p2")].text == "tag removed"
        new_p3 = [c for c in h.changes if c.id == uri(ALICE, "p3") and c.kind == "new"]
        assert new_p3[0].post is not None and new_p3[0].post.author.handle == "@alice.example"
        assert ("deleted", uri(ALICE, "p3")) in {(c.kind, c.id) for c in h.changes}
        rows = await h.store.read(lambda c: c.execute("SELECT COUNT(*) FROM posts").fetchone()[0])
        assert rows == 3


async def test_handle_change_updates_the_author_and_inactive_accounts_are_retracted(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        source = h.source()
        await h.until(lambda: _true(source.connected))
        h.sim.publish_commit(BOB, "create", "b1", tagged("by bob"))
        h.sim.publish_commit(CAROL, "create", "c1", tagged("by carol"))
        h.sim.publish_commit(CAROL, "create", "c2", tagged("carol again"))

        async def authors(want: dict[str, str]) -> bool:
            posts = await h.posts()
            return all(k in posts and posts[k].author.handle == v for k, v in want.items())

        await h.until(lambda: authors({uri(BOB, "b1"): "@bob.example"}))
        h.appview.rename(BOB, "bob.new.example")
        h.sim.publish_identity(BOB, "bob.new.example")
        await h.until(lambda: authors({uri(BOB, "b1"): "@bob.new.example"}), timeout=5)
        assert (await h.posts())[
            uri(BOB, "b1")
        ].author.url == "https://bsky.app/profile/bob.new.example"
        h.sim.publish_account(did_for("stranger"), False, "deleted")  # not ours: nothing
        h.sim.publish_account(CAROL, True)  # active: nothing
        h.sim.publish_account(CAROL, False, "deactivated")
        await h.until(lambda: _true(source.deletes == 2))
        await asyncio.sleep(0.2)
        assert set(await h.posts()) == {uri(BOB, "b1")}


async def test_stop_and_restart_mid_stream_misses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        load = LoadGenerator(h.sim, tags=TAGS, match_rate=0.01, dids=300)
        h.appview.add_profiles(load.profiles())
        load.publish(20_000)
        since = datetime.now(UTC) - timedelta(minutes=5)
        first = h.source(since=since)
        await h.until(lambda: _true(first.events >= 8_000), timeout=30)
        await h.stop(first)  # mid-stream: the cursor is saved on the way out
        await h.drained()
        saved = await h.cursor()
        assert saved is not None and saved.seq is not None
        assert 1_000_000 + 7_000 <= saved.seq < h.sim.log.next_seq - 1
        # As if we had crashed a while after the last saved checkpoint: 3,000 events
        # (with matches whose authors were hydrated) come again and must change nothing.
        crashed = JetstreamCursor(saved.seq - 3_000, saved.time, saved.url)
        await h.store.save_cursor("bluesky:jetstream", crashed.encode())
        load.publish(10_000)  # the world goes on while we are down
        second = h.source(since=since)
        last = h.sim.log.next_seq - 1

        async def caught_up() -> bool:
            cursor = await h.cursor()
            return cursor is not None and cursor.seq == last

        await h.until(caught_up, timeout=30)
        await h.stored(*load.matched)
        assert h.sim.connects[-1]["cursor"] == [str(crashed.seq)]  # resumed, not from scratch
        assert "cursor" in h.sim.connects[0] and int(h.sim.connects[0]["cursor"][0]) >= 10**15
        await asyncio.sleep(0.5)
        assert set(await h.posts()) == set(load.matched)
        news = Counter(c.id for c in h.changes if c.kind == "new")
        assert set(news) == set(load.matched) and max(news.values()) == 1
        updates = Counter(c.id for c in h.changes if c.kind == "updated")
        assert max(updates.values(), default=0) <= 1  # hydration only; the replay was a no-op
        # It did not start over: one info frame and the 3,000 events since the checkpoint.
        assert first.events + second.events <= 30_000 + 3_002


async def test_reconnects_after_drops_error_frames_and_refusals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "aggregator.sources.jetstream")
    async with harness(tmp_path) as h:
        load = LoadGenerator(h.sim, tags=TAGS, match_rate=0.02, dids=100)
        h.appview.add_profiles(load.profiles())
        source = h.source(backoff=_fast_backoff())
        await h.until(lambda: _true(source.connected))
        for fault in ("drop", "ConsumerTooSlow", "refuse"):
            load.publish(2_000)
            await h.until(lambda: _true(source.events >= load.published - 50), timeout=10)
            if fault == "drop":
                h.sim.drop_connections()
            elif fault == "refuse":
                h.sim.fail_next(2, 503)
                h.sim.drop_connections()
            else:
                h.sim.send_error(fault, "you are too slow")
            load.publish(2_000)
        await h.stored(*load.matched)
        assert source.reconnects >= 3
        assert "ConsumerTooSlow: you are too slow" in caplog.text
        assert "HTTP 503" in caplog.text
        resumed = [c["cursor"][0] for c in h.sim.connects[1:] if "cursor" in c]
        assert len(resumed) == len(h.sim.connects) - 1  # every reconnect names its cursor
        news = Counter(c.id for c in h.changes if c.kind == "new")
        assert set(news) == set(load.matched) and max(news.values()) == 1


async def test_cursor_too_old_resumes_by_time_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "aggregator.sources.jetstream")
    async with harness(tmp_path, retention=2_000) as h:
        load = LoadGenerator(h.sim, tags=TAGS, match_rate=0.02, dids=100)
        h.appview.add_profiles(load.profiles())
        load.publish(6_000)
        floor = h.sim.log.floor_seq()
        retained = {
            uri(p["did"], p["rkey"])
            for p in (json.loads(e.frame)["payload"] for e in h.sim.log.events)
            if p.get("operation") == "create"
        } & set(load.matched)
        old = JetstreamCursor(1_000_100, "2026-11-21T10:00:00.000000Z", h.url)
        await h.store.save_cursor("bluesky:jetstream", old.encode())
        source = h.source()
        await h.stored(*retained)
        assert "cursor too old" in caplog.text
        assert "OutdatedCursor" in caplog.text  # the server clamped our time cursor
        refused, resumed = h.sim.connects[0], h.sim.connects[1]
        assert refused["cursor"] == ["1000100"]
        assert old.time_us is not None and old.seq is not None
        assert int(resumed["cursor"][0]) == old.time_us - 60_000_000
        last = h.sim.log.next_seq - 1

        async def saved() -> bool:
            cursor = await h.cursor()
            return cursor is not None and cursor.seq == last

        await h.until(saved)
        assert source.connected and floor > old.seq


async def test_malformed_frames_and_records_are_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with harness(tmp_path) as h:
        source = h.source()
        await h.until(lambda: _true(source.connected))
        s = h.sim
        s.publish_raw('{"$type":"message","payload":{"seq":')  # cut short
        s.publish_raw("[1, 2, 3]")
        s.publish_raw('{"$type":"mystery"}')
        s.publish_payload({"$type": "network.bsky.jetstream.subscribeEvents#future", "did": ALICE})
        s.publish_commit(
            ALICE, "create", "no-text", {"$type": POST, "createdAt": CREATED, "tags": ["blc26"]}
        )
        s.publish_commit(
            ALICE, "create", "not-a-post", tagged("x", **{"$type": "app.bsky.feed.like"})
        )
        s.publish_commit(ALICE, "create", "string-record", "#blc26")  # type: ignore[arg-type]
        s.publish_commit("not-a-did", "create", "bad-did", tagged("x"))
        s.publish_commit(ALICE, "teleport", "odd-op", tagged("x"))
        bad_offsets = tagged("offsets")
        bad_offsets["facets"][0]["index"] = {"byteStart": "9", "byteEnd": 999}
        s.publish_commit(ALICE, "create", "bad-offsets", bad_offsets)
        s.publish_commit(ALICE, "create", "fine", tagged("all good"))
        await h.stored(uri(ALICE, "fine"), uri(ALICE, "bad-offsets"))
        await asyncio.sleep(0.2)
        assert set(await h.posts()) == {uri(ALICE, "fine"), uri(ALICE, "bad-offsets")}
        assert source.reconnects == 0 and source.connected
        text = caplog.text
        for reason in (
            "invalid JSON",
            "frame is not an object",
            "unknown frame type",
            "unknown message type",
            "valid did",
            "unknown operation",
            "commit without a record",
        ):
            assert reason in text, reason
        assert "skipped a malformed item" in text  # the normaliser's verdicts, from the pipeline
        assert (await h.posts())[uri(ALICE, "bad-offsets")].html == "<p>offsets #blc26</p>"


async def test_the_cursor_is_checkpointed_while_nothing_matches(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        source = h.source()
        await h.until(lambda: _true(source.connected))
        for i in range(500):
            h.sim.publish_commit(BOB, "create", tid(10_000 + i), tagged("nothing", "other"))
        last = h.sim.log.next_seq - 1

        async def saved() -> bool:
            cursor = await h.cursor()
            return cursor is not None and cursor.seq == last and cursor.url == source.base_url

        await h.until(saved, timeout=5)
        assert source.decoded == 0  # not one of them needed decoding
        assert (await h.cursor()).time is not None  # type: ignore[union-attr]


@pytest.mark.slow
async def test_200k_events_at_half_a_percent_without_falling_behind(tmp_path: Path) -> None:
    # Live at 20,000 events/s (ten times the whole network's peak) for 10 s. The simulator
    # cuts off a subscriber more than 3 s (60,000 events) behind, as Jetstream does.
    async with harness(tmp_path, retention=100_000, max_lag=60_000) as h:
        load = LoadGenerator(h.sim, tags=TAGS, match_rate=0.005, dids=5_000)
        h.appview.add_profiles(load.profiles())
        source = h.source()
        await h.until(lambda: _true(source.connected))
        started = asyncio.get_running_loop().time()
        await load.run(20_000, 10.0)
        last = h.sim.log.next_seq - 1

        async def caught_up() -> bool:
            cursor = await h.cursor()
            return cursor is not None and cursor.seq == last

        await h.until(caught_up, timeout=20)
        elapsed = asyncio.get_running_loop().time() - started
        await h.stored(*load.matched)
        assert load.published == 200_000 and 700 <= len(load.matched) <= 1300
        assert h.sim.errors_sent == Counter() and source.reconnects == 0
        assert elapsed < 25
        assert set(await h.posts()) == set(load.matched)


async def test_factory_builds_the_sources_from_config(tmp_path: Path) -> None:
    config = load_config(env={}).with_overrides(
        event={"hashtags": ["blc26"]},
        bluesky={
            "jetstream_url": "wss://jetstream.example",
            "appview_url": "https://appview.example",
        },
    )
    store = SQLiteStore(tmp_path / "f.db")
    async with aiohttp.ClientSession() as http:
        runs = bluesky_sources(config, new_inbox(), store, http)
        assert [name for name, _ in runs] == ["bluesky:jetstream", "bluesky:profiles"]
        off = config.with_overrides(bluesky={"mode": "off"})
        assert bluesky_sources(off, new_inbox(), store, http) == []
        with_search = config.with_overrides(bluesky={"handle": "me.example", "app_password": "x"})
        names = [name for name, _ in bluesky_sources(with_search, new_inbox(), store, http)]
        assert names == ["bluesky:jetstream", "bluesky:profiles", "bluesky:search"]


async def _true(value: bool) -> bool:
    return value


def _fast_backoff() -> Any:
    from aggregator.supervise import Backoff

    return Backoff(initial=0.05, maximum=0.2)


async def test_the_demo_share_arrives_whole_through_the_factory(tmp_path: Path) -> None:
    data = load_dataset()
    epoch = event_epoch(data)
    clock = SimClock(epoch, speed=0.0, start_offset=40_000.0)  # the whole day has happened
    sims = await start_bluesky_sims(clock, data, noise_rate=0.0)
    share = bluesky_share(data)
    matcher = HashtagMatcher(data["event"]["hashtags"])
    creates = [i for i in share.script if i.op == "create" and i.at >= 0]
    deleted = set(share.uris("delete"))
    expected = {
        uri(i.did, i.rkey) for i in creates if i.record and matcher.matches_bluesky_record(i.record)
    } - deleted
    config = load_config(env={}).with_overrides(
        event={
            "hashtags": data["event"]["hashtags"],
            "timezone": "UTC",
            "start": epoch.isoformat()[:19],
        },
        bluesky=sims.config(),
    )
    store = SQLiteStore(tmp_path / "demo.db")
    await store.open()
    inbox = new_inbox()
    pipeline = Pipeline(inbox, store, MemoryBus())
    tasks = [asyncio.create_task(pipeline.run())]
    try:
        async with aiohttp.ClientSession() as http:
            tasks += [
                asyncio.create_task(run()) for _, run in bluesky_sources(config, inbox, store, http)
            ]

            async def complete() -> bool:
                page = await store.page(PageQuery(limit=200))
                ids = {p.id for p in page.posts}
                return ids == expected and all(p.author.handle.startswith("@") for p in page.posts)

            deadline = asyncio.get_running_loop().time() + 10
            while not await complete():
                assert asyncio.get_running_loop().time() < deadline, "demo share incomplete"
                await asyncio.sleep(0.05)
            page = await store.page(PageQuery(limit=200))
            handles = {p.author.handle for p in page.posts}
            assert "@hal.mbeki.example" in handles and "@hal.bsky.example" not in handles
            assert any(p.media for p in page.posts) and any(p.quote_of for p in page.posts)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
        await sims.stop()
