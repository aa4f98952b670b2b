"""MastodonPoller: follow the event's hashtags on one Mastodon-API server over REST.

Hashtags go five to a request (the tag plus `any[]` of four more), each group with its
own saved cursor. The first start backfills backwards (`max_id`) to the event start;
after that the poller pages *forward* with `min_id` from the cursor, so a catch-up after
an outage walks every page instead of only the newest 40. Every page is followed by a
checkpoint in the inbox, so the saved cursor never runs ahead of the stored posts.

Forward paging alone misses two things, so the newest part of the timeline (`lookback`
seconds of it) is re-read now and then:
- late federation: Mastodon gives a remote post the id of its `created_at`, so a post that
  reaches the server late lands *behind* the cursor;
- deletes and edits of posts already passed: a remembered post missing from the re-read
  range is retracted, a changed one is an update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from aggregator.match import normalise_tag
from aggregator.model import parse_timestamp
from aggregator.pipeline import Checkpoint, Delete, Inbox, RawItem
from aggregator.sources.mastodon_api import OversizedPageError, RequestBudget, TimelineClient
from aggregator.store.base import Store

log = logging.getLogger(__name__)

PAGE_LIMIT = 40
MAX_BACKFILL_PAGES = 100
LOOKBACK_PAGES = 10
TAGS_PER_REQUEST = 5
RECENT_IDS = 2000
SNOWFLAKE_EPOCH = datetime(2017, 1, 1, tzinfo=UTC)


@dataclass
class PollTiming:
    interval: float = 20.0  # between polls of an idle server
    min_interval: float = 15.0  # the servers' anonymous cache makes faster polls useless
    refresh_every: float = 60.0  # re-read the newest `lookback` seconds when polling
    lookback: float = 900.0  # how late a post may federate and still be found
    stream_refresh_every: float = 300.0  # the same safety net while streaming
    ping_interval: float = 20.0  # websocket keepalive; a dead stream is noticed in 2x this
    budget: int = 300  # requests in any `budget_period` seconds, per server
    budget_period: float = 300.0


class MastodonPoller:
    def __init__(
        self,
        server: str,
        hashtags: Sequence[str],
        inbox: Inbox,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        since: datetime | None = None,
        timing: PollTiming | None = None,
        token: str | None = None,
        domain: str | None = None,
        client: TimelineClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.server = server.rstrip("/")
        # The server's own domain (from the instance probe) tells home posts and local
        # accounts apart; the configured URL may differ (a proxy, WEB_DOMAIN, a simulator).
        self.domain = domain or urlsplit(self.server).hostname or urlsplit(self.server).netloc
        # Provenance of posts normalised from this server; keys the local-id map.
        self.local_source = f"mastodon:{self.domain}"
        self.source = self.source_name(self.server)
        tags = list(dict.fromkeys(t for t in map(normalise_tag, hashtags) if t))
        self.tags = tags
        step = TAGS_PER_REQUEST
        self.groups = [tags[i : i + step] for i in range(0, len(tags), step)]
        # The first group keeps the plain source name, so cursors saved before stay valid.
        self.keys = [self.source] + [f"{self.source}#{i + 1}" for i in range(1, len(self.groups))]
        self.cursors: list[str] = []
        self.inbox, self.store = inbox, store
        self.since = since
        self.timing = timing or PollTiming()
        self.client = client or TimelineClient(
            self.server,
            session,
            token=token,
            budget=RequestBudget(self.timing.budget, self.timing.budget_period),
            clock=clock,
            now=now,
        )
        self._clock, self._now = clock, now
        self._recent: OrderedDict[str, None] = OrderedDict()  # local ids seen here
        self._last_refresh = clock()

    @staticmethod
    def source_name(server: str) -> str:
        """Names the source and keys its cursor: stable whatever the probe finds."""
        return f"mastodon:{urlsplit(server.rstrip('/')).netloc}"

    # the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        if not self.tags:
            log.warning("%s: no hashtags configured; nothing to poll", self.source)
            return
        await self.start()
        await self.poll_forever()

    async def start(self) -> None:
        """Load the saved cursors, backfilling groups that have none (the first start)."""
        recent = await self.store.recent_local_ids(self.local_source, RECENT_IDS)
        for local_id in sorted(recent, key=lambda x: _numeric(x) or 0):
            self._remember(local_id)
        self.cursors = []
        for key, group in zip(self.keys, self.groups, strict=True):
            cursor = await self.store.load_cursor(key)
            self.cursors.append(cursor if cursor is not None else await self._backfill(key, group))
        # Posts may have federated behind the cursors while we were away: re-read soon.
        self._last_refresh = float("-inf")

    async def poll_forever(self) -> None:
        while True:
            fetched = await self.poll_once()
            # Busy: as often as the server's cache allows; idle: slower. TimelineClient
            # adds the rate-limit spacing on top.
            await asyncio.sleep(self.timing.min_interval if fetched else self.timing.interval)

    async def poll_once(self) -> int:
        """Catch up, and re-read the newest posts when that is due; the posts fetched."""
        fetched = await self.catch_up()
        if self._clock() - self._last_refresh >= self.timing.refresh_every:
            await self.refresh()
        return fetched

    async def _backfill(self, key: str, tags: list[str]) -> str:
        """First start: read backwards to `since`, hand posts over oldest first."""
        since = self.since or (self._now() - timedelta(hours=24))
        pages: list[list[dict[str, Any]]] = []
        max_id: str | None = None
        newest: str | None = None
        limit = PAGE_LIMIT
        for _ in range(MAX_BACKFILL_PAGES):
            params = {"limit": str(limit)} | ({"max_id": max_id} if max_id else {})
            statuses, links, cut = await self._page(tags, params)
            limit = 1 if cut else limit
            if not statuses:
                max_id = links.get("next_max_id") if cut else None  # past an unreadable one
                if max_id is None:
                    break
                continue
            newest = newest or _id_of(statuses[0])
            pages.append(statuses)
            max_id = _id_of(statuses[-1])
            oldest = parse_timestamp(statuses[-1].get("created_at"))
            if oldest is not None and oldest < since:
                break
        else:
            log.warning("%s: backfill stopped after %d pages", key, MAX_BACKFILL_PAGES)
        count = 0
        for statuses in reversed(pages):
            for status in reversed(statuses):
                created = parse_timestamp(status.get("created_at"))
                if created is None or created >= since:
                    await self.push(status)
                    count += 1
        cursor = newest or "0"
        await self.inbox.put(Checkpoint(key, cursor))
        hashtags = " ".join("#" + t for t in tags)
        log.info("%s: backfilled %d posts since %s (%s)", key, count, since.isoformat(), hashtags)
        return cursor

    async def catch_up(self) -> int:
        """Page every group forward from its cursor to the head; the posts fetched."""
        fetched = 0
        for i, (key, tags) in enumerate(zip(self.keys, self.groups, strict=True)):
            limit = PAGE_LIMIT
            while True:
                params = {"limit": str(limit), "min_id": self.cursors[i]}
                statuses, links, cut = await self._page(tags, params)
                limit = 1 if cut else limit  # one at a time until past the big one
                if not statuses:
                    skip = links.get("prev_min_id") if cut else None  # past an unreadable one
                    if skip is None or skip == self.cursors[i]:
                        break
                    self.cursors[i] = skip
                    await self.inbox.put(Checkpoint(key, skip))
                    continue
                for status in reversed(statuses):  # pages come newest first
                    await self.push(status)
                fetched += len(statuses)
                self.cursors[i] = links.get("prev_min_id") or _id_of(statuses[0]) or self.cursors[i]
                await self.inbox.put(Checkpoint(key, self.cursors[i]))
                if len(statuses) < limit:
                    break
        return fetched

    async def refresh(self) -> None:
        """Re-read the newest `lookback` seconds: late arrivals, edits, deletes."""
        self._last_refresh = self._clock()
        # A late post is one created before the newest we passed: look back from there
        # (from now where ids carry no time).
        passed = [t for t in map(snowflake_time, self.cursors) if t is not None]
        floor = min(passed or [self._now()]) - timedelta(seconds=self.timing.lookback)
        seen: set[str] = set()
        bounds = [await self._reread(tags, floor, seen) for tags in self.groups]
        if not all(bounds):
            return  # ids not comparable (other server software) or a gap: judge nothing
        # Only ids inside the range every group's re-read covered can be judged: a page
        # served from the server's cache may predate the newest posts we already have.
        low = max(b[0] for b in bounds if b is not None)
        high = min(b[1] for b in bounds if b is not None)
        for local_id in list(self._recent):
            value = _numeric(local_id)
            if value is not None and low < value < high and local_id not in seen:
                log.info("%s: status %s is gone; retracting", self.source, local_id)
                del self._recent[local_id]
                await self.inbox.put(Delete(self.local_source, local_id=local_id))

    async def _reread(
        self, tags: list[str], floor: datetime, seen: set[str]
    ) -> tuple[int, int] | None:
        """Push the group's statuses newer than `floor`; the id range that covered."""
        max_id: str | None = None
        high: int | None = None
        low = 0
        for _ in range(LOOKBACK_PAGES):
            params = {"limit": str(PAGE_LIMIT)} | ({"max_id": max_id} if max_id else {})
            statuses, _, cut = await self._page(tags, params)
            if cut:
                return None  # a status too large to read is in the way: judge nothing
            for status in reversed(statuses):
                await self.push(status)
                seen.add(_id_of(status))
                if isinstance(status.get("reblog"), dict):
                    seen.add(_id_of(status["reblog"]))
            if not statuses:
                break  # the start of the timeline: everything below is covered
            ids = [_numeric(_id_of(s)) for s in (statuses[0], statuses[-1])]
            if ids[0] is None or ids[1] is None:
                return None
            high = ids[0] if high is None else high
            low, max_id = ids[1], _id_of(statuses[-1])
            oldest = parse_timestamp(statuses[-1].get("created_at"))
            if len(statuses) < PAGE_LIMIT:
                low = 0
                break
            if oldest is not None and oldest < floor:
                break
        return low, (high if high is not None else 0)

    async def _page(
        self, tags: list[str], params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, str], bool]:
        """A page and whether it was cut short: a page too large to read is read again
        one status at a time, and a status too large by itself is skipped (the links
        still say where the next one starts), so one hostile post cannot stop a source."""
        try:
            statuses, links = await self.client.timeline(tags, params)
            return statuses, links, False
        except OversizedPageError as exc:
            if params.get("limit") == "1":
                log.warning("%s: skipped a status: %s", self.source, exc)
                return [], exc.links, True
            log.info("%s: %s; reading one status at a time", self.source, exc)
        try:
            statuses, links = await self.client.timeline(tags, params | {"limit": "1"})
            return statuses, links, True
        except OversizedPageError as exc:
            log.warning("%s: skipped a status: %s", self.source, exc)
            return [], exc.links, True

    # handing over --------------------------------------------------------------------

    async def push(self, status: dict[str, Any]) -> None:
        inner = status.get("reblog")
        self._remember(_id_of(inner if isinstance(inner, dict) else status))
        await self.inbox.put(
            RawItem(self.source, "mastodon.status", status, {"server": f"https://{self.domain}"})
        )

    def advance(self, status: dict[str, Any]) -> None:
        """A streamed status moves the cursor of every group whose tags it carries."""
        local = _numeric(_id_of(status))
        names = status.get("tags")
        if local is None or not isinstance(names, list):
            return
        carried = {normalise_tag(str(t.get("name"))) for t in names if isinstance(t, dict)}
        for i, tags in enumerate(self.groups):
            current = _numeric(self.cursors[i])
            if carried & set(tags) and current is not None and local > current:
                self.cursors[i] = str(local)

    async def checkpoint(self) -> None:
        for key, cursor in zip(self.keys, self.cursors, strict=True):
            await self.inbox.put(Checkpoint(key, cursor))

    def _remember(self, local_id: str) -> None:
        if not local_id:
            return
        self._recent[local_id] = None
        self._recent.move_to_end(local_id)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)


def _id_of(status: dict[str, Any]) -> str:
    value = status.get("id")
    if isinstance(value, bool):
        return ""
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else ""


def snowflake_time(local_id: str) -> datetime | None:
    """When a Mastodon id was made (its high bits are Unix milliseconds); None for ids
    of other server software or of the pre-2017 sequential kind."""
    value = _numeric(local_id)
    if value is None:
        return None
    try:
        when = datetime.fromtimestamp((value >> 16) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return when if when >= SNOWFLAKE_EPOCH else None


def _numeric(local_id: str) -> int | None:
    return int(local_id) if local_id.isdigit() and len(local_id) < 40 else None
