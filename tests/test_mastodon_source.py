"""The Mastodon source against simulated servers: several servers sharing posts, a long
outage, late federation, many hashtags, consent flags, the probe, malformed and oversized
payloads. Real loopback HTTP, a real SQLite store and pipeline; the simulators' clocks are
driven by hand. Rate limits: test_mastodon_ratelimit.py; streaming: test_mastodon_stream.py.
The harness here is shared by those files."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aggregator.bus import MemoryBus
from aggregator.demo import event_epoch, load_dataset
from aggregator.model import Post
from aggregator.pipeline import Pipeline, new_inbox
from aggregator.sanitise import html_text_and_links
from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view
from aggregator.sources.mastodon import MastodonSource
from aggregator.sources.mastodon_api import MAX_BODY, probe
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
        timing: PollTiming = FAST,
    ) -> MastodonSource:
        source = MastodonSource(
            url,
            list(tags),
            self.pipeline.inbox,
            self.store,
            self.http,
            since=EPOCH - timedelta(hours=1),
            timing=timing,
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
        final = final_statuses(data["items"])
        posts = await all_posts(h.store)
        for post in posts:
            original = final[post.id]
            # Author and content are the original's (edits applied), whichever server
            # delivered it.
            assert post.author.url == original["account"]["url"]
            assert post.author.handle == "@" + original["account"]["acct"]
            assert post.text == html_text_and_links(original["content"])[0]
        # Walls list them by created_at, whatever the servers' ids.
        created = [p.created_at for p in posts]
        assert created == sorted(created, reverse=True)


async def test_the_home_servers_counts_win(tmp_path: Path) -> None:
    host, other = "social.example", "mastodon.example"
    item = status_item(1, at=1, host=host)
    item["status"]["favourites_count"] = 30  # a remote server knows 2/3 of them
    item["status"]["media_attachments"] = [
        {
            "id": "9",
            "type": "image",
            "url": f"https://media.{host}/media_attachments/files/1/original/a.jpg",
            "preview_url": f"https://media.{host}/media_attachments/files/1/small/a.png",
            "description": "a photo",
        }
    ]
    clock = SimClock.manual(EPOCH, offset=100)
    servers = [ServerSettings(host=host), ServerSettings(host=other)]
    async with harness(tmp_path, [item], servers, clock) as h:
        h.source(h.urls[0])  # the home server first
        await h.until(lambda: _count(h, 1))
        h.source(h.urls[1])  # then a server that knows fewer likes and caches the media
        await h.until(lambda: _requested(h, 1, 3))
        await asyncio.sleep(0.3)
        post = await h.store.get(item["status"]["uri"])
        assert post is not None and post.metrics.likes == 30


async def test_consent_that_only_the_home_server_reports_reaches_the_store(
    tmp_path: Path,
) -> None:
    host, other = "social.example", "mastodon.example"
    item = status_item(1, at=1, host=host)
    item["status"]["account"]["noindex"] = True
    item["status"]["favourites_count"] = 0  # the same counts on both servers
    clock = SimClock.manual(EPOCH, offset=100)
    servers = [ServerSettings(host=host), ServerSettings(host=other)]
    async with harness(tmp_path, [item], servers, clock) as h:
        h.source(h.urls[1])  # a remote server first: it does not say noindex
        await h.until(lambda: _count(h, 1))
        h.source(h.urls[0])  # then the author's home server, which does
        await h.until(lambda: _requested(h, 0, 3))
        await asyncio.sleep(0.3)
        post = await h.store.get(item["status"]["uri"])
        assert post is not None and post.provenance.noindex


async def _requested(h: Harness, server: int, n: int) -> bool:
    return h.sim.request_count(server, "/api/v1/timelines") >= n


def final_statuses(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each created status with its edits applied, by uri."""
    out = {i["status"]["uri"]: dict(i["status"]) for i in items if i["op"] == "create"}
    for item in sorted(items, key=lambda i: float(i["at"])):
        if item["op"] == "edit":
            out[item["uri"]].update({k: v for k, v in item.items() if k not in ("at", "op", "uri")})
    return out


