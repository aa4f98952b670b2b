"""JSON routes under /api, plus the health check."""

from __future__ import annotations

import json

from aiohttp import web

from aggregator.config import ConfigError
from aggregator.model import PLATFORMS
from aggregator.store.base import CursorError, PageQuery
from web.keys import CONFIG, FANOUT, RUNTIME

MAX_LIMIT = 200


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=f'{{"error": {_json_str(message)}}}', content_type="application/json"
    )


def _json_str(value: str) -> str:
    return json.dumps(value)


def page_query(request: web.Request) -> PageQuery:
    """Validate the query string of /api/posts; every bad value is a 400 naming it."""
    q = request.query
    limit = 50
    if "limit" in q:
        try:
            limit = int(q["limit"])
        except ValueError:
            raise bad_request("limit: expected an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_request(f"limit: expected 1-{MAX_LIMIT}")
    platform = q.get("platform") or None
    if platform is not None and platform not in PLATFORMS:
        raise bad_request(f"platform: expected one of {', '.join(PLATFORMS)}")
    media = q.get("media")
    has_media: bool | None = None
    if media:
        if media not in ("0", "1", "true", "false"):
            raise bad_request("media: expected 1 or 0")
        has_media = media in ("1", "true")
    text = (q.get("q") or "").strip() or None
    if text is not None and len(text) > 200:
        raise bad_request("q: at most 200 characters")
    view = q.get("view") or "remote"
    if view not in ("remote", "wall"):
        raise bad_request("view: expected remote or wall")
    approved_only = request.app[FANOUT].policy.needs_approval(
        "wall" if view == "wall" else "remote"
    )
    for key in ("before", "after", "session"):
        if len(q.get(key, "")) > 200:
            raise bad_request(f"{key}: too long")
    return PageQuery(
        before=q.get("before") or None,
        after=q.get("after") or None,
        limit=limit,
        platform=platform,
        session=q.get("session") or None,
        q=text,
        has_media=has_media,
        approved_only=approved_only,
    )


async def list_posts(request: web.Request) -> web.Response:
    query = page_query(request)
    try:
        page = await request.app[RUNTIME].store.page(query)
    except CursorError as exc:
        raise bad_request(str(exc)) from None
    return web.json_response(
        {"posts": [p.to_json() for p in page.posts], "next": page.next, "newer": page.newer}
    )


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    sources = {name: state.state for name, state in runtime.sources.items()}
    fanout = request.app.get(FANOUT)
    clients = {"connected": len(fanout.clients), "dropped": fanout.dropped} if fanout else {}
    return web.json_response({"status": "ok", "sources": sources, "clients": clients})


async def list_sessions(request: web.Request) -> web.Response:
    """The schedule (digest.schedule plus the organisers' edits), for the wall's "now"
    banner and the filters."""
    from aggregator.digest.command import load_schedule
    from web.sessions_admin import current_sessions

    try:
        load_schedule(request.app[CONFIG])
    except ConfigError as exc:
        error = str(exc)
    else:
        error = ""
    sessions = await current_sessions(request.app)
    body: dict[str, object] = {"sessions": [s.to_json() for s in sessions]}
    if error:
        body["error"] = error
    return web.json_response(body)
