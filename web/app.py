"""The aiohttp app factory, used alike by production, the demo and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from aggregator.config import Config
from aggregator.runtime import Runtime
from web import admin, api, digest_page, feed, pages, webmention, ws
from web.fanout import FanOut
from web.keys import CONFIG, CONNECTIONS_PER_IP, FANOUT, RUNTIME, WEBSOCKETS
from web.metrics import setup_metrics
from web.sessions_admin import setup_sessions_admin

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    config: Config, *, runtime: Runtime | None = None, ingest: bool = True
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[CONFIG] = config
    app[RUNTIME] = runtime or Runtime.from_config(config, ingest=ingest)
    app[WEBSOCKETS] = set()
    app[CONNECTIONS_PER_IP] = {}
    app.cleanup_ctx.append(_runtime_ctx)
    app.cleanup_ctx.append(_fanout_ctx)
    app.router.add_get("/", pages.remote_view, name="remote")
    app.router.add_get("/wall", pages.wall_view, name="wall")
    app.router.add_get("/ws", ws.websocket_handler, name="ws")
    app.router.add_get("/api/posts", api.list_posts, name="api_posts")
    app.router.add_get("/api/sessions", api.list_sessions, name="api_sessions")
    app.router.add_get("/feed.atom", feed.live_feed, name="feed")
    app.router.add_get("/digest", digest_page.digest_html, name="digest")
    app.router.add_get("/digest.md", digest_page.digest_md, name="digest_md")
    app.router.add_get("/digest.json", digest_page.digest_json, name="digest_json")
    app.router.add_get("/digest.atom", digest_page.digest_atom, name="digest_atom")
    app.router.add_get("/healthz", api.healthz, name="healthz")
    app.router.add_static("/static", STATIC_DIR, name="static", append_version=True)
    admin.setup_admin(app)
    setup_metrics(app)
    setup_sessions_admin(app)
    webmention.setup_webmention(app)
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(_going_away)
    return app


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.start()
    yield
    await runtime.stop()


async def _fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    fanout = FanOut(runtime.bus)
    settings = runtime.moderation.settings
    fanout.apply_control({"type": "settings", "settings": settings})
    fanout.announcement = str(settings.get("announcement") or "")
    pinned = await runtime.store.admin_posts("pinned", 1)
    fanout.pinned = pinned[0][0] if pinned else None
    fanout.flush()  # nothing is connected yet; drop the startup controls
    app[FANOUT] = fanout
    log.info(admin.admin_startup_line(app))
    task = asyncio.create_task(fanout.run(), name="fanout")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _going_away(app: web.Application) -> None:
    # Runs before the runner waits for open handlers: browsers reconnect (to another
    # node, or to us after a restart) instead of holding shutdown for its timeout.
    await ws.close_all(app, code=1001, message="server shutting down")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    ancestors = " ".join(request.app[CONFIG].get("web", "frame_ancestors")) or "'none'"
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {ancestors}",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
