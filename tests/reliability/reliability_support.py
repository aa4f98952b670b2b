"""Shared pieces of the reliability suite: the simulators in this process, `backchannel run`
as a real child process, and readers of the SQLite file it writes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from aggregator.demo import load_dataset
from aggregator.sim.appview import AppViewSimulator
from aggregator.sim.bluesky_data import LoadGenerator
from aggregator.sim.clock import SimClock
from aggregator.sim.jetstream import POST, JetstreamSimulator
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view
from aggregator.sim.serve import _server_hosts

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "reliability-admin-token"
TAGS = ("bluelightcamp", "blc26")


def spawn_service(config: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`backchannel run` from this worktree, its output appended to `log`."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "BACKCHANNEL_WEB_ADMIN_TOKEN": ADMIN}
    environ.pop("BACKCHANNEL_WEB_PORT", None)
    environ.update(env)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator.cli", "run", "--config", str(config)],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(sig)
    return proc.wait(timeout=30)


async def wait_http(url: str, timeout: float = 30.0) -> float:
    """Wait until `url` answers 200; the seconds it took."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < timeout:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never came up")


@dataclass
class Sims:
    """The Mastodon simulator (two servers replaying the bundled event on a fast clock) and
    the Jetstream simulator with its AppView, fed by a network-like load generator."""

    data: dict[str, Any]
    epoch: datetime
    mastodon: MastodonSimulator
    mastodon_urls: list[str]
    jetstream: JetstreamSimulator
    jetstream_url: str
    appview: AppViewSimulator
    appview_url: str
    load: LoadGenerator
    seq_of: dict[str, int] = field(default_factory=dict)  # at:// uri -> Jetstream seq
    replay_s: float = 0.0  # real seconds until the Mastodon replay has published everything

    def replay_left(self) -> float:
        """Real seconds until the Mastodon replay has published its last item."""
        clock = self.mastodon.clock
        return max(0.0, self.replay_s - clock.offset() / clock.speed)

    def expected_mastodon(self) -> set[str]:
        return set(self.data["expected"]["visible_uris"])

    def deleted_mastodon(self) -> set[str]:
        return {str(i["uri"]) for i in self.data["items"] if i["op"] == "delete"}

    def expected(self) -> set[str]:
        return self.expected_mastodon() | set(self.load.matched)


@asynccontextmanager
async def simulators(
    speed: float,
    *,
    servers: int = 2,
    full: bool = False,
    match_rate: float = 0.05,
    **mastodon: Any,
) -> AsyncIterator[Sims]:
    """`full`: every Mastodon server has every post (else the first has all, the others
    a federated share)."""
    data = load_dataset()
    epoch = datetime.now(UTC) - timedelta(seconds=60)
    clock = SimClock(epoch, speed=speed)
    hosts = _server_hosts(data, servers)
    settings = [
        ServerSettings(host=h, sees=None if i == 0 or full else federated_view(h), **mastodon)
        for i, h in enumerate(hosts)
    ]
    masto = MastodonSimulator(data["items"], clock, epoch, settings, accounts=data["accounts"])
    urls = await masto.start()
    jet = JetstreamSimulator(retention=1_000_000, max_lag=1_000_000)
    jet_url = await jet.start()
    load = LoadGenerator(jet, tags=TAGS, match_rate=match_rate, dids=500)
    appview = AppViewSimulator(load.profiles())
    appview_url = await appview.start()
    last = max(float(item["at"]) for item in data["items"])
    sims = Sims(data, epoch, masto, urls, jet, jet_url, appview, appview_url, load)
    sims.replay_s = last / speed

    def remember(payload: dict[str, Any]) -> None:
        if payload.get("collection") == POST and payload.get("operation") == "create":
            uri = f"at://{payload['did']}/{POST}/{payload['rkey']}"
            sims.seq_of[uri] = int(payload["seq"])

    jet.observers.append(remember)
    try:
        yield sims
    finally:
        await masto.stop()
        await jet.stop()
        await appview.stop()


