"""Client faults against `backchannel run` (a real child process fed by the Jetstream
simulator): browsers that connect and never read, a storm of 1,000 clients reconnecting
at once with `after` cursors, and clients that send garbage or oversized frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from factories import free_port
from reliability_support import (
    LatencyProbe,
    client_frame,
    open_fds,
    raw_websocket,
    rss_mb,
    simulators,
    spawn_service,
    stop_process,
    wait_http,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STORM = 1_000


def raise_fd_limit(wanted: int = 8192) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@dataclass
class Service:
    port: int
    pid: int
    db: Path
    sims: Any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.base}/healthz") as resp:
            data: dict[str, Any] = await resp.json()
            return data


@contextlib.asynccontextmanager
async def service(tmp_path: Path, match_rate: float) -> AsyncIterator[Service]:
    raise_fd_limit()
    async with simulators(1.0, match_rate=match_rate) as sims:
        port = free_port()
        db = tmp_path / "clients.db"
        config = write_config(tmp_path / "event.toml", sims, port, db, mastodon_urls=[])
        proc = spawn_service(
            config, tmp_path / "run.log", BACKCHANNEL_WEB_MAX_CONNECTIONS_PER_IP="0"
        )
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
            yield Service(port, proc.pid, db, sims)
            assert stop_process(proc, signal.SIGTERM) == 0
        finally:
            stop_process(proc)
        log = (tmp_path / "run.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


@dataclass
class Follower:
    """A browser tab: keeps its view and resumes with its last cursor."""

    view: set[str] = field(default_factory=set)
    cursor: str = "0"
    cursors: list[int] = field(default_factory=list)
    resyncs: int = 0

    async def follow(self, session: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> None:
        async with session.ws_connect(url, heartbeat=None) as ws:
            await ws.send_json({"type": "hello", "after": self.cursor})
            while not stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.2)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                self.apply(json.loads(msg.data))

    def apply(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "resync":
            self.resyncs += 1
        elif msg["type"] == "posts":
            self.view.update(p["id"] for p in msg["posts"])
        elif msg["type"] == "retract":
            self.view.difference_update(msg["ids"])
        if "cursor" in msg:
            self.cursors.append(int(msg["cursor"]))
            self.cursor = msg["cursor"]


async def stored_visible(svc: Service) -> set[str]:
    posts: set[str] = set()
    before = None
    async with aiohttp.ClientSession() as session:
        while True:
            params = {"limit": "200", **({"before": before} if before else {})}
            async with session.get(f"{svc.base}/api/posts", params=params) as resp:
                body = await resp.json()
            posts.update(p["id"] for p in body["posts"])
            before = body["next"]
            if before is None:
                return posts


async def test_a_storm_of_1000_clients_resumes_every_one_without_gaps(tmp_path: Path) -> None:
    async with service(tmp_path, match_rate=0.05) as svc:
        load = asyncio.create_task(svc.sims.load.run(100.0, 60.0))  # ~5 event posts a second
        url = f"ws://127.0.0.1:{svc.port}/ws"
        followers = [Follower() for _ in range(STORM)]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            first = asyncio.Event()
            tasks = []
            for batch in range(0, STORM, 100):
                tasks += [
                    asyncio.create_task(f.follow(session, url, first))
                    for f in followers[batch : batch + 100]
                ]
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)
            connected = (await svc.health())["clients"]["connected"]
            assert connected >= STORM, connected
            fds_before, rss_before = open_fds(svc.pid), rss_mb(svc.pid)
            # Everyone drops at once (a Wi-Fi blip in the room) ...
            first.set()
            await asyncio.gather(*tasks)
            await asyncio.sleep(1.5)  # ... posts keep coming meanwhile ...
            probe = LatencyProbe(f"{svc.base}/healthz")
            stop_probe, second = asyncio.Event(), asyncio.Event()
            probing = asyncio.create_task(probe.run(stop_probe))
            await asyncio.sleep(0.3)
            storm_started = time.monotonic()
            # ... and everyone comes back at the same moment with its cursor.
            tasks = [asyncio.create_task(f.follow(session, url, second)) for f in followers]
            while (await svc.health())["clients"]["connected"] < STORM:
                assert time.monotonic() - storm_started < 60, "the storm never reconnected"
                await asyncio.sleep(0.1)
            reconnected_s = time.monotonic() - storm_started
            await asyncio.sleep(2)
            load.cancel()
            await asyncio.sleep(1.5)  # the last posts reach everyone
            stop_probe.set()
            await probing
            expected = await stored_visible(svc)
            deadline = time.monotonic() + 20
            while any(f.view != expected for f in followers) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            fds_after, rss_after = open_fds(svc.pid), rss_mb(svc.pid)
            second.set()
            await asyncio.gather(*tasks)
    latency = probe.summary()
    complete = sum(1 for f in followers if f.view == expected)
    assert complete == STORM, f"{STORM - complete} clients have gaps or extras"
    assert not any(f.resyncs for f in followers), "a resumable client was told to resync"
    assert all(f.cursors == sorted(f.cursors) for f in followers)
    assert latency["failures"] == 0 and latency["max_ms"] < 5_000, latency
    print(
        f"\n{STORM} clients reconnected in {reconnected_s:.1f} s, all resumed without a gap "
        f"({len(expected)} posts); /healthz during the storm: {latency}; server fds "
        f"{fds_before}->{fds_after}, RSS {rss_before:.0f}->{rss_after:.0f} MiB"
    )


async def test_clients_that_never_read_cannot_grow_server_memory(tmp_path: Path) -> None:
    async with service(tmp_path, match_rate=1.0) as svc:
        stuck = [await raw_websocket(svc.port) for _ in range(200)]
        reader = Follower()
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            reading = asyncio.create_task(
                reader.follow(session, f"ws://127.0.0.1:{svc.port}/ws", stop)
            )
            await asyncio.sleep(0.5)
            rss_start = rss_mb(svc.pid)
            # Every post is for the event, ~1 KB of JSON each: 8,000 posts in 20 s.
            load = asyncio.create_task(svc.sims.load.run(400.0, 20.0))
            peak = rss_start
            while not load.done():
                peak = max(peak, rss_mb(svc.pid))
                await asyncio.sleep(0.25)
            await asyncio.sleep(3)
            health = (await svc.health())["clients"]
            expected = await stored_visible(svc)
            deadline = time.monotonic() + 20
            while reader.view != expected and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            rss_end = rss_mb(svc.pid)
            stop.set()
            await reading
        for writer in stuck:
            writer.transport.abort()
    published = len(svc.sims.load.matched)
    assert reader.view == expected, "the reading client missed posts"
    assert len(expected) >= published * 0.9  # (a few are hidden by the moderation lexicon)
    # 200 stuck clients x 8 MB of posts would be 1.6 GB if buffered: bounded instead.
    assert peak - rss_start < 250, (rss_start, peak)
    assert health["dropped"] > 0 or health["connected"] <= 1, health
    print(
        f"\n200 never-reading clients, {published} posts (~8 MB each client would owe): "
        f"server RSS {rss_start:.0f} MiB start, {peak:.0f} peak, {rss_end:.0f} end; "
        f"dropped {health['dropped']}, still connected {health['connected']}"
    )


async def test_garbage_and_oversized_frames_close_only_their_sender(tmp_path: Path) -> None:
    async with service(tmp_path, match_rate=1.0) as svc:
        url = f"ws://127.0.0.1:{svc.port}/ws"
        async with aiohttp.ClientSession() as session:
            # Garbage that is still a valid frame is ignored: the client keeps its stream.
            async with session.ws_connect(url) as ws:
                await ws.send_bytes(b"\x00\xff\xfe binary junk")
                await ws.send_str("not json {")
                await ws.send_str(json.dumps({"type": "hello", "after": {"x": [1]}}))
                await ws.send_str(json.dumps(["hello"]))
                svc.sims.load.publish(20)
                msg = await ws.receive(timeout=10)
                while json.loads(msg.data)["type"] != "posts":
                    msg = await ws.receive(timeout=10)
                assert json.loads(msg.data)["posts"]
            # Oversized: closed with 1009 (message too big).
            async with session.ws_connect(url) as ws:
                await ws.send_str(json.dumps({"type": "hello", "pad": "x" * 100_000}))
                msg = await ws.receive(timeout=10)
                while msg.type == aiohttp.WSMsgType.TEXT:
                    msg = await ws.receive(timeout=10)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == 1009, ws.close_code
        codes = {}
        for name, frame in {
            "reserved opcode": client_frame(b"x", opcode=0x3),
            "bad utf-8": client_frame(b"\xff\xfe\xfd"),
        }.items():
            writer = await raw_websocket(svc.port, first=frame)
            writer.transport.resume_reading()  # type: ignore[attr-defined]
            data = await asyncio.wait_for(writer.reader.read(4096), 10)  # type: ignore[attr-defined]
            close = data.find(b"\x88")
            codes[name] = int.from_bytes(data[close + 2 : close + 4], "big") if close >= 0 else 0
            writer.transport.abort()
        health = await svc.health()
        assert health["status"] == "ok"
        assert codes == {"reserved opcode": 1002, "bad utf-8": 1007}, codes
        print(f"\noversized -> 1009; protocol violations -> {codes}; server healthy")
