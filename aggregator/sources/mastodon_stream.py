"""MastodonStreamer: the streaming API for one server, with REST to fill every gap.

One websocket to `/api/v1/streaming` with a `subscribe` frame per hashtag. Mastodon does
not replay what a client missed, so every (re)connection first subscribes and then
catches up through REST from the saved cursor: posts that arrive twice (stream and REST)
are one post after dedupe. `delete` events carry only the server-local id; the store maps
it to the post. A refused stream (401/403) is not retried: the caller falls back to
polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aggregator.pipeline import Checkpoint, Delete
from aggregator.sources.mastodon_poll import MastodonPoller, _id_of, _numeric
from aggregator.supervise import Backoff

log = logging.getLogger(__name__)

MAX_FRAME = 2 * 1024 * 1024
CHECKPOINT_EVERY = 2.0  # seconds between cursor saves while events flow


class StreamRefusedError(Exception):
    """The server will not stream to this token: fall back to polling."""


class MastodonStreamer:
    def __init__(self, poller: MastodonPoller, streaming_url: str, token: str) -> None:
        self.poller = poller
        base = streaming_url.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base.removeprefix("https://")
        elif base.startswith("http://"):
            base = "ws://" + base.removeprefix("http://")
        self.url = f"{base}/api/v1/streaming"
        self.token = token
        self.events = 0
        self.reconnects = 0

    async def run(self) -> None:
        """Stream until refused; reconnect (with a REST catch-up) after any drop."""
        cursor = await self.poller.start()
        backoff = Backoff(initial=1.0, maximum=60.0)
        while True:
            started = time.monotonic()
            try:
                cursor = await self._session(cursor)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    raise StreamRefusedError(f"streaming refused with HTTP {status}") from None
                log.warning("%s: stream answered HTTP %d", self.poller.source, status)
            except (ConnectionClosed, OSError, TimeoutError) as exc:
                log.warning("%s: stream dropped (%s)", self.poller.source, exc)
            if time.monotonic() - started > 60:
                backoff.reset()
            self.reconnects += 1
            await asyncio.sleep(backoff.next_delay())

    async def _session(self, cursor: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with websockets.connect(
            self.url,
            additional_headers=headers,
            open_timeout=15,
            ping_interval=20,
            ping_timeout=20,
            max_size=MAX_FRAME,
            user_agent_header="backchannel (event wall)",
        ) as ws:
            for tag in self.poller.tags:
                await ws.send(json.dumps({"type": "subscribe", "stream": "hashtag", "tag": tag}))
            # Subscribed first, then REST: whatever lands in between arrives twice, not never.
            cursor, _ = await self.poller.catch_up(cursor)
            log.info("%s: streaming %s", self.poller.source, ", ".join(self.poller.tags))
            last_saved = time.monotonic()
            async for raw in ws:
                cursor = await self._handle(raw, cursor)
                if time.monotonic() - last_saved > CHECKPOINT_EVERY:
                    await self.poller.inbox.put(Checkpoint(self.poller.source, cursor))
                    last_saved = time.monotonic()
        return cursor

    async def _handle(self, raw: str | bytes, cursor: str) -> str:
        try:
            message = json.loads(raw)
            event = message.get("event")
            payload = message.get("payload")
        except (ValueError, AttributeError):
            log.warning("%s: skipped a malformed stream frame", self.poller.source)
            return cursor
        if event in ("update", "status.update"):
            status = _decode_status(payload)
            if status is None:
                log.warning("%s: skipped a malformed %s payload", self.poller.source, event)
                return cursor
            self.events += 1
            await self.poller.push(status)
            return _newer(cursor, _id_of(status))
        if event == "delete" and isinstance(payload, str | int):
            self.events += 1
            await self.poller.inbox.put(Delete(self.poller.local_source, local_id=str(payload)))
        elif "error" in message:
            log.warning("%s: stream error: %s", self.poller.source, str(message["error"])[:200])
        return cursor


def _decode_status(payload: Any) -> dict[str, Any] | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    return payload if isinstance(payload, dict) else None


def _newer(cursor: str, candidate: str) -> str:
    a, b = _numeric(cursor), _numeric(candidate)
    if a is None or b is None:
        return cursor
    return candidate if b > a else cursor
