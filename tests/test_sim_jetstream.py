"""The Bluesky simulators speak the real wire: Jetstream v2 frames, inclusive seq cursors,
time cursors, CursorTooOld, error frames and filters; the AppView's getProfiles limits,
session and search; the demo's Bluesky share. Real loopback sockets, a plain websocket
client (not our source), so the simulator is checked on its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from aggregator.demo import event_epoch, load_dataset
from aggregator.match import HashtagMatcher
from aggregator.normalise.bluesky import normalise_bluesky_post
from aggregator.sim.appview import AppViewSimulator, SimProfile
from aggregator.sim.bluesky_data import (
    LoadGenerator,
    bluesky_share,
    did_for,
    post_record,
    start_bluesky_sims,
)
from aggregator.sim.clock import SimClock
from aggregator.sim.jetstream import NSID, SUBPROTOCOL, JetstreamSimulator, tid

ALICE = did_for("alice")
BOB = did_for("bob")
CREATED = "2026-11-21T10:00:00.000Z"


def record(text: str = "hello", tag: str | None = "blc26") -> dict[str, Any]:
    segments = [("text", text + " ")] + ([("tag", tag)] if tag else [])
    return post_record(segments, CREATED)


@pytest.fixture
async def sim() -> AsyncIterator[tuple[JetstreamSimulator, str]]:
    server = JetstreamSimulator(retention=50, max_lag=1000)
    url = await server.start()
    yield server, url
    await server.stop()


def subscribe_url(base: str, **params: Any) -> str:
    query = "&".join(
        f"{k}={v}" for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])
    )
    return f"{base}/xrpc/{NSID}?{query}"


async def read_frames(url: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    protocols = [websockets.Subprotocol(SUBPROTOCOL)]
    async with websockets.connect(url, subprotocols=protocols, close_timeout=0.1) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        while len(frames) < count:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return frames


async def test_commit_frames_have_the_v2_shape_and_the_cursor_is_inclusive(
    sim: tuple[JetstreamSimulator, str],
) -> None:
    server, base = sim
    seqs = [
        server.publish_commit(ALICE, "create", tid(1000 + i), record(f"n{i}")) for i in range(5)
    ]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    frames = await read_frames(subscribe_url(base, cursor=seqs[2]), 3)
    assert [f["payload"]["seq"] for f in frames] == seqs[2:]  # the cursor's own event too
    frame = frames[0]
    assert frame["$type"] == "message"
    payload = frame["payload"]
    assert payload["$type"] == f"{NSID}#commit"
    assert {"seq", "did", "time", "operation", "collection", "rkey", "rev", "cid", "record"} <= set(
        payload
    )
    assert payload["record"]["text"] == "n2 #blc26"
    assert payload["time"].endswith("Z") and len(payload["time"]) == len(
        "2026-11-21T10:00:00.000000Z"
    )


async def test_live_tail_filters_and_delete_frames(sim: tuple[JetstreamSimulator, str]) -> None:
    server, base = sim
    url = subscribe_url(base, collections="app.bsky.feed.post", kinds=["commit", "account"])
    got: list[dict[str, Any]] = []

    async def reader() -> None:
        got.extend(await read_frames(url, 3))

    task = asyncio.create_task(reader())
    while not server.connections:
        await asyncio.sleep(0.01)
    server.publish_commit(
        ALICE, "create", "a1", {"$type": "app.bsky.feed.like"}, collection="app.bsky.feed.like"
    )
    server.publish_identity(ALICE, "alice.example")  # kind not asked for
    server.publish_commit(ALICE, "create", "p1", record())
    server.publish_commit(ALICE, "delete", "p1")
    server.publish_account(BOB, False, "deactivated")
    await asyncio.wait_for(task, 5)
    kinds = [f["payload"]["$type"].rpartition("#")[2] for f in got]
    assert kinds == ["commit", "commit", "account"]
    assert got[1]["payload"]["operation"] == "delete" and "record" not in got[1]["payload"]
    account = got[2]["payload"]["account"]
    assert account["active"] is False and account["status"] == "deactivated"
    assert account["seq"] != got[2]["payload"]["seq"]  # the relay's seq, not Jetstream's


async def test_cursor_older_than_retention_is_refused_before_upgrade(
    sim: tuple[JetstreamSimulator, str],
) -> None:
    server, base = sim
    first = server.publish_commit(ALICE, "create", "x0", record())
    for i in range(100):
        server.publish_commit(ALICE, "create", f"x{i + 1}", record())
    with pytest.raises(InvalidStatus) as caught:
        await read_frames(subscribe_url(base, cursor=first), 1)
    response = caught.value.response
    assert response.status_code == 400
    assert json.loads(response.body)["error"] == "CursorTooOld"


async def test_time_cursor_clamps_with_an_info_frame_and_future_cursor_starts_live(
    sim: tuple[JetstreamSimulator, str],
) -> None:
    server, base = sim
    for i in range(100):  # beyond the retention of 50
        server.publish_commit(ALICE, "create", f"t{i}", record(), time_us=1_800_000_000_000_000 + i)
    frames = await read_frames(subscribe_url(base, cursor=1_700_000_000_000_000), 2)
    assert frames[0]["payload"] == {
        "$type": f"{NSID}#info",
        "name": "OutdatedCursor",
        "message": frames[0]["payload"]["message"],
    }
    assert frames[1]["payload"]["seq"] == server.log.floor_seq()
    middle = await read_frames(subscribe_url(base, cursor=1_800_000_000_000_080), 1)
    assert middle[0]["payload"]["rkey"] == "t80"
    url = subscribe_url(base, cursor=server.log.next_seq + 1000)
    task = asyncio.create_task(read_frames(url, 2))
    while not server.connections:
        await asyncio.sleep(0.01)
    seq = server.publish_commit(BOB, "create", "live", record())
    frames = await asyncio.wait_for(task, 5)
    assert frames[0]["payload"]["name"] == "FutureCursor"
    assert frames[1]["payload"]["seq"] == seq


@pytest.mark.parametrize(
    "query",
    [
        {"kinds": "bogus"},
        {"kinds": "identity", "collections": "app.bsky.feed.post"},
        {"cursor": "x"},
    ],
)
async def test_bad_parameters_are_rejected_with_400(
    sim: tuple[JetstreamSimulator, str], query: dict[str, str]
) -> None:
    _server, base = sim
    with pytest.raises(InvalidStatus) as caught:
        await read_frames(subscribe_url(base, **query), 1)
    assert caught.value.response.status_code == 400
    assert json.loads(caught.value.response.body)["error"] == "InvalidRequest"


async def test_error_frames_slow_consumers_raw_frames_and_injected_failures(
    sim: tuple[JetstreamSimulator, str],
) -> None:
    server, base = sim
    server.fail_next(1, 503)
    with pytest.raises(InvalidStatus) as caught:
        await read_frames(subscribe_url(base), 1)
    assert caught.value.response.status_code == 503

    first = server.publish_commit(ALICE, "create", "r0", record())
    server.publish_raw("{not json")  # delivered in stream order, after r0
    server.publish_commit(ALICE, "create", "r1", record())
    async with websockets.connect(subscribe_url(base, cursor=first)) as ws:
        assert json.loads(await ws.recv())["payload"]["rkey"] == "r0"
        assert await ws.recv() == "{not json"
        assert json.loads(await ws.recv())["payload"]["rkey"] == "r1"
        server.send_error("ConsumerTooSlow", "too slow")
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error == {"$type": "error", "error": "ConsumerTooSlow", "message": "too slow"}
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)

    # Replaying from far back is fine; a live subscriber that falls more than max_lag
    # events behind the head is cut off.
    lagging = JetstreamSimulator(retention=10_000, max_lag=100)
    url = await lagging.start()
    try:
        for i in range(500):
            lagging.publish_commit(ALICE, "create", f"l{i}", record())
        replayed = await read_frames(subscribe_url(url, cursor=lagging.log.floor_seq()), 500)
        assert replayed[-1]["payload"]["rkey"] == "l499"
        async with websockets.connect(subscribe_url(url), close_timeout=0.1) as ws:
            await asyncio.sleep(0.1)  # live at the head now
            for i in range(500):
                lagging.publish_commit(ALICE, "create", f"m{i}", record())
            frames = [json.loads(m) async for m in ws]
        assert frames[-1]["error"] == "ConsumerTooSlow" and len(frames) == 1
        assert lagging.errors_sent["ConsumerTooSlow"] == 1
    finally:
        await lagging.stop()


async def test_dropped_connections_and_stats(sim: tuple[JetstreamSimulator, str]) -> None:
    server, base = sim
    async with websockets.connect(subscribe_url(base)) as ws:
        while not server.connections:
            await asyncio.sleep(0.01)
        server.drop_connections()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    async with aiohttp.ClientSession() as http:
        stats_url = base.replace("ws://", "http://") + "/_sim/stats"
        async with http.get(stats_url) as resp:
            stats = await resp.json()
    assert stats["connects"] == 1 and stats["next_seq"] == server.log.next_seq


async def test_appview_profiles_sessions_and_search() -> None:
    appview = AppViewSimulator(
        [SimProfile(did_for(f"u{i}"), f"u{i}.example", f"User {i}") for i in range(30)],
        passwords={"u1.example": "app-pass"},
    )
    base = await appview.start()
    try:
        async with aiohttp.ClientSession() as http:
            actors = [("actors", did_for(f"u{i}")) for i in range(25)] + [
                ("actors", "nobody.example")
            ]
            async with http.get(f"{base}/xrpc/app.bsky.actor.getProfiles", params=actors[:26]) as r:
                assert r.status == 400
                assert (await r.json())["error"] == "InvalidRequest"
            async with http.get(f"{base}/xrpc/app.bsky.actor.getProfiles", params=actors[-3:]) as r:
                body = await r.json()
            assert [p["handle"] for p in body["profiles"]] == ["u23.example", "u24.example"]
            assert body["profiles"][0]["displayName"] == "User 23"

            search = f"{base}/xrpc/app.bsky.feed.searchPosts"
            async with http.get(search, params={"q": "#blc26"}) as r:
                assert r.status == 403
            login = f"{base}/xrpc/com.atproto.server.createSession"
            async with http.post(login, json={"identifier": "u1.example", "password": "no"}) as r:
                assert r.status == 401
            async with http.post(
                login, json={"identifier": "u1.example", "password": "app-pass"}
            ) as r:
                token = (await r.json())["accessJwt"]
            for i in range(3):
                appview.observe(
                    {
                        "did": did_for("u2"),
                        "collection": "app.bsky.feed.post",
                        "operation": "create",
                        "rkey": f"s{i}",
                        "cid": "bafyreiabc",
                        "time": f"2026-11-21T10:0{i}:00.000000Z",
                        "record": record(f"post {i}", "BLC26" if i else "other"),
                    }
                )
            headers = {"Authorization": f"Bearer {token}"}
            params = {"q": "#blc26", "limit": "1"}
            async with http.get(search, params=params, headers=headers) as r:
                page = await r.json()
            assert [p["uri"].rsplit("/", 1)[1] for p in page["posts"]] == ["s2"]
            assert page["posts"][0]["author"]["handle"] == "u2.example"
            params["cursor"] = page["cursor"]
            async with http.get(search, params=params, headers=headers) as r:
                page = await r.json()
            assert [p["uri"].rsplit("/", 1)[1] for p in page["posts"]] == [
                "s1"
            ] and "cursor" not in page
    finally:
        await appview.stop()


def test_demo_share_is_valid_bluesky_content_for_the_event() -> None:
    data = load_dataset()
    share = bluesky_share(data)
    matcher = HashtagMatcher(data["event"]["hashtags"])
    creates = [item for item in share.script if item.op == "create"]
    assert len(creates) >= 60
    assert len({(i.did, i.rkey) for i in creates}) == len(creates)
    assert {i.op for i in share.script} == {"create", "update", "delete", "identity"}
    matching = 0
    for item in creates:
        record = item.record
        assert record is not None
        normalise_bluesky_post(record, did=item.did, rkey=item.rkey)  # raises if invalid
        matching += matcher.matches_bluesky_record(record)
        text_bytes = record["text"].encode()
        for facet in record.get("facets", []):  # offsets are UTF-8 byte ranges of "#tag"
            feature, index = facet["features"][0], facet["index"]
            shown = text_bytes[index["byteStart"] : index["byteEnd"]].decode()
            if feature["$type"].endswith("#tag"):
                assert shown == f"#{feature['tag']}"
            else:
                assert feature["uri"].endswith(shown)
    assert matching == len(creates) - 1  # one deliberate near miss
    shapes = json.dumps([i.record for i in creates])
    for needle in (
        "app.bsky.embed.images",
        "app.bsky.embed.external",
        "app.bsky.embed.record",
        '"reply"',
        '"tags"',
    ):
        assert needle in shapes
    assert bluesky_share(data) == share  # deterministic


async def test_demo_sims_replay_the_past_at_once_and_follow_the_clock() -> None:
    data = load_dataset()
    epoch = event_epoch(data)
    clock = SimClock(epoch, speed=0.0, start_offset=3600.0)
    sims = await start_bluesky_sims(clock, data, noise_rate=0.0)
    try:
        share = bluesky_share(data)
        past = [i for i in share.script if i.at <= 3600.0]
        await asyncio.sleep(0.05)
        assert sims.jetstream.log.next_seq - 1_000_000 == len(past)
        frames = await read_frames(
            subscribe_url(sims.jetstream_url, cursor=int(epoch.timestamp() * 1e6)), 1
        )
        first_at = min(i.at for i in past if i.at >= 0)
        assert frames[0]["payload"]["time"].startswith(
            datetime.fromtimestamp(epoch.timestamp() + first_at, UTC).strftime("%Y-%m-%dT%H:%M")
        )
        clock.advance(7200.0)
        await asyncio.sleep(0.3)
        assert sims.jetstream.log.next_seq - 1_000_000 == len(
            [i for i in share.script if i.at <= 10800.0]
        )
        assert sims.config()["mode"] == "jetstream"
        assert any(did in sims.appview.profiles for did in {i.did for i in past})
    finally:
        await sims.stop()


def test_load_generator_mixes_matches_near_misses_and_deletes() -> None:
    server = JetstreamSimulator(retention=20_000)
    load = LoadGenerator(server, tags=["bluelightcamp", "blc26"], match_rate=0.01, seed=3)
    load.publish(10_000)
    matcher = HashtagMatcher(["bluelightcamp", "blc26"])
    payloads = [json.loads(e.frame)["payload"] for e in server.log.events]
    creates = [p for p in payloads if p.get("operation") == "create"]
    matched = {
        f"at://{p['did']}/app.bsky.feed.post/{p['rkey']}"
        for p in creates
        if matcher.matches_bluesky_record(p["record"])
    }
    assert matched == set(load.matched) and 50 <= len(matched) <= 150
    assert sum(p.get("operation") == "delete" for p in payloads) > 300
    assert any("bluelightcamping" in e.frame for e in server.log.events)
