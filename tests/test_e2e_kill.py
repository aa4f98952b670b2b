"""End to end on loopback: the Mastodon simulator and `backchannel run` as real processes.

A websocket client watches the stream; the service is SIGKILLed mid-replay and restarted
on the same database; at the end every post the simulator still serves is stored exactly
once, the client's view equals the store's, and the sources resumed from their cursors.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from e2e_support import ADMIN, Watcher, all_posts, spawn, wait_http
from factories import free_port

from aggregator.demo import load_dataset

SPEED = 1500.0

pytestmark = pytest.mark.slow


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
