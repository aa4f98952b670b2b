"""Blog feeds as a source of write-ups (`digest.feeds`, e.g. a WordPress tag feed
`https://blog.example/tag/<event>/feed/`).

Each feed is fetched through the SSRF-guarded fetcher with a conditional GET (the ETag
and Last-Modified of the last answer are kept as the source's cursor, so an unchanged
feed costs one 304), parsed by `feedparser` from the bytes, and every entry not seen
before becomes a write-up row (`source: "feed"`) in the store's link metadata. Entries
from before the event are background, not write-ups, and are left out. A broken feed is
logged and skipped; it never stops the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import feedparser

from aggregator.digest.classify import GRACE
from aggregator.digest.fetch import FetchRefusedError, GuardedFetcher
from aggregator.digest.links import canonical_url, site_of
from aggregator.model import format_timestamp
from aggregator.sanitise import html_text_and_links
from aggregator.store.base import Store

log = logging.getLogger(__name__)

MAX_EXTRACT = 300
Row = dict[str, Any]


def _moment(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    return datetime(*parsed[:6], tzinfo=UTC)


def entries_to_rows(
    parsed: Any, feed_url: str, *, since: datetime | None, now: datetime
) -> list[Row]:
    """Write-up rows from a parsed feed (feedparser's result). Pure."""
    site = str(parsed.feed.get("title") or "") or site_of(feed_url)
    rows: list[Row] = []
    for entry in parsed.entries:
        url = canonical_url(str(entry.get("link") or ""))
        if url is None:
            continue
        published = _moment(entry.get("published_parsed") or entry.get("updated_parsed"))
        if since is not None and published is not None and published < since - GRACE:
            continue
        summary = html_text_and_links(str(entry.get("summary") or ""))[0]
        summary = " ".join(summary.split())
        if len(summary) > MAX_EXTRACT:
            summary = summary[: MAX_EXTRACT - 1].rsplit(" ", 1)[0] + "…"
        meta = {
            "url": url,
            "title": " ".join(str(entry.get("title") or "").split()) or None,
            "author": str(entry.get("author") or "") or None,
            "site": site,
            "published": format_timestamp(published) if published else None,
            "description": summary or None,
            "image": None,
            "og_type": "article",
            "feed": feed_url,
        }
        rows.append(
            {
                "url": url,
                "final": url,
                "source": "feed",
                "status": "ok",
                "fetched_at": format_timestamp(now),
                "meta": meta,
            }
        )
    return rows


class FeedPoller:
    def __init__(
        self,
        urls: Sequence[str],
        store: Store,
        *,
        allow_loopback: bool = False,
        since: datetime | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.urls = list(urls)
        self.store = store
        self.allow_loopback = allow_loopback
        self.since = since
        self.clock = clock

    async def poll_once(self) -> int:
        """Poll every feed once; returns how many new write-ups were stored."""
        known = set(await self.store.link_meta("feed"))
        new = 0
        async with GuardedFetcher.from_config(self.allow_loopback) as fetcher:
            for url in self.urls:
                try:
                    rows, validators = await self._poll(fetcher, url)
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                    kind = "refused" if isinstance(exc, FetchRefusedError) else "failed"
                    log.warning("feed %s: %s: %s", url[:200], kind, exc)
                    continue
                fresh = [r for r in rows if r["url"] not in known]
                if fresh:
                    await self.store.put_link_meta(fresh)
                    known.update(r["url"] for r in fresh)
                    new += len(fresh)
                    log.info("feed %s: %d new write-ups", url[:200], len(fresh))
                # The validators only after the rows: a crash in between re-reads the
                # feed instead of getting a 304 and losing its new entries.
                if validators:
                    await self.store.save_cursor(f"feed:{url}", json.dumps(validators))
        return new

    async def _poll(
        self, fetcher: GuardedFetcher, url: str
    ) -> tuple[list[Row], dict[str, str] | None]:
        saved = await self.store.load_cursor(f"feed:{url}")
        state: dict[str, str] = json.loads(saved) if saved else {}
        fetched = await fetcher.fetch_feed(
            url, etag=state.get("etag"), modified=state.get("modified")
        )
        if fetched.status == 304:
            return [], None
        if fetched.status != 200:
            raise ValueError(f"HTTP {fetched.status}")
        parsed = await asyncio.to_thread(
            feedparser.parse, fetched.body, response_headers={"content-location": fetched.url}
        )
        if parsed.bozo and not parsed.entries:
            raise ValueError(f"not a feed ({parsed.get('bozo_exception')!s:.120})")
        rows = entries_to_rows(parsed, url, since=self.since, now=self.clock())
        validators = {
            "etag": fetched.headers.get("ETag", ""),
            "modified": fetched.headers.get("Last-Modified", ""),
        }
        return rows, validators if any(validators.values()) else None

    async def run(self, interval: float) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(interval)
