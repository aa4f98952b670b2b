"""Several nodes for real: one `backchannel ingest`, two `backchannel serve`, a real
PostgreSQL and a real redis-server, the Mastodon simulator, all on loopback.

Websocket clients on both serve nodes receive the same posts in the same order; hiding a
post on one node retracts it on both; killing one serve node does not disturb the other,
and its client resumes on the surviving node with its cursor, without a gap or a double.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from e2e_support import ADMIN, Watcher, all_posts, spawn, wait_http
from factories import free_port
from servers import RedisServer, create_database, shared_postgres

from aggregator.demo import load_dataset

SPEED = 1500.0

pytestmark = pytest.mark.slow


def write_config(
    path: Path, urls: list[str], epoch: datetime, dsn: str, redis: str, port: int
) -> Path:
    data = load_dataset()
    path.write_text(
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
url = "{dsn}"

[bus]
url = "{redis}"
"""
    )
    return path


def cli(command: str, config: Path) -> list[str]:
    return ["-m", "aggregator.cli", command, "--config", str(config)]


async def admin_action(base: str, body: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{base}/api/admin/actions", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def test_ingest_and_two_serve_nodes_share_one_stream(tmp_path: Path) -> None:
    data = load_dataset()
    last = max(float(item["at"]) for item in data["items"])
    dsn = await create_database(shared_postgres())
    redis = RedisServer()
    redis.start()
    epoch = datetime.now(UTC) - timedelta(seconds=60)
    procs: list[subprocess.Popen[bytes]] = []
    stop = asyncio.Event()
    try:
        sim = spawn(
            [
                *("-m", "aggregator.sim.mastodon", "--servers", "2", "--speed", str(SPEED)),
                *("--epoch", epoch.isoformat(), "--start-offset", "0"),
            ],
            tmp_path / "sim.log",
        )
        procs.append(sim)
        assert sim.stdout is not None
        urls = [sim.stdout.readline().decode().strip() for _ in range(2)]
        started = time.monotonic()
        ports = [free_port(), free_port()]
        configs = [
            write_config(tmp_path / f"node{i}.toml", urls, epoch, dsn, redis.url, port)
            for i, port in enumerate(ports)
        ]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        wss = [base.replace("http", "ws") + "/ws" for base in bases]
        serve_a = spawn(
            ["-m", "aggregator.cli", "serve", "--config", str(configs[0])], tmp_path / "a.log"
        )
        serve_b = spawn(
            ["-m", "aggregator.cli", "serve", "--config", str(configs[1])], tmp_path / "b.log"
        )
        procs += [serve_a, serve_b]
        await wait_http(f"{bases[0]}/healthz")
        await wait_http(f"{bases[1]}/healthz")
        on_a, on_b = Watcher(), Watcher()
        follow_a = asyncio.create_task(on_a.follow(wss[0], stop))
        follow_b = asyncio.create_task(on_b.follow([wss[1], wss[0]], stop))
        await asyncio.sleep(0.5)
        ingest = spawn(
            ["-m", "aggregator.cli", "ingest", "--config", str(configs[0])], tmp_path / "ingest.log"
        )
        procs.append(ingest)

        # A third of the way in: hide a post on node A; both clients must lose it.
        await asyncio.sleep(max(0.0, 0.3 * last / SPEED - (time.monotonic() - started)))
        assert on_a.view and on_b.view, "posts should be flowing on both nodes"
        victim = sorted(set(on_a.view) & set(on_b.view))[0]
        await admin_action(bases[0], {"action": "hide", "post": victim})
        deadline = time.monotonic() + 5
        while (victim in on_a.view or victim in on_b.view) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert victim not in on_a.view and victim not in on_b.view
        # Both nodes saw the same messages so far, in the same order.
        # (A message's cursor is its batch's last seq; batches follow each node's tick.)
        seq_a = [(kind, post) for _, kind, post in on_a.order]
        seq_b = [(kind, post) for _, kind, post in on_b.order]
        common = min(len(seq_a), len(seq_b))
        assert common > 10
        assert seq_a[:common] == seq_b[:common]

        # Halfway: node B dies; its client moves to node A and resumes from its cursor.
        await asyncio.sleep(max(0.0, 0.5 * last / SPEED - (time.monotonic() - started)))
        serve_b.send_signal(signal.SIGKILL)
        serve_b.wait(timeout=10)
        received_on_a = on_a.messages
        await asyncio.sleep(max(0.0, last / SPEED + 4 - (time.monotonic() - started)))
        assert on_a.messages > received_on_a, "node A kept streaming while B died"
        assert on_b.connected_to[-1] == wss[0], "the client should have moved to node A"

        shown = await all_posts(bases[0])
        # Stopping node A (SIGTERM) tells its clients "going away" so they reconnect.
        serve_a.send_signal(signal.SIGTERM)
        assert serve_a.wait(timeout=30) == 0, "SIGTERM must shut down cleanly"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            1001 in on_a.close_codes and 1001 in on_b.close_codes
        ):
            await asyncio.sleep(0.05)
        assert 1001 in on_a.close_codes and 1001 in on_b.close_codes
        stop.set()
        await asyncio.wait_for(asyncio.gather(follow_a, follow_b), 10)
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(timeout=30) == 0, "SIGTERM must shut down cleanly"
    finally:
        stop.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        redis.destroy()

    expected = {p["id"] for p in shown}
    assert victim not in expected
    assert set(on_a.view) == expected
    assert set(on_b.view) == expected, "the moved client has a gap or a stale post"
    for watcher in (on_a, on_b):
        cursors = [c for c, _, _ in watcher.order]
        assert cursors == sorted(cursors), "messages arrived out of order"
    for log in ("a.log", "ingest.log"):
        text = (tmp_path / log).read_text()
        assert "Traceback" not in text, text[-3000:]
    print(
        f"\n{len(expected)} posts on both nodes; client B moved after {len(on_b.connected_to)} "
        f"connections; {on_a.messages} messages on A, {on_b.messages} on B"
    )
