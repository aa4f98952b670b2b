"""Unfurl shared links: expand shorteners and redirects, read the page's metadata, and
remember the result in the store so the digest improves for days without refetching.

Every fetch goes through the SSRF-guarded fetcher (each redirect hop re-checked, size and
time capped, HTML only, robots.txt). The platform's preview (Mastodon card, Bluesky
`embed.external`) is used first: a link whose kind the URL already tells (slides, video,
photos, code) and that has a preview is not fetched at all; for the others the page adds
what previews lack (author, published date, article type). A `rel=canonical` is trusted
only when it stays on the same site. Concurrency is bounded overall and per host. A
failed fetch is remembered too and retried only after `retry_after`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from aggregator.digest.classify import url_kind
from aggregator.digest.fetch import FetchRefusedError, GuardedFetcher, WrongTypeError
from aggregator.digest.links import SharedLink, canonical_url, same_site
from aggregator.digest.meta import extract_meta
from aggregator.model import format_timestamp
from aggregator.store.base import Store

log = logging.getLogger(__name__)

SHORTENERS = frozenset(
    {
        "bit.ly",
        "t.co",
        "tinyurl.com",
        "ow.ly",
        "buff.ly",
        "is.gd",
        "goo.gl",
        "lnkd.in",
        "dlvr.it",
        "trib.al",
        "s.id",
        "rebrand.ly",
        "cutt.ly",
        "t.ly",
        "shorturl.at",
        "tiny.cc",
        "rb.gy",
        "bl.ink",
        "amzn.to",
        "youtu.be",
    }
)
SAVE_EVERY = 20
Row = dict[str, Any]


def is_shortener(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.") in SHORTENERS


def needs_fetch(
    link: SharedLink, cached: Mapping[str, Any] | None, now: datetime, retry: timedelta
) -> bool:
    if cached is not None:
        if cached.get("status") == "ok":
            return False
        fetched = datetime.fromisoformat(str(cached.get("fetched_at")).replace("Z", "+00:00"))
        return now - fetched >= retry
    if is_shortener(link.url):
        return True
    # The URL tells the kind and the platform made a preview: nothing to learn.
    return not (url_kind(link.url) and link.preview.title)


class Unfurler:
    def __init__(
        self,
        fetcher: GuardedFetcher,
        *,
        concurrency: int = 8,
        per_host: int = 2,
        retry_after: timedelta = timedelta(hours=6),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.fetcher = fetcher
        self.limit = asyncio.Semaphore(concurrency)
        self.per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self.retry_after = retry_after
        self.clock = clock

    def pending(self, links: Sequence[SharedLink], cache: Mapping[str, Row]) -> list[SharedLink]:
        now = self.clock()
        return [
            link for link in links if needs_fetch(link, cache.get(link.url), now, self.retry_after)
        ]

    async def run(
        self,
        links: Sequence[SharedLink],
        store: Store,
        *,
        advance: Callable[[], None] = lambda: None,
    ) -> list[Row]:
        """Unfurl `links` (already filtered by `pending`), saving rows as they come."""
        rows: list[Row] = []
        unsaved: list[Row] = []

        async def one(link: SharedLink) -> None:
            row = await self.unfurl(link.url)
            rows.append(row)
            unsaved.append(row)
            advance()
            if len(unsaved) >= SAVE_EVERY:
                batch = unsaved[:]
                unsaved.clear()
                await store.put_link_meta(batch)

        await asyncio.gather(*(one(link) for link in links))
        await store.put_link_meta(unsaved)
        if rows:
            counts = Counter(str(r["status"]) for r in rows)
            log.info(
                "unfurled %d links: %s",
                len(rows),
                ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            )
        return rows

    async def unfurl(self, url: str) -> Row:
        host = (urlsplit(url).hostname or "").lower()
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with self.limit, per_host:
            return await self._unfurl(url)

    async def _unfurl(self, url: str) -> Row:
        row: Row = {
            "url": url,
            "final": url,
            "source": "page",
            "status": "ok",
            "fetched_at": format_timestamp(self.clock()),
            "meta": None,
        }
        try:
            fetched = await self.fetcher.fetch_html(url)
        except WrongTypeError as exc:  # a shortener to a PDF: the address is what we learn
            if exc.status != 200:
                return row | {"status": "error", "error": f"HTTP {exc.status}"}
            row["final"] = canonical_url(exc.url) or url
            row["meta"] = {"url": exc.url, "content_type": exc.content_type}
            return row
        except FetchRefusedError as exc:
            log.debug("unfurl: refused %s: %s", url[:200], exc)
            return row | {"status": "refused", "error": str(exc)[:200]}
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.debug("unfurl: could not fetch %s: %s", url[:200], exc)
            return row | {"status": "error", "error": str(exc)[:200] or type(exc).__name__}
        if fetched.status != 200:
            return row | {"status": "error", "error": f"HTTP {fetched.status}"}
        meta = await asyncio.to_thread(extract_meta, fetched.body, fetched.url)
        final = canonical_url(fetched.url) or url
        if meta.canonical and same_site(meta.canonical, fetched.url):
            final = canonical_url(meta.canonical) or final
        row["final"] = final
        row["meta"] = meta.to_json()
        return row
