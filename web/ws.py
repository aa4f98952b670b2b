"""GET /ws: the live stream, with `hello`/`after` resume from the store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from aggregator.audience import Audience
from web.admin_auth import is_admin
from web.fanout import RESYNC, Client, encode_changes
from web.keys import CONFIG, CONNECTIONS_PER_IP, FANOUT, RUNTIME, WEBSOCKETS

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 5.0
RESUME_PAGE = 500
RESUME_MAX = 5000  # beyond this a client is better off re-reading /api/posts
MAX_CLIENT_MESSAGE = 4096
DROP_GRACE = 2.0  # seconds a lagging client gets to take its resync before it is cut off


def origin_allowed(request: web.Request) -> bool:
    """Browsers send Origin; only pages of this site may open the stream."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (bots, tests, curl): nothing to protect against
    return urlsplit(origin).netloc == request.host


def client_ip(request: web.Request) -> str:
    """The client's address; behind a trusted proxy, the last hop it reports."""
    remote = request.remote or ""
    trusted: list[str] = request.app[CONFIG].get("web", "trusted_proxies")
    if remote in trusted:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return remote


def _audience(request: web.Request) -> Audience:
    view = request.query.get("view", "remote")
    if view == "wall":
        return "wall"
    if view == "admin":
        return "admin"
    return "remote"


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    if _audience(request) == "admin" and not await is_admin(request):
        raise web.HTTPUnauthorized(text="the admin stream needs an admin session")
    ip = client_ip(request)
    per_ip = request.app[CONNECTIONS_PER_IP]
    cap: int = request.app[CONFIG].get("web", "max_connections_per_ip")
    if cap and per_ip.get(ip, 0) >= cap:
        raise web.HTTPTooManyRequests(text="too many connections from this address")
    per_ip[ip] = per_ip.get(ip, 0) + 1
    try:
        return await _serve_socket(request)
    finally:
        per_ip[ip] -= 1
        if per_ip[ip] <= 0:
            del per_ip[ip]


async def _serve_socket(request: web.Request) -> web.WebSocketResponse:
    # No permessage-deflate: its per-connection state costs more memory than a wall's
    # small JSON saves, and shared frames must be byte-identical for every client.
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_CLIENT_MESSAGE, compress=False)
    await ws.prepare(request)
    sockets = request.app[WEBSOCKETS]
    sockets.add(ws)
    fanout = request.app[FANOUT]
    audience = _audience(request)
    client = Client(
        send=ws.send_str,
        transport=request.transport,
        peer=request.remote or "",
        audience=audience,
        policy=lambda: fanout.policy,
    )
    fanout.add(client)  # before reading the store, so nothing falls between the two
    try:
        after = await _read_hello(ws)
        if after is not None:
            await _resume(request, ws, client, after)
        for message in fanout.current_state():
            await ws.send_str(message.text)
        client.on_drop = lambda: _spawn_drop(request, ws, client)
        client.go_live()
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break  # later hellos and pings carry nothing we need
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        fanout.remove(client)
        sockets.discard(ws)
        if not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=DROP_GRACE)
    return ws


_DROPS: set[asyncio.Task[None]] = set()


def _spawn_drop(request: web.Request, ws: web.WebSocketResponse, client: Client) -> None:
    task = asyncio.get_running_loop().create_task(_drop(request, ws, client))
    _DROPS.add(task)  # keep a reference until it is done
    task.add_done_callback(_DROPS.discard)


async def _drop(request: web.Request, ws: web.WebSocketResponse, client: Client) -> None:
    """Close a client that fell behind: resync if it still reads, else cut it off."""
    try:
        if client.pump_task is not None:
            await asyncio.wait_for(asyncio.shield(client.pump_task), timeout=DROP_GRACE)
        await asyncio.wait_for(ws.close(code=4000, message=b"resync"), timeout=DROP_GRACE)
    except (TimeoutError, ConnectionResetError):
        client.close()
        if request.transport is not None:
            request.transport.abort()  # it stopped reading: do not wait on its window


async def _read_hello(ws: web.WebSocketResponse) -> int | None:
    """The first client frame may be hello; without one the client gets live posts only."""
    try:
        msg = await ws.receive(timeout=HELLO_TIMEOUT)
    except TimeoutError:
        return None
    if msg.type != WSMsgType.TEXT:
        return None
    try:
        data = json.loads(msg.data)
    except ValueError:
        log.info("ws: ignored a malformed first frame")
        return None
    if not isinstance(data, dict) or data.get("type") != "hello":
        return None
    after = data.get("after")
    if after is None or after == "":
        return None
    try:
        return max(0, int(str(after)))
    except ValueError:
        return -1  # a cursor we never issued: tell the client to start over


async def _resume(
    request: web.Request, ws: web.WebSocketResponse, client: Client, after: int
) -> None:
    store = request.app[RUNTIME].store
    if after < 0 or after > await store.last_seq():
        await ws.send_str(RESYNC.text)
        return
    seq = after
    sent = 0
    while True:
        changes = await store.changes_since(seq, RESUME_PAGE)
        if not changes:
            break
        sent += len(changes)
        if sent > RESUME_MAX:
            await ws.send_str(RESYNC.text)
            break
        for message in encode_changes(changes, client.audience, client.policy()):
            await ws.send_str(message.text)
        seq = changes[-1].seq
        if len(changes) < RESUME_PAGE:
            break
    client.resumed_seq = seq


async def close_all(app: web.Application, *, code: int, message: str) -> None:
    """Close every websocket at once; a client that does not answer is cut off."""

    async def close_one(ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=code, message=message.encode()), DROP_GRACE)

    await asyncio.gather(*(close_one(ws) for ws in list(app.get(WEBSOCKETS, ()))))