async def all_posts(store: SQLiteStore) -> list[Post]:
    page = await store.page(PageQuery(limit=200))
    posts = list(page.posts)
    while page.next:
        page = await store.page(PageQuery(limit=200, before=page.next))
        posts += page.posts
    return posts


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


async def test_malformed_payloads_are_skipped_and_the_source_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock.manual(EPOCH, offset=0)
    items = [status_item(n, at=n + 1) for n in range(6)]
    items[1]["status"]["content"] = "<p>" + "x" * (5 * 1024 * 1024) + " #testcamp</p>"  # 5 MB
    mangled: dict[str, dict[str, Any]] = {
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


async def test_posts_that_federate_late_land_behind_the_cursor_and_are_still_found(
    tmp_path: Path,
) -> None:
    # Remote posts reach this server two minutes late but keep ids of their created_at,
    # so each lands behind a cursor that local posts have already moved past.
    local = [status_item(n, at=10 * n) for n in range(30)]
    remote = [status_item(100 + n, at=10 * n + 5, host="remote.example") for n in range(30)]
    settings = ServerSettings(host="social.example", remote_delay_s=120)
    clock = SimClock.manual(EPOCH, offset=0)
    async with harness(tmp_path, local + remote, [settings], clock) as h:
        h.source(h.urls[0])
        await h.until(lambda: _streams_or_polls(h))
        for t in range(0, 300, 10):
            clock.set_offset(t)
            await asyncio.sleep(0.06)
        clock.set_offset(1000)
        await h.until(lambda: _count(h, 60), timeout=15)
        ids = await h.stored_ids()
        assert len(ids) == len(set(ids)) == 60
        # The forward paging alone did not see them: the look-back re-read did.
        late = [r for r in h.sim.requests(0) if "min_id" not in r.path_qs and "max_id" in r.path_qs]
        assert late, "expected look-back reads with max_id"


async def _streams_or_polls(h: Harness) -> bool:
    return h.sim.request_count(0, "/api/v1/timelines") > 0


async def test_without_the_look_back_late_posts_are_lost(tmp_path: Path) -> None:
    """The control for the test above: it fails without the look-back."""
    local = [status_item(n, at=10 * n) for n in range(30)]
    remote = [status_item(100 + n, at=10 * n + 5, host="remote.example") for n in range(30)]
    settings = ServerSettings(host="social.example", remote_delay_s=120)
    clock = SimClock.manual(EPOCH, offset=0)
    no_look_back = replace(FAST, refresh_every=3600)
    async with harness(tmp_path, local + remote, [settings], clock) as h:
        h.source(h.urls[0], timing=no_look_back)
        await h.until(lambda: _streams_or_polls(h))
        for t in range(0, 300, 10):
            clock.set_offset(t)
            await asyncio.sleep(0.06)
        clock.set_offset(1000)
        await asyncio.sleep(1.0)
        assert 30 <= await h.store.count() < 60


async def test_more_hashtags_than_one_request_covers_are_polled_in_groups(
    tmp_path: Path,
) -> None:
    tags = [f"tag{i}" for i in range(7)]
    items = [status_item(n, at=n + 1, tag=tags[n % 7]) for n in range(21)]
    clock = SimClock.manual(EPOCH, offset=0)
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        source = h.source(h.urls[0], tags=tuple(tags))
        await h.until(lambda: _streams_or_polls(h))
        clock.set_offset(30)
        await h.until(lambda: _count(h, 21))
        for record in h.sim.requests(0):
            if record.path_qs.startswith("/api/v1/timelines"):
                assert record.path_qs.count("any%5B%5D=") <= 4, record.path_qs
        # One cursor per group of five, the first under the source's own name.
        assert await h.store.load_cursor(source.name) is not None
        assert await h.store.load_cursor(source.name + "#2") is not None


async def test_consent_flags_reach_the_store(tmp_path: Path) -> None:
    items = [status_item(n, at=n + 1) for n in range(3)]
    flags = [{"bot": True}, {"noindex": True}, {"discoverable": False}]
    for item, flag in zip(items, flags, strict=True):
        item["status"]["account"] = {**item["status"]["account"], **flag}
        # Local accounts of the server we ask: Mastodon serialises noindex only for those.
        item["status"]["account"]["acct"] = item["status"]["account"]["username"]
        item["status"]["account"]["username"] += str(len(flag))
    clock = SimClock.manual(EPOCH, offset=100)
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        h.source(h.urls[0])
        await h.until(lambda: _count(h, 3))
        stored = [await h.store.get(i["status"]["uri"]) for i in items]
        assert [p.provenance.bot for p in stored if p] == [True, False, False]
        assert [p.provenance.noindex for p in stored if p] == [False, True, False]
        assert [p.provenance.discoverable for p in stored if p] == [True, True, False]


async def test_probe_reads_v2_falls_back_to_v1_and_names_the_software(
    tmp_path: Path,
) -> None:
    servers = [
        ServerSettings(host="new.example", require_token=True),
        ServerSettings(host="old.example", instance_v2=False, streaming=False),
        ServerSettings(host="pleroma.example", version="2.7.2 (compatible; Pleroma 2.5.0)"),
    ]
    async with harness(tmp_path, [], servers, SimClock.manual(EPOCH)) as h:
        new, old, pleroma = [await probe(url) for url in h.urls]
    assert (new.domain, new.software, new.tag_timeline_needs_token) == (
        "new.example",
        "Mastodon",
        True,
    )
    assert new.streaming_url == h.urls[0].replace("http://", "ws://")
    assert (old.domain, old.streaming_url, old.tag_timeline_needs_token) == (
        "old.example",
        None,
        False,
    )
    assert pleroma.software == "Pleroma" and pleroma.describe().startswith("pleroma.example")


async def test_a_server_that_needs_a_token_is_not_polled_without_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServerSettings(host="social.example", require_token=True)
    async with harness(tmp_path, [], [settings], SimClock.manual(EPOCH)) as h:
        source = h.source(h.urls[0])
        await h.until(lambda: _mode_is(source, "stopped"))
        assert "only serves tag timelines to logged-in users" in caplog.text
        assert h.sim.request_count(0, "/api/v1/timelines") == 0


async def _mode_is(source: MastodonSource, mode: str) -> bool:
    return source.mode == mode


async def test_a_status_too_large_to_read_is_skipped_and_paging_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = [status_item(n, at=n + 1) for n in range(8)]
    huge = "<p>" + "y" * (MAX_BODY + 1024) + " #testcamp</p>"  # over the 8 MB page cap
    clock = SimClock.manual(EPOCH, offset=0)
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        h.source(h.urls[0])
        await h.until(lambda: _streams_or_polls(h))
        timeline = h.sim.timeline(0)
        render = timeline.render
        big_uri = items[3]["status"]["uri"]

        def bloat(st: Any, now: float, *, authed: bool = False) -> dict[str, Any]:
            out = render(st, now, authed=authed)
            return {**out, "content": huge} if st.uri == big_uri else out

        timeline.render = bloat  # type: ignore[method-assign]
        clock.set_offset(20)
        await h.until(lambda: _count(h, 7), timeout=20)
        assert big_uri not in await h.stored_ids()
        assert "skipped a status" in caplog.text
        clock.set_offset(40)  # and it keeps running
        h.sim.timeline(0)  # (nothing new is published; the source polls on)
        before = h.sim.request_count(0, "/api/v1/timelines")
        await asyncio.sleep(0.3)
        assert h.sim.request_count(0, "/api/v1/timelines") > before
