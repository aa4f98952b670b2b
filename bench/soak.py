"""Bounded soak: `backchannel run` under steady load with many connected clients.

    python bench/soak.py [--minutes 10] [--clients 1000] [--posts-per-second 50] [--json OUT]
    python bench/soak.py --seconds 40      # the short mode the CI test uses

"10x a busy conference": a busy event's hashtag peaks around 5 posts a second (keynote
minutes at a few thousand attendees); the soak holds 50 event posts a second for its
whole length. They arrive through the simulators over the real wire: the Jetstream
simulator streams 1,000 events a second of network-like traffic of which 5 % carry the
event's hashtag (50 posts/s), and the Mastodon simulator replays the bundled event on two
servers stretched over the soak. `--clients` websocket clients stay connected and read
everything. Every `--sample` seconds the server's RSS and open files (/proc/PID) and the
stored post count are read; /healthz is fetched twice a second and its latency stands for
event-loop lag. The report compares the first and the last fifth of the run and fits a
line through the RSS samples (MiB per minute); it ends when the time is up, whatever
happens, and checks that every post published was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from aggregator.demo import load_dataset  # noqa: E402
from aggregator.sim.appview import AppViewSimulator  # noqa: E402
from aggregator.sim.bluesky_data import LoadGenerator  # noqa: E402
from aggregator.sim.clock import SimClock  # noqa: E402
from aggregator.sim.jetstream import JetstreamSimulator  # noqa: E402
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view  # noqa: E402

BUSY_CONFERENCE_POSTS_PER_S = 5.0
MATCH_RATE = 0.05
TAGS = ("bluelightcamp", "blc26")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def stored_posts(db: Path) -> int:
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM posts").fetchone()[0])


def stored_ids(db: Path) -> set[str]:
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM posts")}


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else 60 * sum((x - mx) * (y - my) for x, y in points) / var


async def client(url: str, stop: asyncio.Event, counts: list[int], index: int) -> None:
    """A wall tab: connects, says hello, reads everything (reconnecting if dropped)."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.ws_connect(url, heartbeat=None) as ws:
                    await ws.send_str('{"type":"hello"}')
                    while not stop.is_set():
                        try:
                            msg = await ws.receive(timeout=0.5)
                        except TimeoutError:
                            continue
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        counts[index] += 1
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.5)


async def probe(url: str, stop: asyncio.Event, samples: list[tuple[float, float]]) -> None:
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                async with session.get(url) as resp:
                    await resp.read()
                samples.append((t0 - started, time.monotonic() - t0))
            except (aiohttp.ClientError, TimeoutError):
                samples.append((t0 - started, float("inf")))
            await asyncio.sleep(0.5)


