"""The session grid, edited on the day: GET/POST/PUT/DELETE /api/admin/sessions.

Edits are stored in the settings (`sessions`, see aggregator.digest.edits) and announced
with a `{"type": "sessions"}` control on the bus, which every wall and remote view on
every node receives and answers by re-reading /api/sessions, so the "Now" banner changes
at once. The digest and /api/sessions read the same merged schedule.
"""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from aggregator.bus import BusEvent
from aggregator.config import ConfigError
from aggregator.digest.command import load_schedule
from aggregator.digest.edits import apply_edit, merge_sessions, session_from_json
from aggregator.digest.schedule import Session
from web.admin import _bad, _json_body
from web.admin_auth import require_admin
from web.keys import CONFIG, RUNTIME

EDIT_LOCK = web.AppKey("sessions_edit_lock", asyncio.Lock)


def setup_sessions_admin(app: web.Application) -> None:
    app[EDIT_LOCK] = asyncio.Lock()
    app.router.add_get("/api/admin/sessions", list_sessions, name="admin_sessions")
    app.router.add_post("/api/admin/sessions", create_session, name="admin_session_new")
    app.router.add_put("/api/admin/sessions/{id}", put_session, name="admin_session_put")
    app.router.add_delete("/api/admin/sessions/{id}", delete_session, name="admin_session_del")


async def current_sessions(app: web.Application) -> list[Session]:
    """The imported schedule (digest.schedule) with the organisers' edits laid over it."""
    config = app[CONFIG]
    try:
        imported = load_schedule(config)
    except ConfigError:
        imported = []
    settings = await app[RUNTIME].store.get_settings()
    return merge_sessions(imported, settings.get("sessions"), config.timezone)


async def list_sessions(request: web.Request) -> web.Response:
    await require_admin(request, state_changing=False)
    sessions = await current_sessions(request.app)
    rooms = sorted({s.room for s in sessions if s.room})
    return web.json_response(
        {"sessions": [s.to_json() for s in sessions], "rooms": rooms},
        headers={"Cache-Control": "no-store"},
    )


async def create_session(request: web.Request) -> web.Response:
    return await _save(request, "s-" + secrets.token_hex(4), creating=True)


async def put_session(request: web.Request) -> web.Response:
    return await _save(request, request.match_info["id"], creating=False)


async def delete_session(request: web.Request) -> web.Response:
    actor = await require_admin(request, state_changing=True)
    session_id = request.match_info["id"]
    async with request.app[EDIT_LOCK]:
        if not any(s.id == session_id for s in await current_sessions(request.app)):
            raise _bad(f"id: no session {session_id!r}", web.HTTPNotFound)
        await _store(request, apply_edit(await _edits(request), session_id, None), actor)
    return web.json_response({"ok": True})


async def _save(request: web.Request, session_id: str, *, creating: bool) -> web.Response:
    actor = await require_admin(request, state_changing=True)
    data = await _json_body(request)
    try:
        session = session_from_json(data, request.app[CONFIG].timezone, session_id=session_id)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    async with request.app[EDIT_LOCK]:
        await _store(request, apply_edit(await _edits(request), session_id, session), actor)
    return web.json_response(
        {"ok": True, "session": session.to_json()}, status=201 if creating else 200
    )


async def _edits(request: web.Request) -> object:
    return (await request.app[RUNTIME].store.get_settings()).get("sessions")


async def _store(request: web.Request, edits: list[dict[str, object]], actor: str) -> None:
    runtime = request.app[RUNTIME]
    await runtime.store.put_settings({"sessions": edits}, actor)
    runtime.bus.publish(BusEvent(control={"type": "sessions"}))
