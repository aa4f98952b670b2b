"""/admin and /api/admin/*: moderation for organisers.

Every action is stored with its audit row first, then published on the bus, so every
screen on every node sees it within a tick and a restarted server still honours it.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from aggregator.bus import BusEvent
from aggregator.match import normalise_tag
from aggregator.moderation_state import SettingsError, validate_settings
from aggregator.store.sqlite_admin import UnknownPostError
from web.admin_auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    THROTTLE,
    LoginThrottle,
    admin_token,
    client_address,
    csrf_for,
    new_session,
    require_admin,
    session_valid,
    set_session_cookie,
)
from web.fanout import post_json
from web.keys import CONFIG, FANOUT, RUNTIME
from web.pages import render

log = logging.getLogger(__name__)

POST_ACTIONS = ("hide", "unhide", "approve", "reject", "pin", "unpin")
ACTIONS = (*POST_ACTIONS, "ban", "unban", "announce", "assign")


def setup_admin(app: web.Application) -> None:
    app[THROTTLE] = LoginThrottle()
    app.router.add_get("/admin", admin_page, name="admin")
    app.router.add_post("/admin/login", login, name="admin_login")
    app.router.add_post("/admin/logout", logout, name="admin_logout")
    app.router.add_post("/api/admin/actions", actions, name="admin_actions")
    app.router.add_get("/api/admin/queue", queue, name="admin_queue")
    app.router.add_get("/api/admin/hidden", hidden, name="admin_hidden")
    app.router.add_get("/api/admin/bans", bans, name="admin_bans")
    app.router.add_get("/api/admin/audit", audit, name="admin_audit")
    app.router.add_get("/api/admin/settings", get_settings, name="admin_settings")
    app.router.add_put("/api/admin/settings", put_settings, name="admin_settings_put")


def _bad(message: str, status: type[web.HTTPException] = web.HTTPBadRequest) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


# pages -------------------------------------------------------------------------------


async def admin_page(request: web.Request) -> web.Response:
    token = admin_token(request)
    if token is None:
        return web.Response(
            status=403,
            text="Admin is disabled: set BACKCHANNEL_WEB_ADMIN_TOKEN and restart.",
        )
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and session_valid(token, cookie, time.time()):
        runtime = request.app[RUNTIME]
        return render("admin.html", _page_context(request, csrf_for(token, cookie), runtime))
    return _login_form(request, None)


def _page_context(request: web.Request, csrf: str, runtime: Any) -> dict[str, Any]:
    config = request.app[CONFIG]
    static = request.app.router["static"]
    return {
        "event": {
            "name": config.event_name,
            "hashtags": [normalise_tag(t) for t in config.hashtags],
        },
        "csrf": csrf,
        "settings": runtime.moderation.settings,
        "static": lambda name: static.url_for(filename=name),
    }


def _login_form(request: web.Request, error: str | None, status: int = 200) -> web.Response:
    csrf = secrets.token_urlsafe(24)
    static = request.app.router["static"]
    response = render(
        "admin_login.html",
        {
            "error": error,
            "csrf": csrf,
            "static": lambda name: static.url_for(filename=name),
            "event": {"name": request.app[CONFIG].event_name, "hashtags": []},
        },
    )
    response.set_status(status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/admin",
        max_age=3600,
    )
    return response


async def login(request: web.Request) -> web.StreamResponse:
    token = admin_token(request)
    if token is None:
        raise _bad("admin is disabled: set BACKCHANNEL_WEB_ADMIN_TOKEN", web.HTTPForbidden)
    throttle = request.app[THROTTLE]
    ip = client_address(request)
    now = time.time()
    if throttle.blocked(ip, now):
        return _login_form(request, "Too many failed attempts. Wait five minutes.", 429)
    form = await request.post()
    sent_csrf = str(form.get("csrf", ""))
    cookie_csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_csrf or not secrets.compare_digest(sent_csrf.encode(), cookie_csrf.encode()):
        return _login_form(request, "The form expired. Please try again.", 403)
    if not secrets.compare_digest(str(form.get("token", "")).encode(), token.encode()):
        throttle.fail(ip, now)
        log.warning("admin: failed login from %s", ip)
        return _login_form(request, "That token is not right.", 401)
    throttle.succeed(ip)
    response = web.HTTPSeeOther("/admin")
    set_session_cookie(request, response, new_session(token, now))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    await request.app[RUNTIME].store.audit("moderator", "login", ip, {})
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = admin_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    form = await request.post()
    if token is None or not cookie or not session_valid(token, cookie, time.time()):
        raise web.HTTPSeeOther("/admin")
    if not secrets.compare_digest(
        str(form.get("csrf", "")).encode(), csrf_for(token, cookie).encode()
    ):
        raise _bad("missing or invalid CSRF token", web.HTTPForbidden)
    response = web.HTTPSeeOther("/admin")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# API -----------------------------------------------------------------------------------


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _bad("body: expected a JSON object") from None
    if not isinstance(data, dict):
        raise _bad("body: expected a JSON object")
    return data


def _field(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _bad(f"{key}: required for this action")
    if len(value) > 2000:
        raise _bad(f"{key}: too long")
    return value


async def actions(request: web.Request) -> web.Response:
    actor = await require_admin(request, state_changing=True)
    data = await _json_body(request)
    action = data.get("action")
    if action not in ACTIONS:
        raise _bad(f"action: expected one of {', '.join(ACTIONS)}")
    runtime = request.app[RUNTIME]
    store = runtime.store
    try:
        if action in POST_ACTIONS:
            changes = await store.moderate(action, _field(data, "post"), actor)
        elif action in ("ban", "unban"):
            kind = "domain" if data.get("domain") else "author"
            value = _field(data, kind)
            changes = await store.ban(kind, value, actor, ban=action == "ban")
            runtime.moderation.load(runtime.moderation.settings, await store.bans())
            runtime.bus.publish(BusEvent(control=runtime.moderation.bans_control()))
        elif action == "assign":
            session = _field(data, "session", required=False) or None
            changes = await store.assign(_field(data, "post"), session, actor)
        else:  # announce
            text = _field(data, "text", required=False)
            await _save_settings(request, {"announcement": text}, actor)
            runtime.bus.publish(BusEvent(control={"type": "announce", "text": text.strip()}))
            return web.json_response({"ok": True})
    except UnknownPostError as exc:
        raise _bad(str(exc), web.HTTPNotFound) from None
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if action in ("pin", "unpin"):
        pinned = next((c for c in changes if c.pinned and c.post is not None), None)
        post = post_json(pinned, "remote") if pinned is not None else None
        runtime.bus.publish(BusEvent(changes=tuple(changes), control={"type": "pin", "post": post}))
    else:
        runtime.bus.publish(BusEvent(changes=tuple(changes)))
    return web.json_response({"ok": True, "changed": len(changes)})


def _admin_post(post: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    hidden, approved = state["hidden"], state["approved"]
    post["moderation"] = {
        "state": "hidden" if hidden else "visible" if approved else "pending",
        **state,
    }
    return post


async def queue(request: web.Request) -> web.Response:
    await require_admin(request, state_changing=False)
    rows = await request.app[RUNTIME].store.admin_posts("queue", 200)
    return web.json_response({"posts": [_admin_post(p, s) for p, s in rows]})


async def hidden(request: web.Request) -> web.Response:
    await require_admin(request, state_changing=False)
    rows = await request.app[RUNTIME].store.admin_posts("hidden", 200)
    return web.json_response({"posts": [_admin_post(p, s) for p, s in rows]})


async def bans(request: web.Request) -> web.Response:
    await require_admin(request, state_changing=False)
    return web.json_response({"bans": await request.app[RUNTIME].store.bans()})


async def audit(request: web.Request) -> web.Response:
    await require_admin(request, state_changing=False)
    return web.json_response({"entries": await request.app[RUNTIME].store.audit_log(200)})


async def get_settings(request: web.Request) -> web.Response:
    await require_admin(request, state_changing=False)
    return web.json_response(request.app[RUNTIME].moderation.settings)


async def put_settings(request: web.Request) -> web.Response:
    actor = await require_admin(request, state_changing=True)
    data = await _json_body(request)
    settings = await _save_settings(request, data, actor)
    if "announcement" in data:
        request.app[RUNTIME].bus.publish(
            BusEvent(control={"type": "announce", "text": settings["announcement"]})
        )
    return web.json_response(settings)


async def _save_settings(
    request: web.Request, values: dict[str, Any], actor: str
) -> dict[str, Any]:
    runtime = request.app[RUNTIME]
    try:
        clean = validate_settings(values)
    except SettingsError as exc:
        raise _bad(str(exc)) from None
    await runtime.store.put_settings(clean, actor)
    settings = {**runtime.moderation.settings, **clean}
    control = {"type": "settings", "settings": settings}
    runtime.moderation.apply_control(control)
    runtime.bus.publish(BusEvent(control=control))
    return settings


def admin_startup_line(app: web.Application) -> str:
    if app[CONFIG].get("web", "admin_token"):
        return "admin: enabled at /admin"
    return "admin: disabled (set BACKCHANNEL_WEB_ADMIN_TOKEN to enable /admin)"


__all__ = ["FANOUT", "admin_startup_line", "setup_admin"]
