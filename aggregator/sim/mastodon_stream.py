"""The simulator's streaming API: `/api/v1/streaming`, as Mastodon >= 4.2 serves it.

Every stream needs a valid user token (401 before the upgrade otherwise). Clients send
`{"type": "subscribe", "stream": "hashtag", "tag": …}`; the server pushes
`{"stream": ["hashtag", tag], "event": "update" | "status.update" | "delete", "payload": …}`
for what the virtual clock releases after the client connected: like the real server, a
reconnect does not replay what was missed. A `delete` payload is the server-local id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from aggregator.sim.timeline import ServerTimeline, SimStatus, normalise_tag

TICK = 0.05


@dataclass
class StreamFaults:
    """Faults for the streams of one server: cut every open stream, send bad frames."""

    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    garbage: int = 0

    async def drop_all(self) -> None:
        for ws in list(self.sockets):
            # An abrupt end, as when a proxy or the network fails: no close frame.
            transport = ws._req.transport if ws._req is not None else None
            if transport is not None:
                transport.abort()


def _message(tag: str, event: str, payload: str) -> str:
    return json.dumps({"stream": ["hashtag", tag], "event": event, "payload": payload})


async def serve_stream(
    request: web.Request,
    timeline: ServerTimeline,
    now: Callable[[], float],
    token_valid: bool,
    faults: StreamFaults,
) -> web.StreamResponse:
    if not token_valid:
        return web.json_response(
            {"error": "This method requires an authenticated user"}, status=401
        )
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)
    faults.sockets.add(ws)
    state = _StreamState(since=now())
    pusher = asyncio.create_task(_push(ws, timeline, now, state, faults))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
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
    while not ws.closed:
        await asyncio.sleep(TICK)
        t = now()
        for frame in _events(timeline, t, state):
            if faults.garbage > 0:
                faults.garbage -= 1
                await ws.send_str('{"event": "update", "payload": "{not json')
            await ws.send_str(frame)


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
