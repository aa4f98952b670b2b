"""Optional backfill through `app.bsky.feed.searchPosts`, for an event window that
Jetstream's replay (about 36 h) no longer reaches: posts from days before the event, or
a late start.

Search needs an account since 2025 (anonymous calls get 403), so it runs only with
`bluesky.handle` and an app password: `com.atproto.server.createSession` and then
`searchPosts?q=%23tag&since=&until=&sort=latest`, paged by cursor, on one base URL (a
PDS or the entryway, which proxies app.bsky.* to the AppView). A 403 means search is not
available to us: it is logged once and the backfill stops for good. Results carry their
author's profile, so they are stored hydrated; ids are at:// URIs, so a post that
Jetstream also delivers is one post.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from aggregator.config import Config
from aggregator.match import HashtagMatcher
from aggregator.model import format_timestamp
from aggregator.normalise.bluesky import POST_COLLECTION
from aggregator.pipeline import Checkpoint, Inbox, InboxItem, RawItem
from aggregator.sources.bluesky_profiles import MAX_BODY, ProfileHydrator, author_from_profile
from aggregator.store.base import Store

log = logging.getLogger(__name__)

CREATE_SESSION = "/xrpc/com.atproto.server.createSession"
SEARCH_POSTS = "/xrpc/app.bsky.feed.searchPosts"
DEFAULT_PDS = "https://bsky.social"
PAGE_SIZE = 100  # the lexicon's maximum
MAX_PAGES = 100  # per tag: 10,000 posts is more than any event's hashtag
PAGE_PAUSE = 0.5  # between pages, to stay far from the rate limit
INDEX_LAG = timedelta(minutes=10)  # the AppView indexes a post some time after it is made


class SearchUnavailableError(Exception):
    """Search refused us (403) or the login failed: not worth retrying."""


class SearchBackfill:
    def __init__(
        self,
        base_url: str,
        handle: str,
        password: str,
        matcher: HashtagMatcher,
        inbox: Inbox,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        since: datetime | None,
        until: datetime | None = None,
        hydrator: ProfileHydrator | None = None,
        name: str = "bluesky:search",
        page_pause: float = PAGE_PAUSE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.handle, self.password = handle, password
        self.matcher, self.inbox, self.store, self.session = matcher, inbox, store, session
        self.since, self.until, self.hydrator, self.name = since, until, hydrator, name
        self.page_pause, self.max_pages = page_pause, max_pages
        self.timeout = aiohttp.ClientTimeout(total=30)
        self.unavailable: str | None = None
        self.found = 0
        self.requests = 0
        self._token: str | None = None

    async def run(self) -> None:
        """Search each hashtag over the window once, then return."""
        if self.unavailable is not None:
            return
        saved = await self.store.load_cursor(self.name)
        since = self.since
        finished = _parse(saved) if saved else None
        if finished is not None:  # an earlier run: search from a little before it ended
            overlap = finished - INDEX_LAG
            since = overlap if since is None else max(since, overlap)
        started = datetime.now(UTC)
        try:
            for tag in self.matcher.tags:
                await self._search(tag, since)
        except SearchUnavailableError as exc:
            self.unavailable = str(exc)
            log.warning("%s: search unavailable (%s); no search backfill", self.name, exc)
            return
        log.info("%s: backfilled %d posts by search", self.name, self.found)
        done = min(self.until, started) if self.until else started
        await self._put(Checkpoint(self.name, format_timestamp(done)))

    async def _search(self, tag: str, since: datetime | None) -> None:
        cursor: str | None = None
        for _ in range(self.max_pages):
            params = {"q": f"#{tag}", "sort": "latest", "limit": str(PAGE_SIZE)}
            if since is not None:
                params["since"] = format_timestamp(since)
            if self.until is not None:
                params["until"] = format_timestamp(self.until)
            if cursor:
                params["cursor"] = cursor
            body = await self._authorised_get(SEARCH_POSTS, params)
            posts = body.get("posts")
            if not isinstance(posts, list) or not posts:
                return
            for view in posts:
                await self._post(view)
            nxt = body.get("cursor")
            if not isinstance(nxt, str) or not nxt or nxt == cursor:
                return
            cursor = nxt
            await asyncio.sleep(self.page_pause)

    async def _post(self, view: object) -> None:
        if not isinstance(view, dict):
            return
        uri, record = view.get("uri"), view.get("record")
        parsed = author_from_profile(view.get("author"))
        if not isinstance(uri, str) or not isinstance(record, dict) or parsed is None:
            log.warning("%s: skipped a malformed search result", self.name)
            return
        did, author = parsed
        prefix = f"at://{did}/{POST_COLLECTION}/"
        if not uri.startswith(prefix) or not self.matcher.matches_bluesky_record(record):
            return  # search also finds the word in text; the live stream keeps to tags
        context = {
            "did": did,
            "rkey": uri.removeprefix(prefix),
            "cid": view.get("cid"),
            "time": view.get("indexedAt"),
            "author": author,
        }
        if self.hydrator is not None:
            self.hydrator.learn(did, author)
            self.hydrator.known.add(uri, did)
        self.found += 1
        await self._put(RawItem(self.name, "bluesky.record", record, context))

    async def _authorised_get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        for attempt in range(2):
            if self._token is None:
                await self._login()
            status, body = await self._request("GET", path, params=params)
            if status == 200 and isinstance(body, dict):
                return body
            if status == 403:
                raise SearchUnavailableError(f"{path} answered HTTP 403")
            expired = isinstance(body, dict) and body.get("error") in (
                "ExpiredToken",
                "InvalidToken",
            )
            if (status == 401 or expired) and attempt == 0:
                self._token = None  # log in again once
                continue
            raise RuntimeError(f"{path} answered HTTP {status}")  # supervise() retries
        raise AssertionError("unreachable")

    async def _login(self) -> None:
        status, body = await self._request(
            "POST", CREATE_SESSION, payload={"identifier": self.handle, "password": self.password}
        )
        if status in (400, 401, 403):
            raise SearchUnavailableError(f"login as {self.handle} refused (HTTP {status})")
        token = body.get("accessJwt") if isinstance(body, dict) else None
        if status != 200 or not isinstance(token, str):
            raise RuntimeError(f"createSession answered HTTP {status}")
        self._token = token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        self.requests += 1
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        async with self.session.request(
            method,
            self.base_url + path,
            params=params,
            json=payload,
            headers=headers,
            timeout=self.timeout,
        ) as resp:
            raw = await resp.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise RuntimeError(f"{path}: answer too large")
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None

    async def _put(self, item: InboxItem) -> None:
        try:
            self.inbox.put_nowait(item)
        except asyncio.QueueFull:
            await self.inbox.put(item)


def _parse(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def search_source(
    config: Config,
    matcher: HashtagMatcher,
    inbox: Inbox,
    store: Store,
    session: aiohttp.ClientSession,
    hydrator: ProfileHydrator | None,
    since: datetime | None,
) -> SearchBackfill | None:
    """The backfill when a handle and an app password are configured, else None."""
    handle = config.get("bluesky", "handle")
    password = config.get("bluesky", "app_password")
    if not handle or not password:
        return None
    base = config.get("bluesky", "pds_url") or DEFAULT_PDS
    end = config.event_end
    return SearchBackfill(
        str(base),
        str(handle),
        str(password),
        matcher,
        inbox,
        store,
        session,
        since=since,
        until=end.astimezone(UTC) if end else None,
        hydrator=hydrator,
    )
