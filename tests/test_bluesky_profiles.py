"""Profile hydration and the searchPosts backfill against the local AppView, with the
real pipeline and SQLite store: a post is stored at once with its DID, then updated with
handle, name and avatar; batches of at most 25; retries; a refused actor; expiry; the
search backfill with paging, its one-time 403, and a refused login."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from aggregator.bus import MemoryBus
from aggregator.match import HashtagMatcher
from aggregator.model import Author, Post
from aggregator.pipeline import Pipeline, RawItem, new_inbox
from aggregator.sim.appview import AppViewSimulator, SimProfile
from aggregator.sim.bluesky_data import did_for, post_record
from aggregator.sources.bluesky_profiles import (
    MAX_ACTORS,
    KnownPosts,
    ProfileHydrator,
    author_from_profile,
    seed_from_store,
)
from aggregator.sources.bluesky_search import SearchBackfill
from aggregator.store import PageQuery, SQLiteStore
from aggregator.store.base import Change, Store
from aggregator.supervise import Backoff

POST = "app.bsky.feed.post"
CREATED = "2026-11-21T10:00:00.000Z"


def people(n: int) -> list[SimProfile]:
    return [
        SimProfile(did_for(f"p{i}"), f"p{i}.example", f"Person {i}", f"https://cdn.example/{i}.jpg")
        for i in range(n)
    ]


@dataclass
class Harness:
    appview: AppViewSimulator
    url: str
    store: SQLiteStore
    pipeline: Pipeline
    http: aiohttp.ClientSession
    known: KnownPosts = field(default_factory=KnownPosts)
    changes: list[Change] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    hydrator: ProfileHydrator | None = None

    def start_hydrator(self, **kwargs: Any) -> ProfileHydrator:
        kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.2))
        self.hydrator = ProfileHydrator(
            self.url, self.http, self.pipeline.inbox, store=self.store, known=self.known, **kwargs
        )
        self.tasks.append(asyncio.create_task(self.hydrator.run()))
        return self.hydrator

    async def post(self, did: str, rkey: str, text: str = "hello") -> str:
        """What the Jetstream source does with a matching record."""
        assert self.hydrator is not None
        uri = f"at://{did}/{POST}/{rkey}"
        record = post_record([("text", f"{text} "), ("tag", "blc26")], CREATED)
        context: dict[str, Any] = {"did": did, "rkey": rkey, "time": CREATED}
        author = self.hydrator.author(did)
        if author is not None:
            context["author"] = author
        self.known.add(uri, did)
        await self.pipeline.inbox.put(RawItem("test", "bluesky.record", record, context))
        if author is None:
            assert self.hydrator.hold(did, uri, record, context) is None
        return uri

    async def posts(self) -> dict[str, Post]:
        page = await self.store.page(PageQuery(limit=200))
        return {p.id: p for p in page.posts}

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)

    async def authors_are(self, want: dict[str, str], timeout: float = 5.0) -> None:
        async def check() -> bool:
            posts = await self.posts()
            return all(u in posts and posts[u].author.handle == h for u, h in want.items())

        await self.until(check, timeout)


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, profiles: list[SimProfile], **kw: Any) -> AsyncIterator[Harness]:
    appview = AppViewSimulator(profiles, **kw)
    url = await appview.start()
    store = SQLiteStore(tmp_path / "p.db")
    await store.open()
    bus = MemoryBus()
    pipeline = Pipeline(new_inbox(), store, bus)
    async with aiohttp.ClientSession() as http:
        h = Harness(appview, url, store, pipeline, http)
        sub = bus.subscribe()

        async def collect() -> None:
            async for event in sub:
                h.changes.extend(event.changes)

        h.tasks += [asyncio.create_task(pipeline.run()), asyncio.create_task(collect())]
        try:
            yield h
        finally:
            for task in h.tasks:
                task.cancel()
            await asyncio.gather(*h.tasks, return_exceptions=True)
            await store.close()
            await appview.stop()


async def test_posts_are_stored_at_once_and_hydrated_within_seconds(tmp_path: Path) -> None:
    profiles = people(60)
    async with harness(tmp_path, profiles) as h:
        h.start_hydrator()
        started = asyncio.get_running_loop().time()
        uris = [await h.post(p.did, f"r{i}") for i, p in enumerate(profiles)]

        async def all_stored() -> bool:
            return set(uris) <= set(await h.posts())

        await h.until(all_stored)
        await h.authors_are({u: f"@{p.handle}" for u, p in zip(uris, profiles, strict=True)})
        assert asyncio.get_running_loop().time() - started < 3
        first = {c.id: c.post for c in h.changes if c.kind == "new"}
        stored_first = first[uris[0]]
        assert stored_first is not None and stored_first.author.handle == profiles[0].did
        updates = Counter(c.id for c in h.changes if c.kind == "updated")
        assert set(updates) == set(uris) and max(updates.values()) == 1
        post = (await h.posts())[uris[7]]
        assert post.author == Author(
            "@p7.example",
            "Person 7",
            "https://cdn.example/7.jpg",
            "https://bsky.app/profile/p7.example",
        )
        assert all(n <= MAX_ACTORS for n in h.appview.actor_counts)
        assert len(h.appview.actor_counts) <= 4  # batched, not one call per DID
        # A cached author comes with the next post: stored hydrated, no update.
        again = await h.post(profiles[3].did, "later")
        await h.authors_are({again: "@p3.example"})
        assert not [c for c in h.changes if c.id == again and c.kind == "updated"]
        assert len(h.appview.actor_counts) <= 4


async def test_failures_are_retried_and_a_refused_actor_spoils_nothing(tmp_path: Path) -> None:
    profiles = people(10)
    async with harness(tmp_path, profiles) as h:
        h.appview.fail_next(3, 502)
        h.appview.refused.add(profiles[4].did)
        hydrator = h.start_hydrator()
        uris = [await h.post(p.did, f"r{i}") for i, p in enumerate(profiles)]
        want = {u: f"@{p.handle}" for u, p in zip(uris, profiles, strict=True)}
        want[uris[4]] = profiles[4].did  # the AppView refuses it: the DID stays
        await h.authors_are(want)
        assert hydrator.failures == 3
        requests = h.appview.requests["getProfiles"]
        await h.post(profiles[4].did, "again")  # cached as missing: not asked again
        await asyncio.sleep(0.3)
        assert h.appview.requests["getProfiles"] == requests
        assert hydrator.waiting == 0


async def test_unknown_accounts_and_invalid_handles(tmp_path: Path) -> None:
    broken = SimProfile(did_for("broken"), "handle.invalid", "Still Named")
    async with harness(tmp_path, [broken]) as h:
        h.start_hydrator()
        ghost = did_for("ghost")
        u1 = await h.post(ghost, "g1")
        u2 = await h.post(broken.did, "b1")
        await h.authors_are({u2: broken.did})

        async def named() -> bool:
            return (await h.posts())[u2].author.name == "Still Named"

        await h.until(named)
        posts = await h.posts()
        assert posts[u1].author.handle == ghost and posts[u1].author.url.endswith(ghost)
        assert posts[u2].author.url == f"https://bsky.app/profile/{broken.did}"


async def test_an_account_the_appview_has_not_indexed_yet_is_asked_for_again(
    tmp_path: Path,
) -> None:
    newcomer = SimProfile(did_for("newcomer"), "newcomer.example", "New Here")
    async with harness(tmp_path, []) as h:
        hydrator = h.start_hydrator(missing_first=0.3)
        u1 = await h.post(newcomer.did, "first")
        await h.until(lambda: _true(h.appview.requests["getProfiles"] == 1))
        h.appview.add_profiles([newcomer])  # indexed a moment later
        await h.authors_are({u1: "@newcomer.example"}, timeout=3)
        assert h.appview.requests["getProfiles"] == 2
        # A profile that arrives while the source waits for the inbox is handed back.
        assert hydrator.hold(newcomer.did, "at://x", {}, {}) == (await h.posts())[u1].author


async def _true(value: bool) -> bool:
    return value


async def test_expired_profiles_are_refreshed_and_stored_posts_follow(tmp_path: Path) -> None:
    profiles = people(2)
    async with harness(tmp_path, profiles) as h:
        hydrator = h.start_hydrator(ttl=0.2)
        u1 = await h.post(profiles[0].did, "a")
        await h.authors_are({u1: "@p0.example"})
        h.appview.profiles[profiles[0].did].display_name = "Renamed Person"
        h.appview.rename(profiles[0].did, "p0-new.example")
        await asyncio.sleep(0.3)
        # The next post uses the stale author at once and triggers a refresh ...
        u2 = await h.post(profiles[0].did, "b")
        # ... after which both the new and the earlier post show the new profile.
        await h.authors_are({u1: "@p0-new.example", u2: "@p0-new.example"})
        assert (await h.posts())[u1].author.name == "Renamed Person"
        assert hydrator.reputs >= 1


async def test_a_handle_change_is_shown_before_the_appview_knows_it(tmp_path: Path) -> None:
    profiles = people(1)
    async with harness(tmp_path, profiles) as h:
        hydrator = h.start_hydrator()
        u1 = await h.post(profiles[0].did, "a")
        await h.authors_are({u1: "@p0.example"})
        h.appview.fail_next(100, 503)  # the AppView is down: the event alone is enough
        assert hydrator.identity_changed(profiles[0].did, "P0.Moved.example")
        assert not hydrator.identity_changed(profiles[0].did, "p0.moved.example")  # no change
        assert not hydrator.identity_changed(profiles[0].did, "not a handle")
        await h.authors_are({u1: "@p0.moved.example"})


def test_author_from_profile_keeps_only_safe_values() -> None:
    did = did_for("x")
    parsed = author_from_profile(
        {
            "did": did,
            "handle": "X.Example",
            "displayName": "A\x00B" + "n" * 500,
            "avatar": "javascript:alert(1)",
        }
    )
    assert parsed is not None
    assert parsed[1].handle == "@x.example" and parsed[1].avatar is None
    assert "\x00" not in parsed[1].name and len(parsed[1].name) <= 200
    assert author_from_profile({"did": "nope", "handle": "x.example"}) is None
    assert author_from_profile(["not", "a", "dict"]) is None


def test_known_posts_are_bounded_and_indexed_by_author() -> None:
    known = KnownPosts(limit=3)
    for i in range(5):
        known.add(f"at://did:plc:a/{POST}/{i}", "did:plc:a" if i % 2 else "did:plc:b")
    assert len(known) == 3 and f"at://did:plc:a/{POST}/0" not in known
    assert known.of("did:plc:a") == [f"at://did:plc:a/{POST}/3"]
    known.discard(f"at://did:plc:a/{POST}/3")
    assert not known.has_did("did:plc:a")


async def test_seed_from_store_learns_posts_and_hydrated_authors(tmp_path: Path) -> None:
    profiles = people(2)
    async with harness(tmp_path, profiles) as h:
        h.start_hydrator()
        u1 = await h.post(profiles[0].did, "a")
        await h.authors_are({u1: "@p0.example"})
        ghost = did_for("ghost")
        u2 = await h.post(ghost, "g")
        await asyncio.sleep(0.2)
        u3 = await h.post(profiles[1].did, "hidden-later")
        await h.authors_are({u3: "@p1.example"})
        await h.store.moderate("hide", u3, "moderator")
        expected_authors = {
            profiles[0].did: (await h.posts())[u1].author,  # not the ghost's DID
            profiles[1].did: Author.from_json(
                {
                    "handle": "@p1.example",
                    "name": "Person 1",
                    "avatar": "https://cdn.example/1.jpg",
                    "url": "https://bsky.app/profile/p1.example",
                }
            ),
        }
        known = KnownPosts()
        count, authors = await seed_from_store(h.store, known)
        assert count == 3 and u1 in known and u2 in known and u3 in known  # hidden too
        assert authors == expected_authors
        paged = KnownPosts()  # what a store without the SQLite query gets: no hidden posts
        count, authors = await seed_from_store(cast(Store, _PagedOnly(h.store)), paged)
        assert (
            count == 2
            and u3 not in paged
            and authors == {profiles[0].did: expected_authors[profiles[0].did]}
        )


class _PagedOnly:
    """A store that offers only the Store protocol's page(), like a future PostgreSQL one."""

    def __init__(self, store: SQLiteStore) -> None:
        self.page = store.page


