"""The Mastodon source streaming: live posts, edits and deletes reach open walls, every
gap (a dropped, stalled or unavailable stream) is filled through REST, a refused stream
falls back to polling once, and malformed frames are skipped. Against the simulator's
streaming websocket; the wall tests run the real app (`web.app.create_app`) and read its
`/ws` like a browser does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from test_mastodon_source import EPOCH, FAST, Harness, harness, status_item

from aggregator.config import Config, load_config
from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings
from web.app import create_app
from web.keys import RUNTIME

TOKEN = "sim-token"


async def count_is(h: Harness, n: int) -> bool:
    return await h.store.count() == n


async def streams_open(h: Harness, n: int = 1) -> bool:
    return h.sim.open_streams() >= n


# ------------------------------------------------------------------ the source and the store


async def test_streaming_delivers_posts_edits_and_deletes_and_fills_a_dropped_streams_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock.manual(EPOCH, offset=0)
    items = [status_item(n, at=10 + n) for n in range(30)]
    edited = items[3]["status"]["uri"]
    items.append({"at": 50, "op": "edit", "uri": edited, "content": "<p>edited #testcamp</p>"})
    items.append({"at": 55, "op": "delete", "uri": items[4]["status"]["uri"]})
    items += [status_item(n, at=30 + n) for n in range(30, 40)]  # at 60..69
    settings = ServerSettings(host="social.example", require_token=True)
    async with harness(tmp_path, items, [settings], clock) as h:
        source = h.source(h.urls[0], token=TOKEN)
        await h.until(lambda: streams_open(h))
        assert source.mode == "streaming"
        clock.set_offset(25)  # 16 posts released while streaming
        await h.until(lambda: count_is(h, 16))
        clock.set_offset(56)  # the rest, an edit and a delete (by local id)
        await h.until(lambda: count_is(h, 29))
        await h.until(lambda: text_is(h, edited, "edited #testcamp"))
        assert await h.store.get(items[4]["status"]["uri"]) is None
        # Cut the stream in the middle of a frame; ten posts are published before it
        # reconnects, and the new stream does not replay them: REST must.
        await h.sim.drop_streams(mid_frame=True)
        clock.set_offset(75)
        await h.until(lambda: count_is(h, 39), timeout=15)
        ids = await h.stored_ids()
        assert len(ids) == len(set(ids)) == 39
        assert "stream dropped" in caplog.text
        await h.until(lambda: streams_open(h))  # and it streams again
        assert h.sim.stream_connections() == 2


async def text_is(h: Harness, post_id: str, text: str) -> bool:
    post = await h.store.get(post_id)
    return post is not None and post.text == text


async def test_without_a_token_the_stream_says_401_and_the_source_polls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    items = [status_item(n, at=n) for n in range(5)]
    async with harness(
        tmp_path, items, [ServerSettings(host="social.example")], SimClock.manual(EPOCH, 100)
    ) as h:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with aiohttp.ClientSession() as http:
                await http.ws_connect(h.urls[0] + "/api/v1/streaming")
        assert refused.value.status == 401
        h.sim.reset_counts()
        source = h.source(h.urls[0])
        await h.until(lambda: count_is(h, 5))
        assert source.mode == "polling"
        lines = [r.getMessage() for r in caplog.records if "polling every" in r.getMessage()]
        assert len(lines) == 1 and "no token configured" in lines[0], lines
        assert h.sim.request_count(0, "/api/v1/streaming") == 0


async def test_a_refused_token_falls_back_to_polling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = [status_item(n, at=n) for n in range(5)]
    async with harness(
        tmp_path, items, [ServerSettings(host="social.example")], SimClock.manual(EPOCH, 100)
    ) as h:
        source = h.source(h.urls[0], token="not-a-valid-token")
        await h.until(lambda: count_is(h, 5))
        assert source.mode == "polling"
        assert "token was refused" in caplog.text
        assert h.sim.request_count(0, "/api/v1/streaming") == 0


async def test_a_stream_that_refuses_the_token_falls_back_to_polling_for_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The token is fine for REST (verify_credentials) but the streaming server says 401,
    # e.g. a token without the read scope the stream wants.
    settings = ServerSettings(host="social.example", stream_tokens=frozenset())
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=n + 1) for n in range(10)]
    async with harness(tmp_path, items, [settings], clock) as h:
        source = h.source(h.urls[0], token=TOKEN)
        await h.until(lambda: mode_is(source, "polling"))
        clock.set_offset(5)
        await h.until(lambda: count_is(h, 5))
        h.sim.fail_next(1, 500)  # the poller crashes once and supervise() restarts it
        clock.set_offset(20)
        await h.until(lambda: count_is(h, 10))
        assert source.mode == "polling"
    assert h.sim.request_count(0, "/api/v1/streaming") == 1  # never retried
    refusals = [r for r in caplog.records if "polling from now on" in r.getMessage()]
    assert len(refusals) == 1 and "refused the token (HTTP 401)" in refusals[0].getMessage()


async def mode_is(source: Any, mode: str) -> bool:
    return bool(source.mode == mode)


async def test_a_silent_stream_is_noticed_by_the_ping_timeout(tmp_path: Path) -> None:
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=n + 1) for n in range(10)]
    timing = replace(FAST, ping_interval=0.3)
    settings = ServerSettings(host="social.example")
    async with harness(tmp_path, items, [settings], clock) as h:
        h.source(h.urls[0], token=TOKEN, timing=timing)
        await h.until(lambda: streams_open(h))
        h.sim.stall_streams(3.0)  # reads and sends nothing: our pings go unanswered
        clock.set_offset(20)  # published while the stream is silent
        await h.until(lambda: count_is(h, 10), timeout=10)
        # It gave up on the silent stream (after ~2 ping intervals) and opened another.
        await h.until(lambda: connections(h, 2), timeout=10)


async def connections(h: Harness, n: int) -> bool:
    return h.sim.stream_connections() >= n


async def test_an_event_the_stream_loses_is_found_by_the_periodic_re_read(
    tmp_path: Path,
) -> None:
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=n + 1) for n in range(6)]
    timing = replace(FAST, stream_refresh_every=0.5)
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        h.source(h.urls[0], token=TOKEN, timing=timing)
        await h.until(lambda: streams_open(h))
        h.sim.stream_lose_next(2)  # the server never sends two of them, and stays up
        clock.set_offset(10)
        await h.until(lambda: count_is(h, 6), timeout=5)
        # Not a reconnect's catch-up: the same stream, and a REST re-read meanwhile.
        assert h.sim.stream_connections() == 1


async def test_while_the_streaming_server_is_down_posts_come_through_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=n + 1) for n in range(10)]
    async with harness(tmp_path, items, [ServerSettings(host="social.example")], clock) as h:
        source = h.source(h.urls[0], token=TOKEN)
        await h.until(lambda: streams_open(h))
        h.sim.streams_unavailable(10**6)
        await h.sim.drop_streams()
        clock.set_offset(20)
        await h.until(lambda: count_is(h, 10), timeout=10)
        assert h.sim.open_streams() == 0 and source.mode == "streaming"
        await h.until(lambda: logged(caplog, "answered HTTP 503; retrying"))
        h.sim.streams_unavailable(0)  # back: it streams again
        await h.until(lambda: streams_open(h), timeout=10)


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text


async def test_malformed_stream_frames_are_skipped_and_the_stream_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=n + 1) for n in range(6)]
    big = status_item(99, at=3.5)
    big["status"]["content"] = "<p>" + "z" * (5 * 1024 * 1024) + " #testcamp</p>"
    async with harness(
        tmp_path, [*items, big], [ServerSettings(host="social.example")], clock
    ) as h:
        source = h.source(h.urls[0], token=TOKEN)
        await h.until(lambda: streams_open(h))
        good = json.loads(json.dumps(items[0]["status"]))
        hostile = [
            "{not json",
            "[1, 2, 3]",
            json.dumps({"event": "update", "payload": "{truncated"}),
            json.dumps({"event": "update", "payload": json.dumps([1, 2])}),
            json.dumps({"event": "update", "payload": 12345}),
            json.dumps({"event": "update", "payload": json.dumps({"id": "7"})}),  # no fields
            json.dumps({"event": "update", "payload": json.dumps({**good, "account": "x"})}),
            json.dumps({"event": "update", "payload": json.dumps({**good, "uri": ["x"]})}),
            json.dumps({"event": "delete", "payload": {"id": "1"}}),
            json.dumps({"event": "delete", "payload": True}),
            json.dumps({"event": "status.update"}),
            json.dumps({"event": "filters_changed"}),
            json.dumps({"error": "Rate limited"}),
        ]
        for frame in hostile:
            await h.sim.stream_send(frame)
        h.sim.stream_garbage_next(2)  # and two bad frames in the middle of real events
        clock.set_offset(3)
        await h.until(lambda: count_is(h, 3))
        assert h.sim.stream_connections() == 1  # none of that cost the connection
        # A 5 MB frame is over the frame cap: the stream drops, REST reads the post
        # (capped by the sanitiser), and streaming resumes.
        clock.set_offset(10)
        await h.until(lambda: count_is(h, 7), timeout=15)
        stored = await h.store.get(big["status"]["uri"])
        assert stored is not None and len(stored.html) < 200_000
        await h.until(lambda: streams_open(h))
        assert source.mode == "streaming"
    assert caplog.text.count("skipped") >= 8


# ------------------------------------------------------------------ the real app and its walls


def app_config(tmp_path: Path, urls: list[str], **mastodon: Any) -> Config:
    return load_config(env={"BACKCHANNEL_MASTODON_TOKEN": TOKEN}).with_overrides(
        event={
            "name": "Test Camp",
            "hashtags": ["testcamp"],
            "start": (EPOCH - timedelta(hours=1)).replace(tzinfo=None),
        },
        storage={"url": f"sqlite:///{tmp_path}/app.db"},
        bluesky={"mode": "off"},
        mastodon={"servers": urls, "poll_interval": 0.1, "min_poll_interval": 0.05, **mastodon},
    )


class Wall:
    """A websocket client that keeps its view and when each thing reached it."""

    def __init__(self) -> None:
        self.view: dict[str, dict[str, Any]] = {}
        self.shown: Counter[str] = Counter()  # ids in "posts" messages: must be 1 each
        self.seen_at: dict[tuple[str, str], float] = {}  # (kind, id) -> loop time
        self.ready = asyncio.Event()

    async def follow(self, url: str) -> None:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.send_json({"type": "hello", "after": "0"})
            self.ready.set()
            async for msg in ws:
                data = json.loads(msg.data)
                now = loop.time()
                if data["type"] == "posts":
                    for post in data["posts"]:
                        self.shown[post["id"]] += 1
                        self.view[post["id"]] = post
                        self.seen_at.setdefault(("post", post["id"]), now)
                elif data["type"] == "update":
                    self.view[data["post"]["id"]] = data["post"]
                    self.seen_at[("update", data["post"]["id"])] = now
                elif data["type"] == "retract":
                    for post_id in data["ids"]:
                        self.view.pop(post_id, None)
                        self.seen_at.setdefault(("retract", post_id), now)
                assert data["type"] != "resync"


@contextlib.asynccontextmanager
async def running_app(config: Config, *views: str) -> AsyncIterator[tuple[TestServer, list[Wall]]]:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    walls = [Wall() for _ in views]
    tasks = [
        asyncio.create_task(w.follow(str(server.make_url("/ws")) + f"?view={v}"))
        for w, v in zip(walls, views, strict=True)
    ]
    try:
        await asyncio.gather(*(w.ready.wait() for w in walls))
        yield server, walls
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_live_posts_edits_and_deletes_reach_every_open_wall_within_a_second(
    tmp_path: Path,
) -> None:
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=10 + n) for n in range(10)]
    target, doomed = items[2]["status"]["uri"], items[5]["status"]["uri"]
    items.append({"at": 30, "op": "edit", "uri": target, "content": "<p>fixed #testcamp</p>"})
    items.append({"at": 40, "op": "delete", "uri": doomed})
    sim = MastodonSimulator(items, clock, EPOCH, [ServerSettings(host="social.example")])
    urls = await sim.start()
    try:
        async with running_app(app_config(tmp_path, urls), "wall", "remote") as (srv, walls):
            await wait_for(lambda: sim.open_streams() == 1)
            loop = asyncio.get_running_loop()
            clock.set_offset(15)  # six live posts
            released = loop.time()
            await wait_for(lambda: all(len(w.view) == 6 for w in walls))
            for wall in walls:
                for post_id in wall.view:
                    assert wall.seen_at[("post", post_id)] - released < 1.0
            clock.set_offset(30)  # the rest, and an edit
            edited_at = loop.time()
            await wait_for(
                lambda: all(w.view.get(target, {}).get("text") == "fixed #testcamp" for w in walls)
            )
            for wall in walls:
                assert wall.seen_at[("update", target)] - edited_at < 1.0
            clock.set_offset(40)  # a delete that carries only the server's local id
            deleted_at = loop.time()
            await wait_for(lambda: all(doomed not in w.view for w in walls))
            for wall in walls:
                assert wall.seen_at[("retract", doomed)] - deleted_at < 1.0
                assert len(wall.view) == 9
                assert max(wall.shown.values()) == 1
            lags = [w.seen_at[("update", target)] - edited_at for w in walls] + [
                w.seen_at[("retract", doomed)] - deleted_at for w in walls
            ]
            print(f"\nedit and delete reached both walls in {max(lags) * 1000:.0f} ms at most")
            assert srv.app[RUNTIME].sources  # supervised like every source
    finally:
        await sim.stop()


async def test_a_dropped_stream_leaves_no_gap_on_the_wall(tmp_path: Path) -> None:
    clock = SimClock.manual(EPOCH, 0)
    items = [status_item(n, at=10 + n) for n in range(40)]
    sim = MastodonSimulator(items, clock, EPOCH, [ServerSettings(host="social.example")])
    urls = await sim.start()
    try:
        async with running_app(app_config(tmp_path, urls), "wall") as (_, (wall,)):
            await wait_for(lambda: sim.open_streams() == 1)
            clock.set_offset(20)
            await wait_for(lambda: len(wall.view) == 11)
            await sim.drop_streams(mid_frame=True)
            clock.set_offset(60)  # 29 posts while no stream is open
            await wait_for(lambda: len(wall.view) == 40, timeout=15)
            assert max(wall.shown.values()) == 1
            await wait_for(lambda: sim.open_streams() == 1)  # and it streams again
            clock.set_offset(61)
            assert sim.stream_connections() == 2
    finally:
        await sim.stop()
