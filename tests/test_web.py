"""The web app on a real loopback port: /api/posts, /ws live + resume, /healthz."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from factories import POST_JSON_KEYS, make_post

from aggregator.config import load_config
from aggregator.pipeline import Delete, RawItem
from web.app import create_app
from web.keys import RUNTIME


def make_config(tmp_path: Path):
    return load_config(env={}).with_overrides(
        event={"name": "Test Camp", "hashtags": ["testcamp"]},
        storage={"url": f"sqlite:///{tmp_path}/web.db"},
        bluesky={"mode": "off"},
    )


@pytest.fixture
async def client(tmp_path: Path):
    app = create_app(make_config(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def publish(client: TestClient, *items: Any) -> None:
    inbox = client.app[RUNTIME].inbox
    for item in items:
        await inbox.put(item)


async def wait_count(client: TestClient, n: int) -> None:
    store = client.app[RUNTIME].store
    for _ in range(200):
        if await store.count() == n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"store never reached {n} posts")


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> dict[str, Any]:
    """The next message about posts, skipping the pin/announce state sent after hello."""
    while True:
        msg = await ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] not in ("pin", "announce"):
            return data


async def test_api_posts_pages_and_validates(client: TestClient) -> None:
    await publish(client, *(RawItem("t", "post", make_post(n)) for n in range(1, 8)))
    await wait_count(client, 7)
    resp = await client.get("/api/posts", params={"limit": "3"})
    body = await resp.json()
    assert resp.status == 200
    assert [p["id"] for p in body["posts"]] == [make_post(n).id for n in (7, 6, 5)]
    assert set(body["posts"][0]) == POST_JSON_KEYS
    resp = await client.get("/api/posts", params={"limit": "3", "before": body["next"]})
    assert [p["id"] for p in (await resp.json())["posts"]] == [make_post(n).id for n in (4, 3, 2)]
    for params in (
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "x"},
        {"platform": "myspace"},
        {"before": "garbage"},
        {"media": "maybe"},
        {"q": "x" * 300},
    ):
        resp = await client.get("/api/posts", params=params)
        assert resp.status == 400, params
        assert "error" in await resp.json()


async def test_healthz_and_security_headers(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_ws_live_then_resume_without_gaps(client: TestClient) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "hello", "after": "0"})
    await publish(client, RawItem("t", "post", make_post(1)), RawItem("t", "post", make_post(2)))
    got: list[str] = []
    cursor = "0"
    while len(got) < 2:
        msg = await receive_json(ws)
        assert msg["type"] == "posts"
        got += [p["id"] for p in msg["posts"]]
        cursor = msg["cursor"]
    assert got == [make_post(1).id, make_post(2).id]
    await ws.close()
    # While the client is away: two new posts, an edit and a delete.
    await publish(
        client,
        RawItem("t", "post", make_post(3)),
        RawItem("t", "post", make_post(4)),
        Delete("t", post_id=make_post(1).id),
    )
    await wait_count(client, 3)
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "hello", "after": cursor})
    seen: list[tuple[str, str]] = []
    while len(seen) < 3:
        msg = await receive_json(ws)
        if msg["type"] == "posts":
            seen += [("post", p["id"]) for p in msg["posts"]]
        elif msg["type"] == "retract":
            seen += [("retract", i) for i in msg["ids"]]
    assert seen == [
        ("post", make_post(3).id),
        ("post", make_post(4).id),
        ("retract", make_post(1).id),
    ]
    # And then live again, exactly once.
    await publish(client, RawItem("t", "post", make_post(5)))
    msg = await receive_json(ws)
    assert [p["id"] for p in msg["posts"]] == [make_post(5).id]
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive(timeout=0.5)
    await ws.close()


async def test_ws_unknown_cursor_gets_resync(client: TestClient) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "hello", "after": "99999"})
    assert (await receive_json(ws))["type"] == "resync"
    await ws.close()


async def test_ws_refuses_foreign_origin(client: TestClient) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert info.value.status == 403


async def test_ws_garbage_frames_are_ignored(client: TestClient) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_str("{not json")
    await ws.send_bytes(b"\x00\x01")
    await ws.send_json({"type": "hello", "after": {"nested": True}})
    await publish(client, RawItem("t", "post", make_post(9)))
    msg = await receive_json(ws)
    assert msg["type"] == "posts"
    await ws.close()


async def test_connections_per_ip_are_capped(tmp_path: Path) -> None:
    config = make_config(tmp_path).with_overrides(web={"max_connections_per_ip": 3})
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as c:
        sockets = [await c.ws_connect("/ws") for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await c.ws_connect("/ws")
        assert info.value.status == 429
        await sockets[0].close()
        await asyncio.sleep(0.1)
        sockets[0] = await c.ws_connect("/ws")  # a freed slot can be used again
        for ws in sockets:
            await ws.close()


async def test_atom_feed_of_the_live_stream(client: TestClient) -> None:
    cw = make_post(2, spoiler_text="spoilers", text="the ending\x07")
    await publish(client, RawItem("t", "post", make_post(1)), RawItem("t", "post", cw))
    await wait_count(client, 2)
    resp = await client.get("/feed.atom")
    assert resp.status == 200
    assert resp.content_type == "application/atom+xml"
    import xml.etree.ElementTree as ET

    root = ET.fromstring(await resp.read())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert [e.findtext("a:id", namespaces=ns) for e in entries] == [cw.id, make_post(1).id]
    assert entries[0].find("a:content", ns) is None  # a CW post does not show its text
    assert "CW: spoilers" in (entries[0].findtext("a:summary", namespaces=ns) or "")


async def test_frame_ancestors_are_configurable(tmp_path: Path) -> None:
    config = make_config(tmp_path).with_overrides(
        web={"frame_ancestors": ["https://conference.example"]}
    )
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as c:
        csp = (await c.get("/wall")).headers["Content-Security-Policy"]
        assert "frame-ancestors https://conference.example" in csp
