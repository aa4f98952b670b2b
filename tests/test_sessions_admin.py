"""The session grid edited on the day, and organisers' assignment overrides."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from factories import make_post

from aggregator.config import load_config
from aggregator.pipeline import RawItem
from web.app import create_app
from web.keys import RUNTIME

TOKEN = "grid-admin-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CSV = "start,end,room,title,leaders,hashtag\n2026-11-21T10:00,2026-11-21T11:00,Hall,Opening,Ada,\n"


def make_config(tmp_path: Path) -> Any:
    (tmp_path / "schedule.csv").write_text(CSV)
    return load_config(env={"BACKCHANNEL_WEB_ADMIN_TOKEN": TOKEN}).with_overrides(
        event={"name": "Test Camp", "hashtags": ["testcamp"], "timezone": "Europe/London"},
        storage={"url": f"sqlite:///{tmp_path}/grid.db"},
        bluesky={"mode": "off"},
        digest={"schedule": str(tmp_path / "schedule.csv")},
    )


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    async with TestClient(TestServer(create_app(make_config(tmp_path)), host="127.0.0.1")) as c:
        yield c


async def sessions(client: TestClient, path: str = "/api/sessions") -> list[dict[str, Any]]:
    resp = await client.get(path, headers=BEARER)
    assert resp.status == 200
    return list((await resp.json())["sessions"])


SESSION = {
    "title": "Mapping the neighbourhood",
    "room": "Room A",
    "start": "2026-11-21T11:00",
    "end": "2026-11-21T11:45",
    "leaders": "Noor, @noor@social.example",
    "hashtag": "#blcA1",
}


async def test_sessions_are_added_edited_and_removed_with_clear_errors(
    client: TestClient,
) -> None:
    assert (await client.post("/api/admin/sessions", json=SESSION)).status in (401, 403)
    resp = await client.post("/api/admin/sessions", json=SESSION, headers=BEARER)
    assert resp.status == 201
    created = (await resp.json())["session"]
    assert created["start"] == "2026-11-21T11:00:00+00:00"  # London in November is UTC+0
    assert created["leaders"] == ["Noor", "@noor@social.example"]
    assert created["hashtag"] == "blca1"
    titles = [s["title"] for s in await sessions(client)]
    assert titles == ["Opening", "Mapping the neighbourhood"]  # imported + added, by time
    edited = {**SESSION, "title": "Mapping the street"}
    resp = await client.put(f"/api/admin/sessions/{created['id']}", json=edited, headers=BEARER)
    assert resp.status == 200
    assert [s["title"] for s in await sessions(client)][-1] == "Mapping the street"
    for bad, field in (
        ({**SESSION, "end": "2026-11-21T10:00"}, "end:"),
        ({**SESSION, "start": "tomorrow"}, "start:"),
        ({**SESSION, "hashtag": "#two words"}, "hashtag:"),
        ({**SESSION, "title": ""}, "title:"),
    ):
        resp = await client.post("/api/admin/sessions", json=bad, headers=BEARER)
        assert resp.status == 400
        assert (await resp.json())["error"].startswith(field)
    # The imported session can be edited and removed too.
    opening = (await sessions(client))[0]
    resp = await client.delete(f"/api/admin/sessions/{opening['id']}", headers=BEARER)
    assert resp.status == 200
    assert [s["title"] for s in await sessions(client)] == ["Mapping the street"]
    resp = await client.delete("/api/admin/sessions/nope", headers=BEARER)
    assert resp.status == 404


async def test_edits_survive_a_restart_and_reach_the_walls(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        ws = await client.ws_connect("/ws?view=wall")
        await ws.send_json({"type": "hello"})
        resp = await client.post("/api/admin/sessions", json=SESSION, headers=BEARER)
        assert resp.status == 201
        kinds = []
        for _ in range(10):
            msg = json.loads((await ws.receive(timeout=3)).data)
            kinds.append(msg["type"])
            if msg["type"] == "sessions":
                break
        assert "sessions" in kinds
        await ws.close()
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        titles = [s["title"] for s in await sessions(client)]
        assert "Mapping the neighbourhood" in titles


async def test_an_organisers_override_decides_the_digest_and_persists(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    post = make_post(1, text="Great talk about the neighbourhood map #testcamp")
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        created = await (
            await client.post("/api/admin/sessions", json=SESSION, headers=BEARER)
        ).json()
        await client.app[RUNTIME].inbox.put(RawItem("test", "post", post))
        for _ in range(100):
            if await client.app[RUNTIME].store.get(post.id):
                break
            await asyncio.sleep(0.02)
        body = {"action": "assign", "post": post.id, "session": created["session"]["id"]}
        assert (await client.post("/api/admin/actions", json=body, headers=BEARER)).status == 200
        digest = await (await client.get("/digest.json")).json()
        placed = {s["id"]: s["posts"] for s in digest["sessions"]}
        assert placed[created["session"]["id"]] == [post.id]
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        digest = await (await client.get("/digest.json")).json()
        placed = {s["id"]: s["posts"] for s in digest["sessions"]}
        assert placed[created["session"]["id"]] == [post.id]  # survived the restart
        body = {"action": "assign", "post": post.id, "session": "general"}
        assert (await client.post("/api/admin/actions", json=body, headers=BEARER)).status == 200
        digest = await (await client.get("/digest.json")).json()
        assert digest["general"] == [post.id]
        assert all(post.id not in s["posts"] for s in digest["sessions"])
