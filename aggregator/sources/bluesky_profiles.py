"""Who wrote a Bluesky post: DIDs resolved to handle, name and avatar, in batches.

Jetstream and the firehose name a post's author by DID only. A post is stored at once
with that DID as its author; `ProfileHydrator` asks the AppView's
`app.bsky.actor.getProfiles` (at most 25 actors a call) and puts the same post into the
inbox again with the author filled in, which the store turns into an `update` for the
walls. Profiles are cached with an expiry; an expired one is still used while a fresh
copy is fetched, so a post is never stored with a worse author than we already had.
`KnownPosts` remembers which at:// ids we stored, so deletes, handle changes and account
events are acted on only for posts that are ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp

from aggregator.model import Author
from aggregator.normalise import fields as f
from aggregator.normalise.bluesky import PROFILE_PAGE, valid_did
from aggregator.pipeline import Inbox, InboxItem, RawItem
from aggregator.store.base import PageQuery, Store
from aggregator.store.sqlite import SQLiteStore
from aggregator.supervise import Backoff

log = logging.getLogger(__name__)

GET_PROFILES = "/xrpc/app.bsky.actor.getProfiles"
MAX_ACTORS = 25  # the lexicon's limit; the AppView answers 400 beyond it
PROFILE_TTL = 6 * 3600.0
MISSING_TTL = 600.0  # the longest wait before asking again for a DID without a profile
MISSING_FIRST = 5.0  # a brand-new account may not be indexed yet: ask again soon
BATCH_WAIT = 0.05  # collect DIDs this long before asking: one request instead of many
MAX_CACHE = 100_000
MAX_WANTED = 20_000
MAX_PENDING_DIDS = 10_000
MAX_PENDING_PER_DID = 50
MAX_BODY = 4 * 1024 * 1024
INVALID_HANDLE = "handle.invalid"

_HANDLE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


def valid_handle(handle: object) -> bool:
    return (
        isinstance(handle, str)
        and len(handle) <= 253
        and handle != INVALID_HANDLE
        and _HANDLE.fullmatch(handle) is not None
    )


def author_from_profile(profile: object) -> tuple[str, Author] | None:
    """(did, Author) from a profile view of getProfiles or searchPosts; None if unusable."""
    if not isinstance(profile, dict):
        return None
    did = profile.get("did")
    if not isinstance(did, str) or not valid_did(did):
        return None
    handle = profile.get("handle")
    if isinstance(handle, str) and valid_handle(handle):
        handle = handle.lower()
        shown, url = f"@{handle}", f"{PROFILE_PAGE}{handle}"
    else:
        # The AppView says "handle.invalid" when the handle no longer verifies.
        shown, url = did, f"{PROFILE_PAGE}{did}"
    name = f.text(profile.get("displayName"), limit=f.MAX_NAME).strip()
    return did, Author(handle=shown, name=name, avatar=f.safe_url(profile.get("avatar")), url=url)


def with_handle(author: Author, handle: str) -> Author:
    handle = handle.lower()
    return replace(author, handle=f"@{handle}", url=f"{PROFILE_PAGE}{handle}")


class KnownPosts:
    """The at:// ids of Bluesky posts we stored, by author DID; bounded, oldest out first."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._by_uri: OrderedDict[str, str] = OrderedDict()
        self._by_did: dict[str, set[str]] = {}

    def __contains__(self, uri: object) -> bool:
        return uri in self._by_uri

    def __len__(self) -> int:
        return len(self._by_uri)

    def add(self, uri: str, did: str) -> None:
        if uri in self._by_uri:
            return
        self._by_uri[uri] = did
        self._by_did.setdefault(did, set()).add(uri)
        while len(self._by_uri) > self.limit:
            self.discard(next(iter(self._by_uri)))

    def discard(self, uri: str) -> None:
        did = self._by_uri.pop(uri, None)
        if did is None:
            return
        uris = self._by_did.get(did)
        if uris is not None:
            uris.discard(uri)
            if not uris:
                del self._by_did[did]

    def has_did(self, did: str) -> bool:
        return did in self._by_did

    def of(self, did: str) -> list[str]:
        return sorted(self._by_did.get(did, ()))