def write_config(
    path: Path,
    sims: Sims,
    port: int,
    db: Path,
    *,
    mastodon_urls: list[str] | None = None,
    jetstream_url: str | None = None,
    bluesky: bool = True,
) -> Path:
    urls = sims.mastodon_urls if mastodon_urls is None else mastodon_urls
    start = sims.epoch.replace(tzinfo=None).isoformat(timespec="seconds")
    path.write_text(
        f"""
[event]
name = "{sims.data["event"]["name"]}"
hashtags = {json.dumps(list(TAGS))}
start = {start}

[mastodon]
servers = {json.dumps(urls)}
poll_interval = 0.3
min_poll_interval = 0.2

[bluesky]
mode = "{"jetstream" if bluesky else "off"}"
jetstream_url = "{jetstream_url or sims.jetstream_url}"
appview_url = "{sims.appview_url}"

[web]
port = {port}

[storage]
url = "sqlite:///{db}"
"""
    )
    return path


@dataclass(frozen=True)
class Stored:
    live: set[str]
    deleted: set[str]
    rows: int
    cursors: dict[str, str]


def read_store(db: Path) -> Stored:
    """What the database file holds (opened after the writer died or while it runs)."""
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        rows = conn.execute("SELECT id, deleted FROM posts").fetchall()
        cursors = dict(conn.execute("SELECT source, value FROM cursors").fetchall())
    return Stored(
        {r[0] for r in rows if not r[1]}, {r[0] for r in rows if r[1]}, len(rows), cursors
    )


def integrity(db: Path) -> str:
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def mastodon_head(sims: Sims, server: int) -> int:
    """The newest local id among the event's posts `server` serves now."""
    expected = sims.expected_mastodon()
    now = sims.mastodon.clock.offset()
    ids = [
        st.uid
        for st in sims.mastodon.timeline(server).visible(now)
        if (st.boost_of.uri if st.boost_of else st.uri) in expected
    ]
    return max(ids, default=0)


def mastodon_cursor(stored: Stored, sims: Sims, server: int) -> int:
    host = sims.mastodon_urls[server].split("://", 1)[1]
    value = stored.cursors.get(f"mastodon:{host}", "")
    return int(value) if value.isdigit() else 0


def unsaved_behind_cursors(stored: Stored, sims: Sims) -> list[str]:
    """Published posts older than a saved cursor that are not in the store: a cursor that
    ran ahead of the data (what a crash between 'save cursor' and 'store post' would do)."""
    have = stored.live | stored.deleted
    missing: list[str] = []
    jet = stored.cursors.get("bluesky:jetstream")
    if jet:
        seq = json.loads(jet).get("seq")
        if isinstance(seq, int):
            missing += [u for u, s in sims.seq_of.items() if s < seq and u not in have]
    expected = sims.expected_mastodon()
    now = sims.mastodon.clock.offset()
    for index, url in enumerate(sims.mastodon_urls):
        host = url.split("://", 1)[1]
        value = stored.cursors.get(f"mastodon:{host}")
        if not value or not value.isdigit():
            continue
        for st in sims.mastodon.timeline(index).visible(now):
            uri = st.boost_of.uri if st.boost_of else st.uri
            if st.uid <= int(value) and uri in expected and uri not in have:
                missing.append(uri)
    return missing


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def raw_websocket(port: int, first: bytes | None = None) -> asyncio.StreamWriter:
    """A websocket that says hello (or sends `first`, a raw client frame) and then never
    reads again: the upgrade is read, nothing after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    writer.write(first if first is not None else client_frame(b'{"type":"hello"}'))
    await writer.drain()
    writer.transport.set_write_buffer_limits(0)
    # Keep the reader referenced with the writer so the socket stays open.
    writer.reader = reader  # type: ignore[attr-defined]
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return writer


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (RFC 6455)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class LatencyProbe:
    """GET /healthz every `interval` seconds; the latencies, in seconds."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url, self.interval = url, interval
        self.samples: list[float] = []
        self.failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    async with session.get(self.url) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    self.samples.append(time.monotonic() - started)
                else:
                    self.failures += 1
                await asyncio.sleep(self.interval)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples) or [float("nan")]
        return {
            "n": len(self.samples),
            "p50_ms": ordered[len(ordered) // 2] * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "max_ms": ordered[-1] * 1000,
            "failures": self.failures,
        }
