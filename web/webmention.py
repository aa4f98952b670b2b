"""`POST /webmention`: a W3C Webmention receiver for the digest page.

A blog that links to the digest tells us so (`source` = its post, `target` = our digest
URL, form-encoded). We check the request at once (400 for a missing or malformed URL, a
target that is not our digest, source = target; 429 past the per-source-host rate),
answer 202 Accepted, and verify asynchronously as the spec recommends: fetch the source
through the SSRF-guarded fetcher and list it as a write-up only if its HTML has an
`<a href>`/`<link href>` (resolved against the page) equal to the target. A source that
does not link back, that redirects to another host (a page claiming to be someone
else's), that is gone (410) or that is not reachable is rejected and logged; an earlier
verified mention from it is withdrawn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from aggregator.digest.fetch import LOOPBACK, FetchRefusedError, GuardedFetcher
from aggregator.digest.links import canonical_url, same_site
from aggregator.digest.meta import extract_meta, links_in
from aggregator.model import format_timestamp
from aggregator.store.base import Store
from web.keys import CONFIG, RUNTIME
from web.pages import public_base

log = logging.getLogger(__name__)

MAX_URL = 2048
MAX_PENDING = 50  # verifications in flight; more answer 503 rather than queue without end
WINDOW = 3600.0


class WebmentionReceiver:
    def __init__(
        self,
        *,
        allow_loopback: bool,
        per_host_per_hour: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.per_host = per_host_per_hour
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.results: list[tuple[str, str, str]] = []  # (source, target, outcome), recent

    def allow(self, host: str) -> bool:
        """Count one request from `host`; False when it is over the hourly rate."""
        if self.per_host <= 0:
            return True
        now = self.clock()
        seen = self._seen.setdefault(host, deque())
        while seen and now - seen[0] > WINDOW:
            seen.popleft()
        if len(seen) >= self.per_host:
            return False
        seen.append(now)
        return True

    def busy(self) -> bool:
        return len(self._tasks) >= MAX_PENDING

    def start(self, store: Store, source: str, target: str) -> None:
        task = asyncio.create_task(self.verify(store, source, target), name="webmention")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every verification in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def verify(self, store: Store, source: str, target: str) -> None:
        outcome = await self._verify(store, source, target)
        self.results = [*self.results[-99:], (source, target, outcome)]
        if outcome == "verified":
            log.info("webmention: verified %s -> %s", source[:200], target[:200])
        else:
            log.warning("webmention: rejected %s -> %s: %s", source[:200], target[:200], outcome)
            # Withdraw an earlier mention only on a definite answer, not a network blip.
            if outcome.startswith(("no link", "gone", "spoofed", "HTTP 404", "HTTP 410")):
                await self._withdraw(store, source)

    async def _verify(self, store: Store, source: str, target: str) -> str:
        fetcher = GuardedFetcher(
            allowed=LOOPBACK if self.allow_loopback else (),
            respect_robots=False,  # asked for by the source's owner; not crawling
        )
        try:
            async with fetcher:
                fetched = await fetcher.fetch_html(source)
        except FetchRefusedError as exc:
            return f"refused: {exc}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return f"unreachable: {exc or type(exc).__name__}"
        if fetched.status == 410:
            return "gone (410)"
        if fetched.status != 200:
            return f"HTTP {fetched.status}"
        if (urlsplit(fetched.url).hostname or "") != (urlsplit(source).hostname or ""):
            return f"spoofed: the source redirects to another host ({fetched.url[:200]})"
        links = await asyncio.to_thread(links_in, fetched.body, fetched.url)
        if target not in links:
            return "no link to the target"
        meta = await asyncio.to_thread(extract_meta, fetched.body, fetched.url)
        url = canonical_url(source) or source
        final = canonical_url(fetched.url) or url
        if meta.canonical and same_site(meta.canonical, fetched.url):
            final = canonical_url(meta.canonical) or final
        data = meta.to_json() | {"target": target}
        row: dict[str, Any] = {
            "url": url,
            "final": final,
            "source": "webmention",
            "status": "ok",
            "fetched_at": format_timestamp_now(),
            "meta": data,
        }
        await store.put_link_meta([row])
        return "verified"

    async def _withdraw(self, store: Store, source: str) -> None:
        url = canonical_url(source) or source
        existing = (await store.link_meta("webmention")).get(url)
        if existing is not None and existing.get("status") == "ok":
            await store.put_link_meta([existing | {"status": "rejected"}])


def format_timestamp_now() -> str:
    return format_timestamp(datetime.now(UTC))


RECEIVER = web.AppKey("webmention", WebmentionReceiver)


def setup_webmention(app: web.Application) -> None:
    config = app[CONFIG]
    app[RECEIVER] = WebmentionReceiver(
        allow_loopback=bool(config.get("digest", "fetch_private_addresses")),
        per_host_per_hour=int(config.get("digest", "webmention_rate")),
    )
    app.router.add_post("/webmention", receive, name="webmention")
    app.on_shutdown.append(_close)  # before the store closes (cleanup)


async def _close(app: web.Application) -> None:
    await app[RECEIVER].close()


def _bad(reason: str) -> web.Response:
    return web.Response(status=400, text=f"Bad Request: {reason}\n")


def _http_url(value: str) -> bool:
    if not value or len(value) > MAX_URL:
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def ours(target: str, base: str) -> bool:
    """Is `target` our digest (`<base>/digest`, `/digest.md`… on the same origin)?"""
    t, b = urlsplit(target), urlsplit(base)
    if (t.scheme, t.netloc.lower()) != (b.scheme, b.netloc.lower()):
        return False
    path = t.path.removeprefix(b.path.rstrip("/"))
    return path == "/digest" or path.startswith(("/digest.", "/digest/"))


async def receive(request: web.Request) -> web.Response:
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return _bad("send source and target form-encoded")
    try:
        form = await request.post()
    except (ValueError, aiohttp.ClientError):
        return _bad("unreadable form")
    source, target = str(form.get("source") or ""), str(form.get("target") or "")
    if not source or not target:
        return _bad("source and target are both required")
    if not _http_url(source) or not _http_url(target):
        return _bad("source and target must be http(s) URLs")
    if source == target:
        return _bad("source and target are the same")
    if not ours(target, public_base(request)):
        return _bad("target is not this digest")
    receiver = request.app[RECEIVER]
    host = (urlsplit(source).hostname or "").lower()
    if not receiver.allow(host):
        log.warning("webmention: rate limit for %s", host)
        return web.Response(
            status=429, text="Too Many Requests\n", headers={"Retry-After": str(int(WINDOW))}
        )
    if receiver.busy():
        return web.Response(status=503, text="busy, try later\n", headers={"Retry-After": "60"})
    receiver.start(request.app[RUNTIME].store, source, target)
    return web.Response(status=202, text="Accepted: the source will be verified\n")
