"""Runtime: the store, bus, inbox, pipeline and supervised sources of one process.

The web app and the `ingest` command share it; `start()`/`stop()` order the lifecycle so
that on shutdown the sources stop first, the pipeline then stores everything already
accepted (cursors included), and the store closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

from aggregator.bus import Bus, MemoryBus, open_bus
from aggregator.config import Config
from aggregator.digest.sources import digest_sources
from aggregator.moderation_state import ModerationState
from aggregator.pipeline import Inbox, Pipeline, Stop, new_inbox
from aggregator.sources.jetstream import bluesky_sources
from aggregator.sources.mastodon import mastodon_sources
from aggregator.store import Store, open_store
from aggregator.supervise import Backoff, SourceState, supervise

log = logging.getLogger(__name__)

SourceFactory = Callable[["Runtime"], list[tuple[str, Callable[[], Awaitable[None]]]]]


@dataclass
class Runtime:
    config: Config
    store: Store
    bus: Bus = field(default_factory=MemoryBus)
    inbox: Inbox = field(default_factory=new_inbox)
    ingest: bool = True
    extra_sources: list[SourceFactory] = field(default_factory=list)
    sources: dict[str, SourceState] = field(default_factory=dict)
    pipeline: Pipeline | None = None
    http: aiohttp.ClientSession | None = None
    moderation: ModerationState = field(default_factory=ModerationState)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _pipeline_task: asyncio.Task[None] | None = None
    _control_task: asyncio.Task[None] | None = None

    async def _follow_controls(self) -> None:
        """Settings and bans changed on any node reach this node's pipeline."""
        sub = self.bus.subscribe()
        try:
            async for event in sub:
                if event.control is not None:
                    self.moderation.apply_control(event.control)
        finally:
            self.bus.unsubscribe(sub)

    @classmethod
    def from_config(cls, config: Config, *, ingest: bool = True) -> Runtime:
        store = open_store(config.get("storage", "url"))
        bus = open_bus(config.get("bus", "url"), store)
        return cls(config=config, store=store, bus=bus, ingest=ingest)

    async def start(self) -> None:
        await self.store.open()
        await self.bus.start()
        self.moderation.load(await self.store.get_settings(), await self.store.bans())
        self._control_task = asyncio.create_task(self._follow_controls(), name="controls")
        self.pipeline = Pipeline(self.inbox, self.store, self.bus, self.moderation.verdict)
        self._pipeline_task = asyncio.create_task(self.pipeline.run(), name="pipeline")
        if not self.ingest:
            return
        self.http = aiohttp.ClientSession()
        for name, run in self._source_runs():
            state = SourceState(name)
            self.sources[name] = state
            task = asyncio.create_task(
                supervise(name, run, state=state, backoff=Backoff()), name=f"source:{name}"
            )
            self._tasks.append(task)

    def _source_runs(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        assert self.http is not None
        cfg = self.config
        runs: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        since = cfg.event_start.astimezone(UTC) if cfg.event_start else None
        if since is None:
            since = datetime.now(UTC) - timedelta(hours=24)
        runs += mastodon_sources(cfg, self.inbox, self.store, self.http, since)
        runs += bluesky_sources(cfg, self.inbox, self.store, self.http, since=since)
        runs += digest_sources(cfg, self.store)
        for factory in self.extra_sources:
            runs.extend(factory(self))
        return runs

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._pipeline_task is not None:
            # Sources are stopped; let the pipeline store everything they handed over.
            await self.inbox.put(Stop())
            try:
                await asyncio.wait_for(self._pipeline_task, timeout=30)
            except TimeoutError:
                log.error("pipeline did not drain within 30 s; stopping it")
        if self._control_task is not None:
            self._control_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._control_task
        if self.http is not None:
            await self.http.close()
        await self.store.close()
        await self.bus.close()