def window(points: list[tuple[float, float]], lo: float, hi: float) -> list[float]:
    return [v for t, v in points if lo <= t <= hi]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def start_server(config: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BACKCHANNEL_WEB_MAX_CONNECTIONS_PER_IP": "0"}
    log = open(workdir / "run.log", "ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "run", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    return server, log


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4 * args.clients + 512), hard), hard))
    seconds = args.seconds or args.minutes * 60
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    data = load_dataset()
    epoch = datetime.now(UTC) - timedelta(seconds=60)
    last = max(float(item["at"]) for item in data["items"])
    clock = SimClock(epoch, speed=last / seconds)
    hosts = ["social.bluelight.example", "sim1.example"]
    settings = [
        ServerSettings(host=h, sees=None if i == 0 else federated_view(h))
        for i, h in enumerate(hosts)
    ]
    mastodon = MastodonSimulator(data["items"], clock, epoch, settings, accounts=data["accounts"])
    mastodon_urls = await mastodon.start()
    jetstream = JetstreamSimulator(retention=2_000_000, max_lag=2_000_000)
    jetstream_url = await jetstream.start()
    load = LoadGenerator(jetstream, tags=TAGS, match_rate=MATCH_RATE, dids=2000)
    appview = AppViewSimulator(load.profiles())
    appview_url = await appview.start()
    port = args.port
    db = workdir / "soak.db"
    config = workdir / "event.toml"
    config.write_text(
        f"""
[event]
name = "Soak"
hashtags = {json.dumps(list(TAGS))}
start = {epoch.replace(tzinfo=None).isoformat(timespec="seconds")}

[mastodon]
servers = {json.dumps(mastodon_urls)}
poll_interval = 1.0
min_poll_interval = 1.0

[bluesky]
jetstream_url = "{jetstream_url}"
appview_url = "{appview_url}"

[web]
port = {port}

[storage]
url = "sqlite:///{db}"
"""
    )
    server, log = start_server(config, workdir)
    base = f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    counts = [0] * args.clients
    tasks: list[asyncio.Task[None]] = []
    latency: list[tuple[float, float]] = []
    rss: list[tuple[float, float]] = []
    fds: list[tuple[float, float]] = []
    stored: list[tuple[float, float]] = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        for i in range(args.clients):
            tasks.append(asyncio.create_task(client(f"ws://127.0.0.1:{port}/ws", stop, counts, i)))
            if i % 100 == 99:
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        rate = args.posts_per_second / MATCH_RATE
        generator = asyncio.create_task(load.run(rate, seconds))
        tasks.append(asyncio.create_task(probe(f"{base}/healthz", stop, latency)))
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            rss.append((elapsed, proc_rss_mb(server.pid)))
            fds.append((elapsed, proc_fds(server.pid)))
            stored.append((elapsed, stored_posts(db)))
            if args.verbose:
                print(
                    f"{elapsed:6.0f} s  rss {rss[-1][1]:6.1f} MiB  fds {fds[-1][1]:5.0f}  "
                    f"stored {stored[-1][1]:7.0f}",
                    flush=True,
                )
            await asyncio.sleep(args.sample)
        await generator
        await asyncio.sleep(3)  # the last posts reach the store
        ids = stored_ids(db)
        lost = len(set(load.matched) - ids)
        mastodon_lost = (
            len(set(data["expected"]["visible_uris"]) - ids) if clock.offset() >= last else None
        )
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
            fanout = (await resp.json()).get("clients", {})
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=60)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
        await mastodon.stop()
        await jetstream.stop()
        await appview.stop()
    fifth = seconds / 5
    head, tail = (0.0, fifth), (seconds - fifth, seconds)
    lat_ms = [(t, v * 1000) for t, v in latency]
    report = {
        "seconds": seconds,
        "clients": args.clients,
        "posts_per_second_goal": args.posts_per_second,
        "busy_conference_posts_per_second": BUSY_CONFERENCE_POSTS_PER_S,
        "jetstream_events": load.published,
        "event_posts_published": len(load.matched),
        "posts_stored": len(ids),
        "posts_lost": lost,
        "mastodon_lost": mastodon_lost,
        "messages_received": sum(counts),
        "clients_that_received": sum(1 for c in counts if c),
        "clients_connected_at_end": fanout.get("connected"),
        "clients_dropped_by_server": fanout.get("dropped"),
        "rss_mb": {
            "start": statistics.fmean(window(rss, *head)),
            "end": statistics.fmean(window(rss, *tail)),
            "max": max(v for _, v in rss),
            "slope_per_min": slope_per_minute(rss),
        },
        "open_files": {
            "start": max(window(fds, *head)),
            "end": max(window(fds, *tail)),
            "max": max(v for _, v in fds),
        },
        "healthz_ms": {
            "start_p50": percentile(window(lat_ms, *head), 0.5),
            "start_p99": percentile(window(lat_ms, *head), 0.99),
            "end_p50": percentile(window(lat_ms, *tail), 0.5),
            "end_p99": percentile(window(lat_ms, *tail), 0.99),
            "max": max(v for _, v in lat_ms),
            "failures": sum(1 for _, v in lat_ms if v == float("inf")),
        },
        "ingest_posts_per_second": slope_per_minute(stored) / 60,
        "exit_code": exit_code,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=0.0, help="overrides --minutes (short mode)")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--posts-per-second", type=float, default=10 * BUSY_CONFERENCE_POSTS_PER_S)
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if not args.port:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    report = asyncio.run(soak(args))
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
