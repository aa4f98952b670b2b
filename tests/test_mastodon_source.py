"""The Mastodon source against simulated servers: several servers, outages, rate limits,
streaming with REST catch-up, refused tokens, malformed payloads. Real loopback HTTP and
websockets, a real SQLite store and pipeline; the simulators' clocks are driven by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aggregator.bus import MemoryBus
from aggregator.demo import event_epoch, load_dataset
from aggregator.pipeline import Pipeline, new_inbox
from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view
from aggregator.sources.mastodon import MastodonSource
from aggregator.sources.mastodon_poll import PollTiming
from aggregator.store import PageQuery, SQLiteStore
from aggregator.supervise import Backoff, supervise

EPOCH = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
FAST = PollTiming(interval=0.05, min_interval=0.05, refresh_every=0.2)


def status_item(
    n: int,
    at: float,
    *,
    host: str = "social.example",
    tag: str = "testcamp",
    content: str | None = None,
) -> dict[str, Any]:
    user = f"user{n % 7}"
    return {
        "at": at,
        "op": "create",
        "status": {
            "uri": f"https://{host}/users/{user}/statuses/{1000 + n}",
            "url": f"https://{host}/@{user}/{1000 + n}",
            "account": {
                "id": str(n % 7 + 1),
                "username": user,
                "acct": f"{user}@{host}",
                "display_name": f"User {n % 7}",
                "url": f"https://{host}/@{user}",
                "avatar": "",
                "avatar_static": "",
                "bot": False,
                "discoverable": True,
                "noindex": False,
                "emojis": [],
            },
            "in_reply_to_uri": None,
            "reblog_uri": None,
            "reblog": None,
            "content": content if content is not None else f"<p>post {n} #{tag}</p>",
            "spoiler_text": "",
            "sensitive": False,
            "visibility": "public",
            "language": "en",
            "edited_at": None,
            "favourites_count": n % 4,
            "reblogs_count": 0,
            "replies_count": 0,
            "tags": [{"name": tag, "url": f"https://{host}/tags/{tag}"}],
            "mentions": [],
            "emojis": [],
            "media_attachments": [],
            "card": None,
            "poll": None,
        },
    }


@dataclass
class Harness:
    sim: MastodonSimulator
    urls: list[str]
    store: SQLiteStore
    pipeline: Pipeline
    bus: MemoryBus
    http: aiohttp.ClientSession
    tasks: list[asyncio.Task[None]]

    def source(
        self,
        url: str,
        *,
        token: str | None = None,
        streaming: bool = True,
        tags: tuple[str, ...] = ("testcamp",),
    ) -> MastodonSource:
        source = MastodonSource(
            url,
            list(tags),
            self.pipeline.inbox,
            self.store,
            self.http,
            since=EPOCH - timedelta(hours=1),
            timing=FAST,
            token=token,
            streaming=streaming,
        )
        # Supervised as in production: a failed run is restarted with (fast) backoff.
        backoff = Backoff(initial=0.05, maximum=0.5)
        self.tasks.append(asyncio.create_task(supervise(source.name, source.run, backoff=backoff)))
        return source

    async def stored_ids(self) -> list[str]:
        page = await self.store.page(PageQuery(limit=200))
        ids = [p.id for p in page.posts]
        while page.next:
            page = await self.store.page(PageQuery(limit=200, before=page.next))
            ids += [p.id for p in page.posts]
        return ids

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path,
    items: list[dict[str, Any]],
    servers: list[ServerSettings],
    clock: SimClock,
    accounts: list[dict[str, Any]] | None = None,
    epoch: datetime = EPOCH,
) -> AsyncIterator[Harness]:
    sim = MastodonSimulator(items, clock, epoch, servers, accounts=accounts or ())
    urls = await sim.start()
    store = SQLiteStore(tmp_path / "m.db")
    await store.open()
    bus = MemoryBus()
    pipeline = Pipeline(new_inbox(), store, bus)
    tasks = [asyncio.create_task(pipeline.run())]
    async with aiohttp.ClientSession() as http:
        h = Harness(sim, urls, store, pipeline, bus, http, tasks)
        try:
            yield h
        finally:
            for task in h.tasks:
                task.cancel()
            await asyncio.gather(*h.tasks, return_exceptions=True)
            await store.close()
            await sim.stop()


async def test_three_servers_sharing_posts_give_each_post_once(tmp_path: Path) -> None:
    data = load_dataset()
    clock = SimClock.manual(event_epoch(data), offset=10**6)  # the whole day has happened
    servers = [
        ServerSettings(host="social.bluelight.example"),
        ServerSettings(host="mastodon.example", sees=federated_view("mastodon.example")),
        ServerSettings(host="fedi.example.org", sees=federated_view("fedi.example.org", 0.7)),
    ]
    async with harness(
        tmp_path, data["items"], servers, clock, data["accounts"], event_epoch(data)
    ) as h:
        expected = h.sim.expected_visible_uris()
        for url in h.urls:
            source = h.source(url, tags=("bluelightcamp", "blc26"))
            source.since = event_epoch(data) - timedelta(hours=2)

        async def all_there() -> bool:
            return set(await h.stored_ids()) >= expected

        await h.until(all_there, timeout=20)
        ids = await h.stored_ids()
        assert len(ids) == len(set(ids)) == len(expected)
        # The author and content are the original's, whichever server delivered it.
        by_uri = {i["status"]["uri"]: i["status"] for i in data["items"] if i["op"] == "create"}
        for post in (await h.store.page(PageQuery(limit=200))).posts:
            original = by_uri[post.id]
            assert post.author.url == original["account"]["url"]
            assert post.author.handle == "@" + original["account"]["acct"]


async def test_ten_minute_outage_with_500_posts_loses_nothing(tmp_path: Path) -> None:
    clock = SimClock.manual(EPOCH, offset=0)
    before = [status_item(n, at=n) for n in range(20)]
    during = [status_item(n, at=60 + n) for n in range(20, 520)]  # 500 posts in 10 min
    async with harness(
        tmp_path, before + during, [ServerSettings(host="social.example")], clock
    ) as h:
        h.source(h.urls[0])
        clock.set_offset(30)
        await h.until(lambda: _count(h, 20))
        h.sim.fail_next(10**6, status=503)  # the server goes down
        clock.set_offset(60 + 600)  # ten minutes pass, 500 posts are published
        await asyncio.sleep(0.5)
        assert await h.store.count() == 20
        h.sim.clear_faults()  # back up: the poller pages forward through every page
        await h.until(lambda: _count(h, 520), timeout=20)
        ids = await h.stored_ids()
        assert len(ids) == len(set(ids)) == 520


async def _count(h: Harness, n: int) -> bool:
    return await h.store.count() == n


async def test_rate_limits_slow_the_poller_and_429_is_waited_out(tmp_path: Path) -> None:
    clock = SimClock.manual(EPOCH, offset=100)
    items = [status_item(n, at=n) for n in range(5)]
    # A small budget in a short window: the poller must spread its requests over it.
    settings = ServerSettings(host="social.example", rate_limit=20, rate_period_s=4.0)
    async with harness(tmp_path, items, [settings], clock) as h:
        h.source(h.urls[0])
        await asyncio.sleep(6.0)
        records = h.sim.requests(0)
        statuses = [r.status for r in records]
        # Never over budget by more than the one request that discovers a 429.
        assert statuses.count(429) <= 1, statuses
        assert len(records) <= 20 * 6 / 4 + 3, len(records)
        # After a 429 nothing is sent until the window resets (no burst).
        if 429 in statuses:
            i = statuses.index(429)
            gap = records[i + 1].at - records[i].at if i + 1 < len(records) else 99
            assert gap >= 0.5


async def test_streaming_with_token_delivers_edits_and_deletes_and_backfills_gaps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = SimClock.manual(EPOCH, offset=0)
    items = [status_item(n, at=10 + n) for n in range(30)]
    items.append(
        {
            "at": 50,
            "op": "edit",
            "uri": items[3]["status"]["uri"],
            "content": "<p>edited post 3 #testcamp</p>",
        }
    )
    items.append({"at": 55, "op": "delete", "uri": items[4]["status"]["uri"]})
    items += [status_item(n, at=30 + n) for n in range(30, 40)]  # at 60..69
    settings = ServerSettings(host="social.example", require_token=True)
    async with harness(tmp_path, items, [settings], clock) as h:
        source = h.source(h.urls[0], token="sim-token")
        await h.until(lambda: _streams(h, 1))
        assert source.mode == "streaming"
        clock.set_offset(25)  # 16 posts released while streaming
        await h.until(lambda: _count(h, 16))
        clock.set_offset(56)  # the rest, an edit and a delete (by local id)
        await h.until(lambda: _count(h, 29))
        edited = await h.store.get(items[3]["status"]["uri"])
        await h.until(lambda: _text_is(h, items[3]["status"]["uri"], "edited post 3 #testcamp"))
        assert edited is not None
        assert await h.store.get(items[4]["status"]["uri"]) is None
        # Cut the stream; ten posts are published before it reconnects (its backoff is at
        # least half a second) and the new stream does not replay them: REST must.
        await h.sim.drop_streams()
        clock.set_offset(75)
        await h.until(lambda: _count(h, 39), timeout=15)
        assert "stream dropped" in caplog.text


async def _streams(h: Harness, n: int) -> bool:
    return h.sim.open_streams() >= n


async def _text_is(h: Harness, post_id: str, text: str) -> bool:
    post = await h.store.get(post_id)
    return post is not None and post.text == text


async def test_refused_token_falls_back_to_polling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = SimClock.manual(EPOCH, offset=100)
    items = [status_item(n, at=n) for n in range(5)]
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        source = h.source(h.urls[0], token="not-a-valid-token")
        await h.until(lambda: _count(h, 5))
        assert source.mode == "polling"
        assert "token was refused" in caplog.text
        assert h.sim.open_streams() == 0


async def test_malformed_payloads_are_skipped_and_the_source_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock.manual(EPOCH, offset=0)
    items = [status_item(n, at=n + 1) for n in range(6)]
    items[1]["status"]["content"] = "<p>" + "x" * (5 * 1024 * 1024) + " #testcamp</p>"  # 5 MB
    mangled = {
        items[2]["status"]["uri"]: {"account": "not an account"},  # wrong type: unusable
        items[3]["status"]["uri"]: {"card": {"url": 12345, "title": ["not", "text"]}},
    }
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        timeline = h.sim.timeline(0)
        render = timeline.render

        def mangle(st: Any, now: float, *, authed: bool = False) -> dict[str, Any]:
            # What a buggy or hostile server might send for two of the statuses.
            return {**render(st, now, authed=authed), **mangled.get(st.uri, {})}

        timeline.render = mangle  # type: ignore[method-assign]
        h.sim.garbage_next(2)  # two responses of invalid JSON
        h.source(h.urls[0])
        clock.set_offset(10)
        await h.until(lambda: _count(h, 5), timeout=20)
        await asyncio.sleep(0.3)
        ids = await h.stored_ids()
        # Only the status without a usable account is skipped; the 5 MB one is capped.
        assert items[2]["status"]["uri"] not in ids and len(ids) == 5
        big = await h.store.get(items[1]["status"]["uri"])
        assert big is not None and len(big.html) < 200_000
        card = await h.store.get(items[3]["status"]["uri"])
        assert card is not None and card.links == ()
        assert "malformed" in caplog.text or "invalid JSON" in caplog.text
