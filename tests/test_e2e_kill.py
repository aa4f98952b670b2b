"""End to end on loopback: the Mastodon simulator and `backchannel run` as real processes.

A websocket client watches the stream; the service is SIGKILLed mid-replay and restarted
on the same database; at the end every post the simulator still serves is stored exactly
once, the client's view equals the store's, and the sources resumed from their cursors.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from factories import POST_JSON_KEYS, free_port

from aggregator.demo import load_dataset

ROOT = Path(__file__).resolve().parent.parent
SPEED = 1500.0
ADMIN = "e2e-admin-token"

pytestmark = pytest.mark.slow


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BACKCHANNEL_WEB_ADMIN_TOKEN": ADMIN}
    env.pop("BACKCHANNEL_WEB_PORT", None)
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(log, "ab"),
    )


async def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never came up")


async def all_posts(base: str) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = []
    before = None
    async with aiohttp.ClientSession() as session:
        while True:
            params = {"limit": "200", **({"before": before} if before else {})}
            async with session.get(f"{base}/api/posts", params=params) as resp:
                body = await resp.json()
            posts += body["posts"]
            before = body["next"]
            if before is None:
                return posts


class Watcher:
    """A websocket client that keeps its own view and resumes with its last cursor."""

    def __init__(self) -> None:
        self.view: dict[str, dict[str, Any]] = {}
        self.cursor = "0"
        self.cursors: list[int] = []
        self.messages = 0

    async def follow(self, url: str, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    async with session.ws_connect(url) as ws:
                        await ws.send_json({"type": "hello", "after": self.cursor})
                        async for msg in ws:
                            self.apply(json.loads(msg.data))
                            if stop.is_set():
                                break
                except (aiohttp.ClientError, ConnectionError):
                    pass
                await asyncio.sleep(0.1)

    def apply(self, msg: dict[str, Any]) -> None:
        self.messages += 1
        kind = msg["type"]
        assert kind != "resync", "a resumable client must not need a resync"
        if kind == "posts":
            for post in msg["posts"]:
                assert set(post) == POST_JSON_KEYS
                self.view[post["id"]] = post
        elif kind == "update":
            self.view[msg["post"]["id"]] = msg["post"]
        elif kind == "retract":
            for post_id in msg["ids"]:
                self.view.pop(post_id, None)
        if "cursor" in msg:
            self.cursors.append(int(msg["cursor"]))
            self.cursor = msg["cursor"]


async def test_sigkill_mid_replay_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data = load_dataset()
    last = max(float(item["at"]) for item in data["items"])
    epoch = datetime.now(UTC) - timedelta(seconds=60)
    sim = spawn(
        [
            "-m",
            "aggregator.sim.mastodon",
            "--servers",
            "2",
            "--speed",
            str(SPEED),
            "--epoch",
            epoch.isoformat(),
            "--start-offset",
            "0",
        ],
        tmp_path / "sim.log",
    )
    try:
        assert sim.stdout is not None
        urls = [sim.stdout.readline().decode().strip() for _ in range(2)]
        assert all(u.startswith("http://127.0.0.1:") for u in urls), urls
        started = time.monotonic()
        port = free_port()
        config = tmp_path / "event.toml"
        config.write_text(
            f"""
[event]
name = "{data["event"]["name"]}"
hashtags = {json.dumps(data["event"]["hashtags"])}
start = {epoch.replace(tzinfo=None).isoformat(timespec="seconds")}

[mastodon]
servers = {json.dumps(urls)}
poll_interval = 0.3
min_poll_interval = 0.2

[bluesky]
mode = "off"

[web]
port = {port}

[storage]
url = "sqlite:///{tmp_path / "kill.db"}"
"""
        )
        base = f"http://127.0.0.1:{port}"
        run_args = ["-m", "aggregator.cli", "run", "--config", str(config)]
        stop = asyncio.Event()
        watcher = Watcher()
        kills = 0
        service = spawn(run_args, tmp_path / "run1.log")
        await wait_http(f"{base}/healthz")
        follow = asyncio.create_task(watcher.follow(f"{base.replace('http', 'ws')}/ws", stop))
        # Kill twice while the replay is running, restarting each time on the same file.
        for at in (0.25, 0.55):
            await asyncio.sleep(max(0.0, at * last / SPEED - (time.monotonic() - started)))
            assert watcher.view, "posts should be flowing before the kill"
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=10)
            kills += 1
            service = spawn(run_args, tmp_path / f"run{kills + 1}.log")
            await wait_http(f"{base}/healthz")
        # Let the replay finish and the pollers catch up.
        await asyncio.sleep(max(0.0, last / SPEED + 3 - (time.monotonic() - started)))
        await asyncio.sleep(2)
        shown = await all_posts(base)
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as admin,
            admin.get(f"{base}/api/admin/hidden") as resp,
        ):
            hidden = (await resp.json())["posts"]
        stop.set()
        await asyncio.wait_for(follow, 10)
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=20) == 0, "SIGTERM must shut down cleanly"
    finally:
        for proc in (sim, locals().get("service")):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    # Stored = shown + hidden by the default automatic rules (bots, opted-out accounts).
    ids = [p["id"] for p in shown] + [p["id"] for p in hidden]
    assert len(ids) == len(set(ids)), "a post was stored twice"
    rules = {p["moderation"]["rule"] for p in hidden}
    assert rules <= {"bot", "noindex"}, rules
    visible = set(data["expected"]["visible_uris"])
    deleted = {item["uri"] for item in data["items"] if item["op"] == "delete"}
    missing = visible - set(ids)
    assert not missing, f"{len(missing)} posts lost, e.g. {sorted(missing)[:3]}"
    unknown = set(ids) - visible - deleted
    assert not unknown, f"posts that were never published: {sorted(unknown)[:3]}"
    # The client's view, after two server deaths, equals the store's.
    assert set(watcher.view) == {p["id"] for p in shown}
    assert watcher.cursors == sorted(watcher.cursors), "messages arrived out of order"
    # The restarted services resumed from their cursors instead of backfilling again.
    for n in range(2, kills + 2):
        text = (tmp_path / f"run{n}.log").read_text()
        assert "backfilled" not in text, text[-2000:]
        assert "Traceback" not in text, text[-2000:]
    retracted = deleted - set(ids)
    print(
        f"\nstored {len(ids)} posts ({len(hidden)} hidden by rules), 0 lost, 0 doubled; "
        f"{len(retracted)}/{len(deleted)} "
        f"deletes seen by polling; client got {watcher.messages} messages"
    )
