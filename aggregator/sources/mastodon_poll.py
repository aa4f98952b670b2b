"""MastodonPoller: follow the event's hashtags on one Mastodon-API server by polling.

One request at a time per server. The first start backfills backwards (`max_id`) to the
event start, then the poller pages *forward* with `min_id` from its saved cursor, so a
catch-up after an outage walks every page instead of only the newest 40. Every page is
followed by a checkpoint in the inbox, so the saved cursor never runs ahead of the
stored posts. Because polling cannot see deletes or edits of posts it has passed, the
newest page is re-read now and then and compared with what was seen there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp

from aggregator.match import normalise_tag
from aggregator.model import parse_timestamp
from aggregator.pipeline import Checkpoint, Delete, Inbox, RawItem
from aggregator.store.base import Store

log = logging.getLogger(__name__)

PAGE_LIMIT = 40
MAX_BACKFILL_PAGES = 100
MAX_BODY = 8 * 1024 * 1024
RECENT_IDS = 400


class MastodonHTTPError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.retry_after = retry_after


@dataclass
class PollTiming:
    interval: float = 20.0  # idle interval
    min_interval: float = 15.0  # the servers' anonymous cache makes faster polls useless
    refresh_every: float = 60.0  # re-read the newest page for edits and deletes


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
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.server = server.rstrip("/")
        self.host = urlsplit(self.server).netloc
        # The server's own domain (from the instance probe) tells home posts and local
        # accounts apart; the configured URL may differ (a proxy, WEB_DOMAIN, a simulator).
        self.domain = domain or urlsplit(self.server).hostname or self.host
        # Provenance of posts normalised from this server; keys the local-id map.
        self.local_source = f"mastodon:{self.domain}"
        self.source = self.source_name(self.server)
        self.tags = [normalise_tag(t) for t in hashtags if normalise_tag(t)]
        self.inbox = inbox
        self.store = store
        self.session = session
        self.since = since
        self.timing = timing or PollTiming()
        self.token = token
        self._clock = clock
        self._now = now
        self._recent: deque[str] = deque(maxlen=RECENT_IDS)  # local ids, oldest first
        self._last_refresh = 0.0
        self.requests = 0
        self.rate_remaining: int | None = None
        self.rate_reset: datetime | None = None

    # the loop ------------------------------------------------------------------------

    @staticmethod
    def source_name(server: str) -> str:
        """Names the source and keys its cursor: stable whatever the probe finds."""
        return f"mastodon:{urlsplit(server.rstrip('/')).netloc}"

    async def run(self) -> None:
        if not self.tags:
            log.warning("%s: no hashtags configured; nothing to poll", self.source)
            return
        await self.poll_forever(await self.start())

    async def start(self) -> str:
        """Load the saved cursor, or backfill on the very first start; return the cursor."""
        # Restarted: the newest page's comparison needs to know what we stored before.
        recent = await self.store.recent_local_ids(self.local_source, RECENT_IDS)
        self._recent.extend(sorted(recent, key=lambda x: _numeric(x) or 0))
        cursor = await self.store.load_cursor(self.source)
        if cursor is None:
            cursor = await self._backfill()
        return cursor

    async def poll_forever(self, cursor: str) -> None:
        while True:
            cursor, fetched = await self.catch_up(cursor)
            if self._clock() - self._last_refresh >= self.timing.refresh_every:
                await self._refresh_newest()
            await asyncio.sleep(self._next_delay(fetched))

    def _next_delay(self, fetched: int) -> float:
        delay = self.timing.min_interval if fetched else self.timing.interval
        # Spread what is left of the rate-limit window evenly up to its reset.
        if self.rate_remaining is not None and self.rate_reset is not None:
            window = (self.rate_reset - self._now()).total_seconds()
            if window > 0:
                delay = max(delay, window / max(1, self.rate_remaining - 10))
        return delay

    async def _backfill(self) -> str:
        """First start: read backwards to `since`, hand posts over oldest first."""
        since = self.since or (self._now() - timedelta(hours=24))
        pages: list[list[dict[str, Any]]] = []
        max_id: str | None = None
        newest: str | None = None
        for _ in range(MAX_BACKFILL_PAGES):
            params = {"limit": str(PAGE_LIMIT)}
            if max_id:
                params["max_id"] = max_id
            statuses, _links = await self._fetch(params)
            if not statuses:
                break
            if newest is None:
                newest = _id_of(statuses[0])
            pages.append(statuses)
            max_id = _id_of(statuses[-1])
            oldest = parse_timestamp(statuses[-1].get("created_at"))
            if oldest is not None and oldest < since:
                break
        else:
            log.warning("%s: backfill stopped after %d pages", self.source, MAX_BACKFILL_PAGES)
        count = 0
        for statuses in reversed(pages):
            for status in reversed(statuses):
                created = parse_timestamp(status.get("created_at"))
                if created is not None and created < since:
                    continue
                await self.push(status)
                count += 1
        cursor = newest or "0"
        await self.inbox.put(Checkpoint(self.source, cursor))
        log.info("%s: backfilled %d posts since %s", self.source, count, since.isoformat())
        return cursor

    async def catch_up(self, cursor: str) -> tuple[str, int]:
        """Page forward from `cursor` until a short page says we are at the head."""
        fetched = 0
        while True:
            statuses, links = await self._fetch({"limit": str(PAGE_LIMIT), "min_id": cursor})
            if not statuses:
                return cursor, fetched
            for status in reversed(statuses):  # pages come newest first
                await self.push(status)
            fetched += len(statuses)
            cursor = links.get("prev_min_id") or _id_of(statuses[0]) or cursor
            await self.inbox.put(Checkpoint(self.source, cursor))
            if len(statuses) < PAGE_LIMIT:
                return cursor, fetched

    async def _refresh_newest(self) -> None:
        self._last_refresh = self._clock()
        statuses, _ = await self._fetch({"limit": str(PAGE_LIMIT)})
        for status in reversed(statuses):
            await self.push(status, remember=False)  # dedupe turns unchanged ones into no-ops
        if len(statuses) < 2:
            return
        seen = {_id_of(s) for s in statuses}
        seen |= {_id_of(s["reblog"]) for s in statuses if isinstance(s.get("reblog"), dict)}
        lowest = _numeric(_id_of(statuses[-1]))
        if lowest is None:
            return  # ids of this server software are not comparable; cannot infer deletes
        for local_id in list(self._recent):
            value = _numeric(local_id)
            if value is not None and value > lowest and local_id not in seen:
                log.info("%s: status %s is gone; retracting", self.source, local_id)
                self._recent.remove(local_id)
                await self.inbox.put(Delete(self.local_source, local_id=local_id))

    async def push(self, status: dict[str, Any], remember: bool = True) -> None:
        inner = status.get("reblog")
        local_id = _id_of(inner if isinstance(inner, dict) else status)
        if remember and local_id and local_id not in self._recent:
            self._recent.append(local_id)
        await self.inbox.put(
            RawItem(self.source, "mastodon.status", status, {"server": f"https://{self.domain}"})
        )

    # HTTP ------------------------------------------------------------------------------

    def _url(self) -> str:
        return f"{self.server}/api/v1/timelines/tag/{quote(self.tags[0], safe='')}"

    async def _fetch(self, params: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        query: list[tuple[str, str]] = list(params.items())
        query += [("any[]", tag) for tag in self.tags[1:5]]
        headers = {"Accept": "application/json", "User-Agent": "backchannel (event wall)"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        while True:
            self.requests += 1
            async with self.session.get(
                self._url(),
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                self._read_rate_headers(resp)
                if resp.status == 429:
                    wait = _retry_after(resp, self._now()) or 60.0
                    log.warning("%s: rate limited (429); waiting %.0fs", self.source, wait)
                    await asyncio.sleep(wait)
                    continue
                if resp.status >= 400:
                    text = (await resp.content.read(2000)).decode("utf-8", "replace")
                    raise MastodonHTTPError(resp.status, text[:200])
                body = await read_capped(resp, MAX_BODY)
                try:
                    data = json.loads(body)
                except ValueError as exc:
                    raise MastodonHTTPError(resp.status, f"invalid JSON: {exc}") from None
                if not isinstance(data, list):
                    raise MastodonHTTPError(resp.status, "expected a JSON list of statuses")
                statuses = [s for s in data if isinstance(s, dict)]
                return statuses, _parse_links(resp.headers.getall("Link", []))

    def _read_rate_headers(self, resp: aiohttp.ClientResponse) -> None:
        remaining = resp.headers.get("X-RateLimit-Remaining")
        reset = resp.headers.get("X-RateLimit-Reset")
        if remaining is not None and remaining.strip().isdigit():
            self.rate_remaining = int(remaining)
        if reset is not None:
            self.rate_reset = parse_timestamp(reset.strip())


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or MastodonHTTPError once it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise MastodonHTTPError(resp.status, f"response larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _id_of(status: dict[str, Any]) -> str:
    value = status.get("id")
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else ""


def _numeric(local_id: str) -> int | None:
    return int(local_id) if local_id.isdigit() and len(local_id) < 40 else None


def _retry_after(resp: aiohttp.ClientResponse, now: datetime) -> float | None:
    raw = resp.headers.get("Retry-After")
    if raw:
        raw = raw.strip()
        if raw.replace(".", "", 1).isdigit():
            return min(float(raw), 900.0)
        moment = parse_timestamp(raw)
        if moment is None:
            try:
                moment = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                moment = None
        if moment is not None:
            return max(0.0, min((moment - now).total_seconds(), 900.0))
    reset = resp.headers.get("X-RateLimit-Reset")
    moment = parse_timestamp(reset.strip()) if reset else None
    if moment is not None:
        return max(1.0, min((moment - now).total_seconds(), 900.0))
    return None


def _parse_links(values: list[str]) -> dict[str, str]:
    """Pull `min_id` of rel=prev and `max_id` of rel=next out of Link headers."""
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            if ";" not in part:
                continue
            target, _, params = part.partition(";")
            url = target.strip().strip("<>")
            query = parse_qs(urlsplit(url).query)
            if 'rel="prev"' in params and "min_id" in query:
                out["prev_min_id"] = query["min_id"][0]
            elif 'rel="next"' in params and "max_id" in query:
                out["next_max_id"] = query["max_id"][0]
    return out
