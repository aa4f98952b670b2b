"""MastodonSource: one per configured server. Probes it, then streams or polls.

Streaming needs a user token (Mastodon >= 4.2 refuses anonymous streams) and is used
when the server advertises a streaming URL and accepts the token; a refused stream falls
back to polling for good, with one clear log line, never an endless retry.
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
    ServerUnavailableError,
    TokenRefusedError,
    probe,
    verify_token,
)
from aggregator.sources.mastodon_poll import MastodonPoller, PollTiming
from aggregator.sources.mastodon_stream import MastodonStreamer, StreamRefusedError
from aggregator.store.base import Store

log = logging.getLogger(__name__)


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

    @property
    def name(self) -> str:
        return MastodonPoller.source_name(self.server)

    async def run(self) -> None:
        try:
            caps = await probe(self.server)
        except ServerUnavailableError:
            raise  # supervise() retries with backoff
        except MastodonSourceError as exc:
            log.warning("%s: no instance information (%s); polling anyway", self.name, exc)
            caps = None
        self.capabilities = caps
        token = self.token
        if token is not None:
            try:
                account = await verify_token(self.server, token)
                log.info("%s: token accepted for @%s", self.name, account)
            except TokenRefusedError as exc:
                log.error("%s: the token was refused (%s); continuing without it", self.name, exc)
                token = None
        poller = MastodonPoller(
            self.server,
            self.hashtags,
            self.inbox,
            self.store,
            self.session,
            since=self.since,
            timing=self.timing,
            token=token,
            domain=caps.domain if caps else None,
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
        if token and self.streaming and caps is not None and caps.streaming_url:
            self.mode = "streaming"
            log.info("%s: %s: streaming (a token is configured and accepted)", self.name, what)
            try:
                await MastodonStreamer(poller, caps.streaming_url, token).run()
            except StreamRefusedError as exc:
                log.warning("%s: %s; polling from now on", self.name, exc)
        else:
            reason = (
                "no token configured"
                if not token
                else "streaming is switched off"
                if not self.streaming
                else "the server advertises no streaming URL"
            )
            log.info(
                "%s: %s: polling every %.0f s or slower (%s)",
                self.name,
                what,
                self.timing.min_interval,
                reason,
            )
        self.mode = "polling"
        await poller.run()


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
