"""The simulator's streaming API: `/api/v1/streaming`, as Mastodon >= 4.2 serves it.

Every stream needs a valid user token (401 before the upgrade otherwise). Clients send
`{"type": "subscribe", "stream": "hashtag", "tag": …}`; the server pushes
`{"stream": ["hashtag", tag], "event": "update" | "status.update" | "delete", "payload": …}`
for what the virtual clock releases after the client connected: like the real server, a
reconnect does not replay what was missed. A `delete` payload is the server-local id.
Like Mastodon's streaming server, it pings every `heartbeat` seconds and drops a client
that does not answer.

Faults, per server: cut every stream (cleanly between frames, or in the middle of one),
stall (read and send nothing, so pings go unanswered), refuse new streams with 503, lose
events silently, send malformed or arbitrary frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from aggregator.sim.timeline import ServerTimeline, SimStatus, normalise_tag

TICK = 0.05


@dataclass
class StreamFaults:
    """Faults for the streams of one server."""

    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    garbage: int = 0  # the next n events are preceded by a malformed frame
    stalled_until: float = 0.0  # monotonic; nothing is read or sent before then
    connections: int = 0  # upgrades accepted, ever
    unavailable: int = 0  # the next n upgrade attempts answer 503
    lose: int = 0  # the next n events are never sent (a server-side hiccup)
    paused: set[asyncio.BaseTransport] = field(default_factory=set)

    async def drop_all(self, mid_frame: bool = False) -> None:
        for ws in list(self.sockets):
            # An abrupt end, as when a proxy or the network fails: no close frame.
            transport = ws._req.transport if ws._req is not None else None
            if transport is None:
                continue
            if mid_frame:  # the header of a text frame and half of its payload
                payload = _message("x", "update", json.dumps({"id": "1"})).encode()
                transport.write(_frame_header(len(payload)) + payload[: len(payload) // 2])
            transport.abort()

    def stall(self, seconds: float) -> None:
        self.stalled_until = time.monotonic() + seconds
        for ws in self.sockets:
            transport = ws._req.transport if ws._req is not None else None
            if isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()  # pings pile up unanswered
                self.paused.add(transport)

    async def send_raw(self, text: str) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    def stalled(self) -> bool:
        return time.monotonic() < self.stalled_until


def _frame_header(length: int) -> bytes:
    """A final, unmasked text frame header (server to client) for `length` bytes."""
    if length < 126:
        return bytes([0x81, length])
    if length < 1 << 16:
        return bytes([0x81, 126]) + struct.pack("!H", length)
    return bytes([0x81, 127]) + struct.pack("!Q", length)


def _message(tag: str, event: str, payload: str) -> str:
    return json.dumps({"stream": ["hashtag", tag], "event": event, "payload": payload})


async def serve_stream(
    request: web.Request,
    timeline: ServerTimeline,
    now: Callable[[], float],
    token_valid: bool,
    faults: StreamFaults,
    heartbeat: float | None = 30.0,
) -> web.StreamResponse:
    if not token_valid:
        return web.json_response(
            {"error": "This method requires an authenticated user"}, status=401
        )
    if faults.unavailable > 0:
        faults.unavailable -= 1
        return web.Response(status=503, text="streaming server restarting")
    ws = web.WebSocketResponse(heartbeat=heartbeat)
    await ws.prepare(request)
    faults.sockets.add(ws)
    faults.connections += 1
    state = _StreamState(since=now())
    pusher = asyncio.create_task(_push(ws, timeline, now, state, faults))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                frame = None
            if not isinstance(frame, dict):
                await ws.send_str(json.dumps({"error": "Error parsing JSON"}))
                continue
            if frame.get("type") == "subscribe" and frame.get("stream") == "hashtag":
                state.tags.add(normalise_tag(str(frame.get("tag") or "")))
            elif frame.get("type") == "unsubscribe":
                state.tags.discard(normalise_tag(str(frame.get("tag") or "")))
            else:
                await ws.send_str(json.dumps({"error": "Unknown stream type"}))
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        faults.sockets.discard(ws)
    return ws


@dataclass
class _StreamState:
    since: float
    tags: set[str] = field(default_factory=set)
    sent: dict[int, int] = field(default_factory=dict)  # uid -> edit version sent
    deleted: set[int] = field(default_factory=set)


async def _push(
    ws: web.WebSocketResponse,
    timeline: ServerTimeline,
    now: Callable[[], float],
    state: _StreamState,
    faults: StreamFaults,
) -> None:
    transport = ws._req.transport if ws._req is not None else None
    while not ws.closed and transport is not None:
        await asyncio.sleep(TICK)
        if transport.is_closing() or not faults.stalled():
            if isinstance(transport, asyncio.ReadTransport) and transport in faults.paused:
                faults.paused.discard(transport)
                transport.resume_reading()  # the stall is over (or the client left)
        if transport.is_closing():
            return
        if faults.stalled():
            continue
        try:
            for frame in _events(timeline, now(), state):
                if faults.lose > 0:
                    faults.lose -= 1
                    continue
                if faults.garbage > 0:
                    faults.garbage -= 1
                    await ws.send_str('{"event": "update", "payload": "{not json')
                await ws.send_str(frame)
        except ConnectionError:
            return  # the client went away mid-send


def _events(timeline: ServerTimeline, t: float, state: _StreamState) -> list[str]:
    out: list[str] = []
    for st in list(timeline.by_uid.values()):
        tag = _subscribed_tag(st, t, state.tags)
        if st.deleted_at is not None and st.deleted_at <= t:
            if st.uid in state.sent and st.uid not in state.deleted and tag is not None:
                state.deleted.add(st.uid)
                out.append(_message(tag, "delete", str(st.uid)))
            continue
        if tag is None or not st.visible(t) or st.visible_at < state.since:
            if tag is not None and st.visible(t) and st.uid not in state.sent:
                state.sent[st.uid] = st.version(t)  # existed before we connected
            continue
        version = st.version(t)
        if st.uid not in state.sent:
            state.sent[st.uid] = version
            out.append(_message(tag, "update", json.dumps(_render(timeline, st, t))))
        elif version > state.sent[st.uid]:
            state.sent[st.uid] = version
            out.append(_message(tag, "status.update", json.dumps(_render(timeline, st, t))))
    return out


def _subscribed_tag(st: SimStatus, t: float, tags: set[str]) -> str | None:
    for tag in sorted(st.all_tags & tags):
        return tag
    return None


def _render(timeline: ServerTimeline, st: SimStatus, t: float) -> dict[str, Any]:
    rendered: dict[str, Any] = timeline.render(st, t, authed=True)
    return rendered