class ProfileHydrator:
    """Batches DIDs to getProfiles, caches the answers, re-puts posts with their author."""

    def __init__(
        self,
        appview_url: str,
        session: aiohttp.ClientSession,
        inbox: Inbox,
        *,
        store: Store | None = None,
        known: KnownPosts | None = None,
        name: str = "bluesky:profiles",
        ttl: float = PROFILE_TTL,
        missing_ttl: float = MISSING_TTL,
        missing_first: float = MISSING_FIRST,
        batch_wait: float = BATCH_WAIT,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self.url = appview_url.rstrip("/") + GET_PROFILES
        self.session, self.inbox, self.store = session, inbox, store
        self.known = known if known is not None else KnownPosts()
        self.name = name
        self.ttl, self.missing_ttl, self.batch_wait = ttl, missing_ttl, batch_wait
        self.missing_first = missing_first
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._cache: OrderedDict[str, tuple[Author | None, float]] = OrderedDict()
        self._wanted: dict[str, None] = {}  # DIDs to ask for, in order
        self._pending: dict[str, dict[str, tuple[Any, dict[str, Any]]]] = {}
        self._repairs: dict[str, None] = {}  # DIDs whose stored posts need the new author
        self._misses: dict[str, int] = {}  # DID -> answers without a profile in a row
        self._retry_at: dict[str, float] = {}  # DID without a profile -> when to ask again
        self._wake = asyncio.Event()
        self.requests = 0
        self.failures = 0
        self.reputs = 0

    # --- called by the sources (synchronous, cheap) --------------------------------------

    def author(self, did: str) -> Author | None:
        """The cached author of `did`, even if stale (a refresh is then scheduled)."""
        entry = self._cache.get(did)
        if entry is None:
            return None
        author, expires = entry
        if self.clock() >= expires:
            self._want(did)
        return author

    def seed(self, did: str, author: Author) -> None:
        """An author known from elsewhere (the store): used at once, refreshed on first use."""
        if did not in self._cache:
            self._put_cache(did, author, 0.0)

    def learn(self, did: str, author: Author) -> None:
        """A fresh profile that came with a post (searchPosts)."""
        self._put_cache(did, author, self.clock() + self.ttl)

    def hold(self, did: str, uri: str, record: Any, context: dict[str, Any]) -> Author | None:
        """`uri` went to the inbox with a DID-only author: put it again once the profile is
        in. Call it after that put, so the hydrated copy can only come later; if a profile
        arrived in between, it is returned instead and the caller puts the copy itself."""
        entry = self._cache.get(did)
        if entry is not None and entry[0] is not None:
            if self.clock() >= entry[1]:
                self._want(did)
            return entry[0]
        posts = self._pending.get(did)
        if posts is None:
            if len(self._pending) >= MAX_PENDING_DIDS:
                self._pending.pop(next(iter(self._pending)))
            posts = self._pending[did] = {}
        posts.pop(uri, None)  # the latest version of the record wins
        posts[uri] = (record, context)
        while len(posts) > MAX_PENDING_PER_DID:
            posts.pop(next(iter(posts)))
        if entry is None or self.clock() >= entry[1]:  # not while "no profile" is fresh
            self._want(did)
        return None

    def forget(self, uri: str, did: str) -> None:
        posts = self._pending.get(did)
        if posts is not None:
            posts.pop(uri, None)

    def forget_did(self, did: str) -> None:
        self._pending.pop(did, None)
        self._wanted.pop(did, None)

    def identity_changed(self, did: str, handle: object) -> bool:
        """An identity event: show a new handle at once and refetch the profile.

        True when the handle we show changed (the stored posts are then put again)."""
        self._want(did)
        entry = self._cache.get(did)
        if entry is None or entry[0] is None or not valid_handle(handle):
            return False
        assert isinstance(handle, str)
        renamed = with_handle(entry[0], handle)
        if renamed == entry[0]:
            return False
        self._put_cache(did, renamed, 0.0)
        self._repairs[did] = None
        return True

    @property
    def waiting(self) -> int:
        return len(self._wanted)

    # --- the fetch loop --------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            self._requeue_missing()
            if not self._wanted and not self._repairs:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_retry())
                continue
            await asyncio.sleep(self.batch_wait)
            while self._repairs:
                did = next(iter(self._repairs))
                del self._repairs[did]
                entry = self._cache.get(did)
                if entry is not None and entry[0] is not None:
                    await self._repair(did, entry[0])
            while self._wanted:
                batch = list(self._wanted)[:MAX_ACTORS]
                if await self._fetch(batch):
                    self.backoff.reset()
                else:
                    await asyncio.sleep(self.backoff.next_delay())

    def _requeue_missing(self) -> None:
        """Ask again for DIDs that had no profile and still have posts waiting for one."""
        now = self.clock()
        for did, at in list(self._retry_at.items()):
            if at <= now:
                del self._retry_at[did]
                if did in self._pending:
                    self._want(did)

    def _next_retry(self) -> float | None:
        if not self._retry_at:
            return None
        return max(0.0, min(self._retry_at.values()) - self.clock())

    async def _fetch(self, batch: list[str]) -> bool:
        """Ask for `batch`; True when the AppView answered (even if not for every DID)."""
        self.requests += 1
        try:
            status, body = await self._get(batch)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return self._failed(batch, f"{type(exc).__name__}: {exc}")
        if status == 400 and len(batch) > 1:
            # One bad actor spoils the batch: ask in halves to isolate it.
            half = len(batch) // 2
            first = await self._fetch(batch[:half])
            return await self._fetch(batch[half:]) and first
        if status == 400:
            log.warning("%s: the AppView refused actor %s (HTTP 400)", self.name, batch[0])
            await self._resolved(batch[0], None)
            return True
        if status != 200 or not isinstance(body, dict):
            return self._failed(batch, f"HTTP {status}")
        found: dict[str, Author] = {}
        profiles = body.get("profiles")
        for profile in profiles if isinstance(profiles, list) else ():
            parsed = author_from_profile(profile)
            if parsed is not None:
                found[parsed[0]] = parsed[1]
        for did in batch:
            await self._resolved(did, found.get(did))
        return True

    async def _get(self, batch: list[str]) -> tuple[int, Any]:
        params = [("actors", did) for did in batch]
        async with self.session.get(self.url, params=params, timeout=self.timeout) as resp:
            raw = await resp.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise ValueError("getProfiles answer too large")
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None

    def _failed(self, batch: list[str], why: str) -> bool:
        # The DIDs stay wanted: the AppView being down says nothing about them.
        self.failures += 1
        log.warning("%s: getProfiles failed (%s); retrying", self.name, why)
        return False

    async def _resolved(self, did: str, author: Author | None) -> None:
        self._wanted.pop(did, None)
        old = self._cache.get(did)
        previous = old[0] if old is not None else None
        if author is None and previous is not None:
            author = previous  # gone from the AppView: keep what we showed
        if author is None:
            # Not indexed yet, or gone: ask again after 5 s, 15 s, 45 s ... up to 10 min.
            misses = self._misses.pop(did, 0) + 1
            self._misses[did] = misses
            while len(self._misses) > MAX_CACHE:
                self._misses.pop(next(iter(self._misses)))
            delay = min(self.missing_ttl, self.missing_first * 3 ** (misses - 1))
            self._put_cache(did, None, self.clock() + delay)
            if did in self._pending:
                self._retry_at[did] = self.clock() + delay
            return
        self._misses.pop(did, None)
        self._put_cache(did, author, self.clock() + self.ttl)
        pending = self._pending.pop(did, {})
        for record, context in pending.values():
            await self._emit(
                RawItem(self.name, "bluesky.record", record, {**context, "author": author})
            )
        if old is None or previous != author:
            await self._repair(did, author, skip=pending.keys())

    async def _repair(self, did: str, author: Author, skip: Any = ()) -> None:
        """Put the stored posts of `did` again with `author` (a changed or first profile)."""
        if self.store is None:
            return
        for uri in self.known.of(did):
            if uri in skip:
                continue
            post = await self.store.get(uri)
            if post is not None and post.author != author:
                self.reputs += 1
                await self._emit(RawItem(self.name, "post", post.with_changes(author=author)))

    async def _emit(self, item: InboxItem) -> None:
        try:
            self.inbox.put_nowait(item)
        except asyncio.QueueFull:
            await self.inbox.put(item)

    def _want(self, did: str) -> None:
        if did in self._wanted:
            return
        if len(self._wanted) >= MAX_WANTED:
            self._wanted.pop(next(iter(self._wanted)))
        self._wanted[did] = None
        self._wake.set()

    def _put_cache(self, did: str, author: Author | None, expires: float) -> None:
        self._cache[did] = (author, expires)
        self._cache.move_to_end(did)
        while len(self._cache) > MAX_CACHE:
            self._cache.popitem(last=False)