# --- search backfill -------------------------------------------------------------------------


def index(
    appview: AppViewSimulator, did: str, rkey: str, record: dict[str, Any], at: datetime
) -> None:
    appview.observe(
        {
            "did": did,
            "collection": POST,
            "operation": "create",
            "rkey": rkey,
            "cid": "bafyreisearch" + rkey,
            "time": at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "record": record,
        }
    )


def backfill(h: Harness, since: datetime | None, **kw: Any) -> SearchBackfill:
    return SearchBackfill(
        h.url,
        kw.pop("handle", "p0.example"),
        kw.pop("password", "app-pass"),
        HashtagMatcher(["blc26"]),
        h.pipeline.inbox,
        h.store,
        h.http,
        since=since,
        hydrator=h.hydrator,
        page_pause=0.0,
        **kw,
    )


async def test_search_backfills_the_window_by_tag_with_authors(tmp_path: Path) -> None:
    profiles = people(3)
    async with harness(tmp_path, profiles, passwords={"p0.example": "app-pass"}) as h:
        h.start_hydrator()
        start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
        expected = set()
        for i in range(150):
            who = profiles[i % 3].did
            if i % 5 == 0:
                record = post_record(
                    [("text", "tagged only in the tags array")], CREATED, tags=["BLC26"]
                )
            else:
                record = post_record([("text", f"post {i} "), ("tag", "blc26")], CREATED)
            index(h.appview, who, f"s{i}", record, start + timedelta(minutes=i))
            expected.add(f"at://{who}/{POST}/s{i}")
        index(
            h.appview,
            profiles[0].did,
            "early",
            post_record([("text", "x "), ("tag", "blc26")], CREATED),
            start - timedelta(days=3),
        )
        index(
            h.appview,
            profiles[0].did,
            "words",
            post_record([("text", "blc26 in words only")], CREATED),
            start,
        )
        search = backfill(h, start - timedelta(hours=1))
        await search.run()
        await asyncio.sleep(0.3)
        posts = await h.posts()
        assert set(posts) == expected
        assert h.appview.requests["searchPosts"] == 2  # 100 + 50, paged by cursor
        assert posts[f"at://{profiles[1].did}/{POST}/s1"].author.handle == "@p1.example"
        assert not [c for c in h.changes if c.kind == "updated"]  # stored hydrated
        saved = await h.store.load_cursor("bluesky:search")
        assert saved is not None and saved.endswith("Z")
        # A later run searches only what came after the finished one.
        again = backfill(h, start - timedelta(hours=1))
        await again.run()
        assert again.found == 0


async def test_search_403_is_logged_once_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "aggregator.sources.bluesky_search")
    async with harness(
        tmp_path, people(1), passwords={"p0.example": "app-pass"}, search_enabled=False
    ) as h:
        search = backfill(h, None)
        for _ in range(3):  # as supervise() or a restart would call it
            await search.run()
        assert h.appview.requests["searchPosts"] == 1
        lines = [r for r in caplog.records if "search unavailable" in r.getMessage()]
        assert len(lines) == 1 and "403" in lines[0].getMessage()
        refused = backfill(h, None, password="wrong")
        await refused.run()
        await refused.run()
        assert h.appview.requests["createSession"] == 2  # one success above, one refusal
        assert refused.unavailable is not None and "HTTP 401" in refused.unavailable
