"""Admin: auth on every route, CSRF, cookie flags, login throttle, and moderation that
reaches every screen within a second and survives a restart."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from factories import make_post

from aggregator.config import load_config
from aggregator.model import Author
from aggregator.pipeline import RawItem
from web.app import create_app
from web.keys import RUNTIME

TOKEN = "correct horse battery staple"


def make_config(tmp_path: Path, token: str | None = TOKEN):
    env = {"BACKCHANNEL_WEB_ADMIN_TOKEN": token} if token else {}
    return load_config(env=env).with_overrides(
        event={"name": "Test Camp", "hashtags": ["testcamp"]},
        storage={"url": f"sqlite:///{tmp_path}/admin.db"},
        bluesky={"mode": "off"},
    )


@pytest.fixture
async def client(tmp_path: Path):
    async with TestClient(TestServer(create_app(make_config(tmp_path)), host="127.0.0.1")) as c:
        yield c


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def admin_routes(app: Any) -> list[tuple[str, str]]:
    routes = []
    for resource in app.router.resources():
        # A path parameter ({id}) gets a plausible value, so the route is reached.
        path = re.sub(r"\{[^}]+\}", "x1", resource.canonical)
        if path.startswith("/api/admin"):
            for route in resource:
                if route.method != "HEAD":
                    routes.append((route.method, path))
    return routes


async def publish(client: TestClient, *posts: Any) -> None:
    for post in posts:
        await client.app[RUNTIME].inbox.put(RawItem("t", "post", post))


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float) -> dict[str, Any]:
    """The next message of `kind`, skipping the pin/announce state sent after hello."""
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads((await ws.receive()).data)
            if msg["type"] == kind:
                return msg


async def login(client: TestClient) -> str:
    page = await client.get("/admin")
    html = await page.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf, html[:500]
    resp = await client.post(
        "/admin/login", data={"token": TOKEN, "csrf": csrf.group(1)}, allow_redirects=False
    )
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "bc_admin=" in cookie
    admin = await (await client.get("/admin")).text()
    token = re.search(r'data-csrf="([^"]+)"', admin)
    assert token, admin[:500]
    return token.group(1)


async def test_every_admin_route_refuses_without_auth(client: TestClient) -> None:
    routes = admin_routes(client.app)
    assert len(routes) >= 7, routes  # enumerated from the router: a new route is covered
    for method, path in routes:
        resp = await client.request(method, path, json={})
        assert resp.status == 401, (method, path)
    for method, path in routes:
        # Wrong tokens are refused, and after a few of them the address is throttled.
        resp = await client.request(method, path, headers={"Authorization": "Bearer x"}, json={})
        assert resp.status in (401, 429), (method, path)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws?view=admin")
    assert info.value.status == 401


async def test_admin_disabled_without_token(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path, token=None))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        for method, path in admin_routes(app):
            resp = await c.request(method, path, headers=BEARER, json={})
            assert resp.status == 403, (method, path)
            assert "disabled" in (await resp.json())["error"]
        assert (await c.get("/admin")).status == 403


async def test_session_cookie_and_csrf(client: TestClient) -> None:
    await publish(client, make_post(1))
    await wait_for(lambda: _count(client, 1))
    csrf = await login(client)
    body = {"action": "hide", "post": make_post(1).id}
    assert (await client.post("/api/admin/actions", json=body)).status == 403  # no CSRF
    bad = await client.post("/api/admin/actions", json=body, headers={"X-CSRF-Token": "x"})
    assert bad.status == 403
    ok = await client.post("/api/admin/actions", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status == 200 and (await ok.json())["ok"] is True
    ws = await client.ws_connect("/ws?view=admin")  # the session opens the admin stream
    await ws.close()


async def test_login_is_rate_limited(client: TestClient) -> None:
    for _ in range(5):
        page = await (await client.get("/admin")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf
        resp = await client.post("/admin/login", data={"token": "guess", "csrf": csrf.group(1)})
        assert resp.status == 401
    page = await (await client.get("/admin")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    resp = await client.post("/admin/login", data={"token": TOKEN, "csrf": csrf.group(1)})
    assert resp.status == 429  # even the right token waits out the window


async def _count(client: TestClient, n: int) -> bool:
    return bool(await client.app[RUNTIME].store.count() == n)


async def test_hide_retracts_everywhere_within_a_second_and_survives_restart(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as c:
        wall = await c.ws_connect("/ws?view=wall")
        await wall.send_json({"type": "hello", "after": "0"})
        await publish(c, make_post(1), make_post(2))
        assert len((await next_of(wall, "posts", 2))["posts"]) >= 1
        started = asyncio.get_running_loop().time()
        resp = await c.post(
            "/api/admin/actions", headers=BEARER, json={"action": "hide", "post": make_post(1).id}
        )
        assert resp.status == 200
        retract = await next_of(wall, "retract", 1.0)
        assert retract["ids"] == [make_post(1).id]
        assert asyncio.get_running_loop().time() - started < 1.0
        await wall.close()
        audit = await (await c.get("/api/admin/audit", headers=BEARER)).json()
        assert audit["entries"][0]["action"] == "hide"
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as c:
        page = await (await c.get("/api/posts")).json()
        assert [p["id"] for p in page["posts"]] == [make_post(2).id]
        hidden = await (await c.get("/api/admin/hidden", headers=BEARER)).json()
        assert [p["id"] for p in hidden["posts"]] == [make_post(1).id]
        # A copy of the hidden post arriving again does not bring it back.
        await publish(c, make_post(1, text="edited again"))
        await asyncio.sleep(0.3)
        page = await (await c.get("/api/posts")).json()
        assert make_post(1).id not in [p["id"] for p in page["posts"]]


async def test_pre_moderation_holds_the_wall_until_approved(client: TestClient) -> None:
    resp = await client.put("/api/admin/settings", headers=BEARER, json={"moderation": "pre"})
    assert resp.status == 200 and (await resp.json())["moderation"] == "pre"
    wall = await client.ws_connect("/ws?view=wall")
    await wall.send_json({"type": "hello"})
    await publish(client, make_post(5))
    with pytest.raises(TimeoutError):
        await next_of(wall, "posts", 0.6)
    assert (await (await client.get("/api/posts?view=wall")).json())["posts"] == []
    queue = await (await client.get("/api/admin/queue", headers=BEARER)).json()
    assert queue["posts"][0]["moderation"]["state"] == "pending"
    started = asyncio.get_running_loop().time()
    await client.post(
        "/api/admin/actions", headers=BEARER, json={"action": "approve", "post": make_post(5).id}
    )
    msg = await next_of(wall, "posts", 1.0)
    assert [p["id"] for p in msg["posts"]] == [make_post(5).id]
    assert asyncio.get_running_loop().time() - started < 1.0
    await wall.close()


async def test_ban_author_hides_old_and_new_posts(client: TestClient) -> None:
    troll = Author(handle="@troll@bad.example", name="Troll")
    await publish(client, make_post(1, author=troll), make_post(2))
    await wait_for(lambda: _count(client, 2))
    resp = await client.post(
        "/api/admin/actions", headers=BEARER, json={"action": "ban", "author": "troll@bad.example"}
    )
    assert (await resp.json())["changed"] == 1
    await publish(client, make_post(3, author=troll))
    await asyncio.sleep(0.3)
    page = await (await client.get("/api/posts")).json()
    assert [p["id"] for p in page["posts"]] == [make_post(2).id]
    bans = await (await client.get("/api/admin/bans", headers=BEARER)).json()
    assert bans["bans"][0]["value"] == "@troll@bad.example"
    await client.post(
        "/api/admin/actions",
        headers=BEARER,
        json={"action": "unban", "author": "@troll@bad.example"},
    )
    page = await (await client.get("/api/posts")).json()
    assert make_post(1).id in [p["id"] for p in page["posts"]]


async def test_pin_and_announce_reach_screens(client: TestClient) -> None:
    await publish(client, make_post(1))
    await wait_for(lambda: _count(client, 1))
    wall = await client.ws_connect("/ws?view=wall")
    await wall.send_json({"type": "hello"})
    first = await next_of(wall, "pin", 1.0)
    assert first["post"] is None
    await client.post(
        "/api/admin/actions", headers=BEARER, json={"action": "pin", "post": make_post(1).id}
    )
    pin = await next_of(wall, "pin", 1.0)
    assert pin["post"]["id"] == make_post(1).id
    await client.post(
        "/api/admin/actions", headers=BEARER, json={"action": "announce", "text": "Lunch is served"}
    )
    announce = await next_of(wall, "announce", 1.0)
    assert announce["text"] == "Lunch is served"
    await wall.close()


async def test_bad_admin_input_is_a_clear_400(client: TestClient) -> None:
    for body, needle in (
        ({"action": "explode"}, "action"),
        ({"action": "hide"}, "post"),
        ({"action": "ban"}, "author"),
        ([1, 2], "body"),
    ):
        resp = await client.post("/api/admin/actions", headers=BEARER, json=body)
        assert resp.status == 400 and needle in (await resp.json())["error"]
    resp = await client.post(
        "/api/admin/actions", headers=BEARER, json={"action": "hide", "post": "nope"}
    )
    assert resp.status == 404
    resp = await client.put("/api/admin/settings", headers=BEARER, json={"moderation": "maybe"})
    assert resp.status == 400 and "moderation" in (await resp.json())["error"]
