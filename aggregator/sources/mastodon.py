"""MastodonSource: one per configured server. Probes it, then streams or polls.

Streaming needs a user token (Mastodon >= 4.2 refuses anonymous streams) and is used
when the server advertises a streaming URL and accepts the token; a refused stream falls
back to polling for good, with one clear log line, never an endless retry. The source
object outlives restarts by `supervise()`, and so do its request budget and what it
learnt (a refused stream stays refused).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import aiohttp

from aggregator.config import Config
from aggregator.pipeline import Inbox
from aggregator.sources.mastodon_api import (
    Capabilities,
    MastodonSourceError,
    RateLimitedError,
    RequestBudget,
    ServerUnavailableError,
    TimelineClient,
    TokenRefusedError,
    probe,
    verify_token,
)
from aggregator.sources.mastodon_poll import MastodonPoller, PollTiming
from aggregator.sources.mastodon_stream import MastodonStreamer, StreamRefusedError
from aggregator.store.base import Store

log = logging.getLogger(__name__)

PROBE_ATTEMPTS = 3  # rate-limited probes waited out before polling without the facts


class MastodonSource:
    def __init__(
        self,
        server: str,
        hashtags: Sequence[str],
        inbox: Inbox,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        since: datetime | None,
        timing: PollTiming,
        token: str | None,
        streaming: bool,
    ) -> None:
        self.server = server.rstrip("/")
        self.hashtags = list(hashtags)
        self.inbox, self.store, self.session = inbox, store, session
        self.since, self.timing, self.token, self.streaming = since, timing, token, streaming
        self.mode = "starting"
        self.capabilities: Capabilities | None = None
        self.stream_refused: str | None = None
        self.token_refused = False
        self.client = TimelineClient(
            self.server, session, budget=RequestBudget(timing.budget, timing.budget_period)
        )

    @property
    def name(self) -> str:
        return MastodonPoller.source_name(self.server)

    async def run(self) -> None:
        caps = await self._probe()
        token = None if self.token_refused else self.token
        if token is not None:
            try:
                account = await verify_token(self.server, token, self.client)
                log.info("%s: token accepted for @%s", self.name, account)
            except TokenRefusedError as exc:
                log.error("%s: the token was refused (%s); continuing without it", self.name, exc)
                self.token_refused = True
                token = None
        self.client.token = token
        poller = MastodonPoller(
            self.server,
            self.hashtags,
            self.inbox,
            self.store,
            self.session,
            since=self.since,
            timing=self.timing,
            domain=caps.domain if caps else None,
            client=self.client,
        )
        what = caps.describe() if caps else self.server
        if caps is not None and caps.tag_timeline_needs_token and token is None:
            self.mode = "stopped"
            log.error(
                "%s: %s only serves tag timelines to logged-in users; set "
                "BACKCHANNEL_MASTODON_TOKEN to follow it",
                self.name,
                what,
            )
            return
        reason = self._why_not_stream(caps, token)
        if reason is None and caps is not None and caps.streaming_url and token:
            self.mode = "streaming"
            log.info("%s: %s: streaming (a token is configured and accepted)", self.name, what)
            try:
                await MastodonStreamer(poller, caps.streaming_url, token).run()
            except StreamRefusedError as exc:
                self.stream_refused = str(exc)
                log.warning("%s: %s; polling from now on", self.name, exc)
        else:
            log.info(
                "%s: %s: polling every %g s or slower (%s)",
                self.name,
                what,
                self.timing.min_interval,
                reason,
            )
        self.mode = "polling"
        await poller.run()

    def _why_not_stream(self, caps: Capabilities | None, token: str | None) -> str | None:
        if not self.token:
            return "no token configured"
        if not token:
            return "the token was refused"
        if not self.streaming:
            return "streaming is switched off"
        if self.stream_refused:
            return f"streaming was refused: {self.stream_refused}"
        if caps is None or not caps.streaming_url:
            return "the server advertises no streaming URL"
        return None

    async def _probe(self) -> Capabilities | None:
        for _ in range(PROBE_ATTEMPTS):
            try:
                self.capabilities = await probe(self.server, self.client)
                return self.capabilities
            except ServerUnavailableError:
                raise  # supervise() retries with backoff
            except RateLimitedError as exc:
                # Wait out the window the server named instead of hammering it.
                self.client.block_until(exc.reset_at or 0.0)
                log.warning("%s: the instance probe was rate limited; waiting", self.name)
                await self.client.wait_if_blocked()
            except MastodonSourceError as exc:
                log.warning("%s: no instance information (%s); polling anyway", self.name, exc)
                return self.capabilities
        return self.capabilities


def mastodon_sources(
    config: Config,
    inbox: Inbox,
    store: Store,
    session: aiohttp.ClientSession,
    since: datetime | None,
) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    poll_interval = config.get("mastodon", "poll_interval")
    timing = PollTiming(
        interval=poll_interval,
        min_interval=config.get("mastodon", "min_poll_interval"),
        refresh_every=poll_interval * 3,
    )
    sources: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    for server in config.get("mastodon", "servers"):
        source = MastodonSource(
            server,
            config.hashtags,
            inbox,
            store,
            session,
            since=since,
            timing=timing,
            token=config.get("mastodon", "token"),
            streaming=config.get("mastodon", "streaming"),
        )
        sources.append((source.name, source.run))
    return sources
