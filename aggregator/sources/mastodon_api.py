"""Talking to one Mastodon-API server: Mastodon.py where it serves, aiohttp where it cannot.

Mastodon.py does the instance probe and the token check. It is blocking (requests), so
each call runs in a worker thread, with `ratelimit_method="throw"` so it never sleeps in
a thread we cannot cancel, and its exceptions are mapped to ours.

The tag timeline is read with aiohttp (`TimelineClient`), because Mastodon.py 2.3.3 does
not fit there: `timeline_hashtag()` takes only hashtag/local/remote/only_media/limit and
the three id bounds, no `any[]`, so several hashtags would cost one request each against
the 300-per-5-minutes budget; `timeline()` first calls `timeline_is_available()` (one more
instance request); a 429 under "throw" raises a bare MastodonRatelimitError("Hit rate
limit."); responses are read whole with no size cap; and a call in a worker thread cannot
be cancelled at shutdown.

`TimelineClient` is the one way a source reaches the REST API of a server: one request at
a time, never more than the budget (300 in any 5 minutes) counting the Mastodon.py calls
and stream handshakes too, spaced out once less than half of the server's
`X-RateLimit-Remaining` is left, and a 429 waited out before anything else is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import mastodon
from mastodon import Mastodon

from aggregator.model import parse_timestamp

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024
MAX_WAIT = 900.0  # never believe a server that asks us to wait longer than this
RESET_MARGIN = 0.5  # seconds past X-RateLimit-Reset before the new window is trusted
USER_AGENT = "backchannel (event wall)"


class MastodonSourceError(Exception):
    """Something the source can act on; subclasses say what."""


class TokenRefusedError(MastodonSourceError):
    """401/403: the token is missing, invalid or lacks the scope."""


class RateLimitedError(MastodonSourceError):
    def __init__(self, message: str, reset_at: float | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at  # epoch seconds, when the server said


class ServerUnavailableError(MastodonSourceError):
    """Network errors and 5xx: retry later with backoff."""


class MastodonHTTPError(MastodonSourceError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class OversizedPageError(MastodonHTTPError):
    """A page too large to read; its Link header still says where the next one starts."""

    def __init__(self, status: int, message: str, links: dict[str, str]) -> None:
        super().__init__(status, message)
        self.links = links


# Mastodon.py: probe and token check ------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    domain: str
    software: str
    version: str
    streaming_url: str | None
    tag_timeline_needs_token: bool

    def describe(self) -> str:
        return f"{self.domain} ({self.software} {self.version})"


def _client(base_url: str, token: str | None) -> Mastodon:
    return Mastodon(
        api_base_url=base_url,
        access_token=token,
        ratelimit_method="throw",
        request_timeout=15,
        version_check_mode="none",
        user_agent=USER_AGENT,
    )


def _map(exc: Exception, client: Mastodon) -> MastodonSourceError:
    if isinstance(exc, mastodon.MastodonUnauthorizedError):
        return TokenRefusedError(str(exc))
    if isinstance(exc, mastodon.MastodonRatelimitError):
        # Mastodon.py parsed X-RateLimit-Reset (local epoch seconds) before it threw.
        reset = getattr(client, "ratelimit_reset", None)
        return RateLimitedError(str(exc), reset if isinstance(reset, int | float) else None)
    if isinstance(exc, mastodon.MastodonNetworkError | mastodon.MastodonServerError):
        return ServerUnavailableError(str(exc))
    if isinstance(exc, mastodon.MastodonAPIError) and "403" in str(exc):
        return TokenRefusedError(str(exc))
    return MastodonSourceError(f"{type(exc).__name__}: {exc}")


async def _call(client: Mastodon, method: str) -> Any:
    try:
        return await asyncio.to_thread(getattr(client, method))
    except mastodon.MastodonError as exc:
        raise _map(exc, client) from None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


async def probe(base_url: str, gate: TimelineClient | None = None) -> Capabilities:
    """What the server is and offers: /api/v2/instance, falling back to v1."""
    client = _client(base_url, None)
    host = urlsplit(base_url).hostname or base_url
    try:
        async with _slot(gate):
            data = await _call(client, "instance_v2")
        v2 = True
    except MastodonSourceError as exc:
        if isinstance(exc, ServerUnavailableError | RateLimitedError):
            raise
        async with _slot(gate):
            data = await _call(client, "instance_v1")
        v2 = False
    data = dict(data) if isinstance(data, dict) else {}
    version = str(data.get("version") or "?")
    software = "Mastodon"
    if "compatible" in version:  # e.g. "3.0.0 (compatible; Pleroma 2.5.0)"
        software = version.split("compatible;", 1)[1].strip(" )").split(" ")[0]
    if v2:
        domain = str(data.get("domain") or host)
        streaming = _get(data, "configuration", "urls", "streaming")
        # Mastodon 4.5 TopicController: without local/remote params, a token is needed
        # unless both halves of the hashtag feed are public.
        access = _get(data, "configuration", "timelines_access", "hashtag_feeds")
        needs_token = isinstance(access, dict) and any(
            access.get(part, "public") != "public" for part in ("local", "remote")
        )
    else:
        domain = str(data.get("uri") or host).removeprefix("https://")
        streaming = _get(data, "urls", "streaming_api")
        needs_token = False
    return Capabilities(
        domain=domain,
        software=software,
        version=version,
        streaming_url=str(streaming) if isinstance(streaming, str) and streaming else None,
        tag_timeline_needs_token=needs_token,
    )


async def verify_token(base_url: str, token: str, gate: TimelineClient | None = None) -> str:
    """The account name the token belongs to; TokenRefusedError if it is not valid."""
    async with _slot(gate):
        account = await _call(_client(base_url, token), "account_verify_credentials")
    return str(_get(dict(account), "acct") or "?")


@contextlib.asynccontextmanager
async def _slot(gate: TimelineClient | None) -> AsyncIterator[None]:
    if gate is None:
        yield
        return
    async with gate.slot():
        yield


# aiohttp: the tag timeline, within the server's limits ----------------------------------


class RequestBudget:
    """At most `limit` requests in any `period` seconds (a sliding window). Pure."""

    def __init__(self, limit: int = 300, period: float = 300.0) -> None:
        self.limit, self.period = max(1, limit), period
        self._sent: deque[float] = deque()

    def delay(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.period - now

    def note(self, now: float) -> None:
        self._sent.append(now)


def pace_spacing(
    remaining: int | None, limit: int | None, reset: datetime | None, now: datetime
) -> float:
    """Seconds between requests that spread what is left of the server's window up to its
    reset; 0 while more than half of it is left (a catch-up may use that at full speed)."""
    if remaining is None or reset is None:
        return 0.0
    window = (reset - now).total_seconds()
    if window <= 0 or (limit is not None and remaining > limit // 2):
        return 0.0
    if remaining <= 1:  # keep the last one: clocks differ, the reset may come late
        return min(window + RESET_MARGIN, MAX_WAIT)
    return min(window / remaining, MAX_WAIT)


class TimelineClient:
    """A source's way to one server's REST API; outlives restarts, so its budget does."""

    def __init__(
        self,
        server: str,
        session: aiohttp.ClientSession,
        *,
        token: str | None = None,
        budget: RequestBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.server = server.rstrip("/")
        self.session, self.token = session, token
        self.budget = budget or RequestBudget()
        self._clock, self._now = clock, now
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0  # after a 429, on our monotonic clock
        self._last = float("-inf")
        self.requests = 0
        self.rate_limit: int | None = None
        self.rate_remaining: int | None = None
        self.rate_reset: datetime | None = None

    def block_until(self, epoch: float) -> None:
        """The server said (through Mastodon.py) to wait until `epoch` (Unix seconds)."""
        wait = min(max(epoch - time.time(), 1.0), MAX_WAIT)
        self._blocked_until = max(self._blocked_until, self._clock() + wait)

    async def wait_if_blocked(self) -> None:
        while (delay := self._blocked_until - self._clock()) > 0:
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold the server's one request slot for a request made elsewhere (Mastodon.py,
        the stream handshake), counted against the same limits."""
        async with self._lock:
            await self._turn()
            yield

    async def _turn(self) -> None:
        """Wait until one more request is within every limit, then count it as sent."""
        while True:
            now = self._clock()
            spacing = pace_spacing(
                self.rate_remaining, self.rate_limit, self.rate_reset, self._now()
            )
            delay = max(
                self.budget.delay(now), self._blocked_until - now, self._last + spacing - now
            )
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        self._last = self._clock()
        self.budget.note(self._last)
        self.requests += 1
        if self.rate_remaining is not None:
            # Until a response says otherwise (errors may carry no headers), this one counts.
            self.rate_remaining = max(0, self.rate_remaining - 1)

    async def timeline(
        self, tags: Sequence[str], params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """One page of the tag timeline of `tags[0]` plus `any[]` of the others (≤ 4)."""
        url = f"{self.server}/api/v1/timelines/tag/{quote(tags[0], safe='')}"
        query = list(params.items()) + [("any[]", tag) for tag in tags[1:5]]
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self._lock:  # one request at a time per server
            while True:
                await self._turn()
                async with self.session.get(
                    url, params=query, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
                ) as resp:
                    self._read_rate_headers(resp)
                    if resp.status == 429:
                        wait = _retry_after(resp, self._now()) or 60.0
                        self._blocked_until = self._clock() + wait
                        log.warning("%s: rate limited (429); waiting %.0f s", self.server, wait)
                        continue
                    if resp.status in (401, 403):
                        raise TokenRefusedError(f"HTTP {resp.status} for the tag timeline")
                    if resp.status >= 400:
                        text = (await resp.content.read(2000)).decode("utf-8", "replace")
                        raise MastodonHTTPError(resp.status, text[:200])
                    links = _parse_links(resp.headers.getall("Link", []))
                    body = await read_capped(resp, MAX_BODY, links)
                try:
                    data = json.loads(body)
                except ValueError as exc:
                    raise MastodonHTTPError(resp.status, f"invalid JSON: {exc}") from None
                if not isinstance(data, list):
                    raise MastodonHTTPError(resp.status, "expected a JSON list of statuses")
                return [s for s in data if isinstance(s, dict)], links

    def _read_rate_headers(self, resp: aiohttp.ClientResponse) -> None:
        for name, attr in (("Limit", "rate_limit"), ("Remaining", "rate_remaining")):
            value = resp.headers.get(f"X-RateLimit-{name}", "").strip()
            if value.isdigit() and len(value) < 10:
                setattr(self, attr, int(value))
        reset = resp.headers.get("X-RateLimit-Reset")
        if reset is not None:
            self.rate_reset = parse_timestamp(reset.strip())


async def read_capped(
    resp: aiohttp.ClientResponse, limit: int, links: dict[str, str] | None = None
) -> bytes:
    """The whole body, or OversizedPageError once it passes `limit` bytes."""
    too_big = OversizedPageError(resp.status, f"response larger than {limit} bytes", links or {})
    if (resp.content_length or 0) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(resp: aiohttp.ClientResponse, now: datetime) -> float | None:
    raw = (resp.headers.get("Retry-After") or "").strip()
    if raw:
        if raw.replace(".", "", 1).isdigit():
            return min(float(raw), MAX_WAIT)
        moment = parse_timestamp(raw)
        if moment is None:
            try:
                moment = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                moment = None
        if moment is not None:
            return max(0.0, min((moment - now).total_seconds(), MAX_WAIT))
    # Mastodon itself sends no Retry-After: its window ends at X-RateLimit-Reset.
    reset = resp.headers.get("X-RateLimit-Reset")
    moment = parse_timestamp(reset.strip()) if reset else None
    if moment is not None:
        return max(1.0, min((moment - now).total_seconds(), MAX_WAIT))
    return None


def _parse_links(values: list[str]) -> dict[str, str]:
    """Pull `min_id` of rel=prev and `max_id` of rel=next out of Link headers."""
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            if ";" not in part:
                continue
            target, _, params = part.partition(";")
            query = parse_qs(urlsplit(target.strip().strip("<>")).query)
            if 'rel="prev"' in params and "min_id" in query:
                out["prev_min_id"] = query["min_id"][0]
            elif 'rel="next"' in params and "max_id" in query:
                out["next_max_id"] = query["max_id"][0]
    return out
