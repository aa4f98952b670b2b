"""MastodonStreamer: the streaming API for one server, with REST to fill every gap.

One websocket to `/api/v1/streaming` with a `subscribe` frame per hashtag. Mastodon does
not replay what a client missed, so every (re)connection first subscribes and then
catches up through REST from the saved cursors and re-reads the newest part of the
timeline (posts that federated late while we were away): posts that arrive twice are one
post after dedupe. While the stream is down the poller keeps reading REST. `delete`
events carry only the server-local id; the store maps it to the post.

A refused stream (401/403, or no streaming API at that address) is not retried: the
caller falls back to polling. Anything else (5xx, resets, a silent server caught by the
ping timeout) is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from aggregator.pipeline import Delete
from aggregator.sources.mastodon_api import MastodonSourceError
from aggregator.sources.mastodon_poll import MastodonPoller
from aggregator.supervise import Backoff

log = logging.getLogger(__name__)

MAX_FRAME = 2 * 1024 * 1024  # a bigger frame drops the stream; REST then reads that post
CHECKPOINT_EVERY = 2.0  # seconds between cursor saves while events flow
REFUSED = {401: "refused the token", 403: "refused the token"}
NO_STREAMING = {400, 404, 405, 410, 501}  # nothing that speaks the streaming API is there


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
        self.skipped = 0
        self.reconnects = 0

    @property
    def name(self) -> str:
        return self.poller.source

    async def run(self) -> None:
        """Stream until refused; after any drop, poll while reconnecting with backoff."""
        await self.poller.start()
        backoff = Backoff(initial=1.0, maximum=60.0)
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in REFUSED or status in NO_STREAMING:
                    why = REFUSED.get(status, "has no streaming API")
                    raise StreamRefusedError(f"{self.url} {why} (HTTP {status})") from None
                log.warning("%s: the stream answered HTTP %d; retrying", self.name, status)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                log.warning("%s: stream dropped (%s); catching up through REST", self.name, exc)
            if time.monotonic() - started > 60:
                backoff.reset()
            self.reconnects += 1
            await self._poll_for(backoff.next_delay())

    async def _poll_for(self, seconds: float) -> None:
        """Wait before reconnecting; if that is long, poll meanwhile (posts, and the
        re-reads that notice edits and deletes the stream would have told us)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.poller.timing.min_interval))
            if deadline - time.monotonic() > 0:
                await self.poller.poll_once()

    async def _session(self) -> None:
        ping = self.poller.timing.ping_interval
        async with self.poller.client.slot():  # the handshake counts against the budget
            ws = await websockets.connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                open_timeout=15,
                ping_interval=ping,
                ping_timeout=ping,
                close_timeout=min(ping, 5.0),  # a dead server never answers a close either
                max_size=MAX_FRAME,
                user_agent_header="backchannel (event wall)",
            )
        async with ws:
            for tag in self.poller.tags:
                await ws.send(json.dumps({"type": "subscribe", "stream": "hashtag", "tag": tag}))
            # Subscribed first, then REST: whatever lands in between arrives twice, not never.
            await self.poller.catch_up()
            await self.poller.refresh()
            log.info("%s: streaming #%s", self.name, " #".join(self.poller.tags))
            safety_net = asyncio.create_task(self._refresh_now_and_then())
            try:
                last_saved = time.monotonic()
                async for raw in ws:
                    await self._handle(raw)
                    if time.monotonic() - last_saved > CHECKPOINT_EVERY:
                        await self.poller.checkpoint()
                        last_saved = time.monotonic()
            finally:
                safety_net.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await safety_net
                await self.poller.checkpoint()

    async def _refresh_now_and_then(self) -> None:
        """A stream can lose an event without dropping (a server-side hiccup): re-read
        the newest posts through REST now and then, as polling does."""
        while True:
            await asyncio.sleep(self.poller.timing.stream_refresh_every)
            try:
                await self.poller.refresh()
            except (MastodonSourceError, aiohttp.ClientError, TimeoutError) as exc:
                # The stream is what matters here; the next re-read may work.
                log.warning("%s: re-reading the newest posts failed: %s", self.name, exc)

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self._skip("a frame that is not a JSON object", raw)
            return
        event = message.get("event")
        payload = message.get("payload")
        if event in ("update", "status.update"):
            status = _decode_status(payload)
            if status is None:
                self._skip(f"a malformed {event} payload", raw)
                return
            self.events += 1
            await self.poller.push(status)
            self.poller.advance(status)
        elif event == "delete":
            local_id = str(payload).strip() if isinstance(payload, str | int) else ""
            if not local_id or len(local_id) > 64 or isinstance(payload, bool):
                self._skip("a malformed delete payload", raw)
                return
            self.events += 1
            await self.poller.inbox.put(Delete(self.poller.local_source, local_id=local_id))
        elif "error" in message:
            log.warning("%s: stream error: %s", self.name, str(message["error"])[:200])
        # Other events (notifications, announcements, filters_changed…) are not ours.

    def _skip(self, what: str, raw: str | bytes) -> None:
        self.skipped += 1
        log.warning("%s: skipped %s: %.120r", self.name, what, raw)


def _decode_status(payload: Any) -> dict[str, Any] | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    return payload if isinstance(payload, dict) else None
