"""The digest's background sources in `backchannel run`/`ingest`: blog feeds
(`digest.feeds`, every `digest.feed_interval` seconds) and link unfurling (every
`digest.unfurl_interval` seconds when set), each supervised like the platform sources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC

from aggregator.config import Config
from aggregator.digest.feeds import FeedPoller
from aggregator.store.base import Store

Run = tuple[str, Callable[[], Awaitable[None]]]


def digest_sources(config: Config, store: Store) -> list[Run]:
    runs: list[Run] = []
    allow = bool(config.get("digest", "fetch_private_addresses"))
    feeds = list(config.get("digest", "feeds"))
    if feeds:
        start = config.event_start
        poller = FeedPoller(
            feeds, store, allow_loopback=allow, since=start.astimezone(UTC) if start else None
        )
        interval = float(config.get("digest", "feed_interval"))
        runs.append(("digest:feeds", lambda: poller.run(interval)))
    unfurl_every = float(config.get("digest", "unfurl_interval"))
    if unfurl_every > 0:

        async def unfurl_forever() -> None:
            from aggregator.digest.command import load_posts, unfurl_links

            while True:
                await unfurl_links(config, store, await load_posts(store), bar=False)
                await asyncio.sleep(unfurl_every)

        runs.append(("digest:links", unfurl_forever))
    return runs