async def seed_from_store(
    store: Store, known: KnownPosts, limit: int = 50_000
) -> tuple[int, dict[str, Author]]:
    """Learn the Bluesky posts already stored and their hydrated authors (after a restart).

    Without this a replayed event would be stored again with a DID-only author (an
    `update` that flickers on the walls), and deletes or account events for posts stored
    before the restart would be ignored. SQLite answers with one query that includes
    hidden posts; other stores are paged through `page()`, which leaves hidden posts out.
    """
    if isinstance(store, SQLiteStore):
        rows: list[tuple[str, str | None, str | None]] = await store.read(
            lambda conn: stored_bluesky_posts(conn, limit)
        )
    else:
        rows = await _paged(store, limit)
    authors: dict[str, Author] = {}
    for post_id, author_id, author_json in rows:
        did = author_id or _did_of(post_id)
        if did is None:
            continue
        known.add(post_id, did)
        try:
            author = Author.from_json(json.loads(author_json or "{}"))
        except (ValueError, TypeError, AttributeError):
            continue
        if author.handle and author.handle != did and did not in authors:
            authors[did] = author
    return len(rows), authors


def stored_bluesky_posts(
    conn: sqlite3.Connection, limit: int
) -> list[tuple[str, str | None, str | None]]:
    """(id, author DID, author JSON) of the stored Bluesky posts, hidden ones included,
    newest first. A candidate for the Store interface (`bluesky_posts(limit)`)."""
    rows = conn.execute(
        "SELECT id, json_extract(provenance, '$.author_id'), json_extract(data, '$.author') "
        "FROM posts WHERE platform = 'bluesky' AND deleted = 0 "
        "ORDER BY created_us DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [(str(r[0]), r[1], r[2]) for r in rows]


async def _paged(store: Store, limit: int) -> list[tuple[str, str | None, str | None]]:
    rows: list[tuple[str, str | None, str | None]] = []
    before: str | None = None
    while len(rows) < limit:
        page = await store.page(PageQuery(before=before, limit=200, platform="bluesky"))
        for post in page.posts:
            author = json.dumps(post.author.to_json())
            rows.append((post.id, post.provenance.author_id or None, author))
        if page.next is None or not page.posts:
            return rows
        before = page.next
    return rows


def _did_of(uri: str) -> str | None:
    if not uri.startswith("at://"):
        return None
    did = uri[5:].split("/", 1)[0]
    return did if valid_did(did) else None
