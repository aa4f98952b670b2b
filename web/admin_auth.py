"""Admin authentication: the admin token, exchanged at a login form for a signed session
cookie (HttpOnly, SameSite=Strict), CSRF tokens bound to the session, `Authorization:
Bearer` for scripts, constant-time comparisons and a rate limit on failed attempts.
Without a configured token every admin route refuses: admin is never open.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from web.keys import CONFIG

SESSION_COOKIE = "bc_admin"
LOGIN_CSRF_COOKIE = "bc_login_csrf"
SESSION_SECONDS = 12 * 3600
FAILURES_ALLOWED = 5
FAILURE_WINDOW = 300.0


@dataclass
class LoginThrottle:
    """Failed attempts per client address in a sliding window."""

    failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, ip: str, now: float) -> bool:
        times = self.failures.get(ip)
        if not times:
            return False
        while times and now - times[0] > FAILURE_WINDOW:
            times.popleft()
        return len(times) >= FAILURES_ALLOWED

    def fail(self, ip: str, now: float) -> None:
        self.failures.setdefault(ip, deque()).append(now)
        if len(self.failures) > 10_000:  # bounded even under a distributed attack
            self.failures.pop(next(iter(self.failures)))

    def succeed(self, ip: str) -> None:
        self.failures.pop(ip, None)


THROTTLE = web.AppKey("admin_throttle", LoginThrottle)


def admin_token(request: web.Request) -> str | None:
    token: str | None = request.app[CONFIG].get("web", "admin_token")
    return token or None


def _key(token: str) -> bytes:
    return hashlib.sha256(b"backchannel-admin-session\0" + token.encode()).digest()


def _sign(token: str, payload: str) -> str:
    return hmac.new(_key(token), payload.encode(), hashlib.sha256).hexdigest()


def new_session(token: str, now: float) -> str:
    payload = f"{int(now) + SESSION_SECONDS}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_sign(token, payload)}"


def session_valid(token: str, cookie: str | None, now: float) -> bool:
    if not cookie or cookie.count(".") != 2:
        return False
    expiry, nonce, signature = cookie.split(".")
    if not hmac.compare_digest(signature, _sign(token, f"{expiry}.{nonce}")):
        return False
    return expiry.isdigit() and int(expiry) > now


def csrf_for(token: str, cookie: str) -> str:
    return _sign(token, f"csrf:{cookie}")


def bearer_ok(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


async def is_admin(request: web.Request) -> bool:
    """A valid session cookie or bearer token (no CSRF check: for reads and websockets)."""
    token = admin_token(request)
    if token is None:
        return False
    return bearer_ok(request, token) or session_valid(
        token, request.cookies.get(SESSION_COOKIE), time.time()
    )


def client_address(request: web.Request) -> str:
    from web.ws import client_ip

    return client_ip(request)


async def require_admin(request: web.Request, *, state_changing: bool) -> str:
    """Return the actor name or raise 401/403/429; state changes by cookie need CSRF."""
    token = admin_token(request)
    if token is None:
        raise _json_error(web.HTTPForbidden, "admin is disabled: set BACKCHANNEL_WEB_ADMIN_TOKEN")
    throttle = request.app[THROTTLE]
    ip = client_address(request)
    now = time.time()
    if throttle.blocked(ip, now):
        raise _json_error(web.HTTPTooManyRequests, "too many failed attempts; wait 5 minutes")
    if "Authorization" in request.headers:
        if bearer_ok(request, token):
            return "token"
        throttle.fail(ip, now)
        raise _json_error(web.HTTPUnauthorized, "invalid admin token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not session_valid(token, cookie, now):
        raise _json_error(web.HTTPUnauthorized, "log in at /admin")
    assert cookie is not None
    if state_changing:
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), csrf_for(token, cookie).encode()):
            raise _json_error(web.HTTPForbidden, "missing or invalid CSRF token")
    return "moderator:" + cookie.split(".")[1][:6]


def _json_error(cls: type[web.HTTPException], message: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": message}), content_type="application/json")


def set_session_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
