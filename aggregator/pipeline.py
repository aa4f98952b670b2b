"""The inbox and the one consumer that turns raw items into stored, published changes.

Sources only put plain items into the bounded inbox (a full inbox makes them wait, which
is the backpressure we want). The pipeline normalises, drops exact repeats it has just
seen, stores, and publishes what the store reports as changed: store before broadcast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.bus import Bus, BusEvent
from aggregator.dedupe import fingerprint
from aggregator.model import Post, parse_timestamp
from aggregator.normalise import NormaliseError
from aggregator.normalise.bluesky import normalise_bluesky_post
from aggregator.normalise.mastodon import normalise_mastodon_status
from aggregator.store.base import Change, Store, Verdict

log = logging.getLogger(__name__)

INBOX_SIZE = 10_000
MAX_BATCH = 1000
RECENT_CACHE = 50_000


@dataclass(frozen=True, slots=True)
class RawItem:
    """A platform payload still in its own shape; `kind` picks the normaliser."""

    source: str
    kind: str  # a key of NORMALISERS: "mastodon.status", "bluesky.record", "post"
    payload: Any
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delete:
    source: str
    post_id: str | None = None
    local_id: str | None = None  # Mastodon delete events carry only the server-local id


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Save `cursor` for `source` once everything queued before it is stored."""

    source: str
    cursor: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Queued at shutdown: everything before it is stored, then the pipeline returns."""


InboxItem = RawItem | Delete | Checkpoint | Stop
Inbox = asyncio.Queue[InboxItem]


CopyKey = tuple[str, tuple[int, int, int], bool]


def _copy_key(post: Post) -> CopyKey:
    """Everything `dedupe.decide` looks at, so a copy skipped here is one it would skip."""
    m = post.metrics
    # The home flag is in: a home copy replaces another server's copy even when it looks
    # the same (it carries consent flags that other servers do not serialise).
    return (fingerprint(post), (m.likes, m.reposts, m.replies), post.provenance.home)


def _epoch_seconds(created_at: str) -> float | None:
    moment = parse_timestamp(created_at)
    return moment.timestamp() if moment is not None else None


def new_inbox(size: int = INBOX_SIZE) -> Inbox:
    return asyncio.Queue(maxsize=size)


def _normalise_mastodon(payload: Any, context: dict[str, Any]) -> Post:
    return normalise_mastodon_status(
        payload, server=context["server"], local_to_uri=context.get("local_to_uri")
    )


def _normalise_bluesky(payload: Any, context: dict[str, Any]) -> Post:
    return normalise_bluesky_post(
        payload,
        did=context["did"],
        rkey=context["rkey"],
        cid=context.get("cid"),
        author=context.get("author"),
        fallback_time=context.get("time"),
    )


def _already_normalised(payload: Any, context: dict[str, Any]) -> Post:
    if not isinstance(payload, Post):
        raise NormaliseError("expected a Post")
    return payload


NORMALISERS: dict[str, Callable[[Any, dict[str, Any]], Post]] = {
    "mastodon.status": _normalise_mastodon,
    "bluesky.record": _normalise_bluesky,
    "post": _already_normalised,
}


@dataclass
class PipelineStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    # Seconds from a source's newest new post being written to it being stored.
    lag_seconds: dict[str, float] = field(default_factory=dict)


class Pipeline:
    def __init__(
        self,
        inbox: Inbox,
        store: Store,
        bus: Bus,
        moderator: Callable[[Post], Verdict] | None = None,
    ) -> None:
        self.inbox = inbox
        self.store = store
        self.bus = bus
        self.moderator = moderator  # automatic rules, applied before anything is stored
        self.stats = PipelineStats()
        # id -> what the store decides on: skip the store for copies we have just written.
        self._recent: OrderedDict[str, CopyKey] = OrderedDict()

    async def run(self) -> None:
        while True:
            first = await self.inbox.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self.inbox.empty():
                batch.append(self.inbox.get_nowait())
            stop = any(isinstance(item, Stop) for item in batch)
            await self._process([item for item in batch if not isinstance(item, Stop)])
            if stop:
                return

    async def _process(self, batch: list[InboxItem]) -> None:
        # Keep order between kinds: posts, then the deletes and cursors that follow them.
        posts: list[Post] = []
        for item in batch:
            if isinstance(item, RawItem):
                post = self._normalise(item)
                if post is not None:
                    posts.append(post)
                continue
            await self._flush(posts)
            posts = []
            if isinstance(item, Delete):
                await self._delete(item)
            elif isinstance(item, Checkpoint):
                await self.store.save_cursor(item.source, item.cursor)
        await self._flush(posts)

    def _normalise(self, item: RawItem) -> Post | None:
        self.stats.received += 1
        normaliser = NORMALISERS.get(item.kind)
        if normaliser is None:
            log.warning("pipeline: %s sent an item of unknown kind %r", item.source, item.kind)
            self.stats.rejected += 1
            return None
        try:
            post = normaliser(item.payload, item.context)
        except NormaliseError as exc:
            log.warning("pipeline: skipped a malformed item from %s: %s", item.source, exc)
            self.stats.rejected += 1
            return None
        if self._recent.get(post.id) == _copy_key(post):
            self._recent.move_to_end(post.id)
            self.stats.duplicates += 1
            return None
        return post

    async def _flush(self, posts: list[Post]) -> None:
        if not posts:
            return
        verdicts: dict[str, Verdict] = {}
        if self.moderator is not None:
            for post in posts:
                verdict = self.moderator(post)
                if verdict != ("show", None):
                    verdicts[post.id] = verdict
        changes = await self.store.upsert(posts, verdicts)
        for post in posts:
            self._recent[post.id] = _copy_key(post)
            self._recent.move_to_end(post.id)
        while len(self._recent) > RECENT_CACHE:
            self._recent.popitem(last=False)
        self.stats.duplicates += len(posts) - len(changes)
        self.stats.stored += sum(1 for c in changes if c.kind == "new")
        for change in changes:
            if change.post is not None:
                source = change.post.provenance.source or change.post.platform
                self.stats.per_source[source] = self.stats.per_source.get(source, 0) + 1
                if change.kind == "new":
                    created = _epoch_seconds(change.post.created_at)
                    if created is not None:
                        self.stats.lag_seconds[source] = max(0.0, time.time() - created)
        self._publish(changes)

    async def _delete(self, item: Delete) -> None:
        if item.post_id is not None:
            changes = await self.store.tombstone([item.post_id])
        elif item.local_id is not None:
            changes = await self.store.tombstone_local(item.source, [item.local_id])
        else:
            return
        for change in changes:
            self._recent.pop(change.id, None)
        self._publish(changes)

    def _publish(self, changes: list[Change]) -> None:
        if changes:
            self.bus.publish(BusEvent(changes=tuple(changes)))
