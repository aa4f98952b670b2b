"""Load generation for the fan-out: a synthetic post source, a reference server and a
cheap client swarm. Used by `bench/fanout.py` and the fan-out load test.

    python -m aggregator.sim.loadgen server --port P --rate 10 --count 100 [--reference]
    python -m aggregator.sim.loadgen swarm --url ws://127.0.0.1:P/ws --clients 1000

The swarm speaks just enough RFC 6455 over raw asyncio protocols to hold thousands of
connections in one process: it never decodes JSON, it only pulls each post's number
and send time out of the frame with a regex. "Stalled" clients complete the handshake
and then stop reading, like a browser tab that froze.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aggregator.model import Author, Post, format_timestamp
from aggregator.pipeline import Inbox, RawItem

MARK = re.compile(rb"n=(\d+) sent=(\d+\.\d+)")
FILLER = "lorem ipsum dolor sit amet " * 40


def synthetic_post(n: int, size: int) -> Post:
    filler = FILLER * (size // len(FILLER) + 1)
    text = f"n={n} sent={time.time():.6f} #loadgen {filler}"[:size]
    return Post(
        id=f"https://load.example/users/gen/statuses/{n}",
        platform="mastodon",
        url=f"https://load.example/@gen/{n}",
        author=Author(handle="@gen@load.example", name="Load Generator"),
        text=text,
        html="<p>synthetic</p>",
        created_at=format_timestamp(datetime.now(UTC)),
        tags=("loadgen",),
    )


async def open_loop(rate: float, count: int, emit: Callable[[int], Awaitable[None]]) -> None:
    """Emit `count` items on a fixed schedule, never waiting for the consumer to catch up."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(count):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await emit(n)


async def start_gate(delay: float) -> None:
    """Wait `delay` seconds, or with a negative delay until SIGUSR1 (the swarm is ready)."""
    if delay >= 0:
        await asyncio.sleep(delay)
        return
    go = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go.set)
    await go.wait()


@dataclass
class SyntheticSource:
    inbox: Inbox
    rate: float
    count: int
    size: int = 1000
    delay: float = 0.0

    async def run(self) -> None:
        await start_gate(self.delay)

        async def emit(n: int) -> None:
            await self.inbox.put(RawItem("loadgen", "post", synthetic_post(n, self.size)))

        await open_loop(self.rate, self.count, emit)


# servers ----------------------------------------------------------------------------


async def serve_ours(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from aggregator.config import load_config
    from aggregator.runtime import Runtime
    from web.server import serve_until

    tmp = tempfile.TemporaryDirectory(prefix="loadgen-")
    config = load_config(env={}).with_overrides(
        event={"name": "Load", "hashtags": ["loadgen"]},
        bluesky={"mode": "off"},
        storage={"url": args.storage_url or f"sqlite:///{tmp.name}/load.db"},
        bus={"url": args.bus_url},
        web={"max_connections_per_ip": 0},
    )
    runtime = Runtime.from_config(config)
    source = SyntheticSource(runtime.inbox, args.rate, args.count, args.size, args.delay)
    runtime.extra_sources.append(lambda rt: [("loadgen", source.run)])
    try:
        if args.ingest_only:
            # The ingest node of a multi-node run: sources, pipeline, store, bus; no web.
            await runtime.start()
            print("serving (ingest only)", flush=True)
            await stop.wait()
            await runtime.stop()
        else:
            await serve_until(config, "127.0.0.1", args.port, stop, runtime=runtime)
    finally:
        tmp.cleanup()


async def serve_reference(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """The simplest correct server: websockets.broadcast() each post as it is made."""
    import websockets
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    clients: set[ServerConnection] = set()

    async def handler(conn: ServerConnection) -> None:
        clients.add(conn)
        try:
            async for _ in conn:
                pass
        except websockets.ConnectionClosed:
            pass
        finally:
            clients.discard(conn)

    async def emit(n: int) -> None:
        post = synthetic_post(n, args.size)
        broadcast(
            clients, json.dumps({"type": "posts", "posts": [post.to_json()], "cursor": str(n)})
        )

    async with serve(handler, "127.0.0.1", args.port, ping_interval=30) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"backchannel: serving http://127.0.0.1:{port}/ (reference)", flush=True)
        await start_gate(args.delay)
        producer = asyncio.create_task(open_loop(args.rate, args.count, emit))
        await stop.wait()
        producer.cancel()


# the swarm --------------------------------------------------------------------------


@dataclass
class ClientStats:
    numbers: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    connected: bool = False
    closed: bool = False


class SwarmProtocol(asyncio.Protocol):
    def __init__(self, host: str, path: str, stats: ClientStats, stalled: bool) -> None:
        self.host, self.path, self.stats, self.stalled = host, path, stats, stalled
        self.buffer = bytearray()
        self.handshaken = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshaken:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.stats.closed = True
                assert self.transport is not None
                self.transport.close()
                return
            del self.buffer[: end + 4]
            self.handshaken = True
            self.stats.connected = True
            self.send(0x1, b'{"type":"hello"}')
            if self.stalled:
                assert self.transport is not None
                self.transport.pause_reading()
                return
        self._frames()

    def _frames(self) -> None:
        now = time.time()
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            head = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, head = struct.unpack_from("!H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, head = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < head + length:
                return
            payload = bytes(buf[head : head + length])
            del buf[: head + length]
            if opcode == 0x1:
                for number, sent in MARK.findall(payload):
                    self.stats.numbers.append(int(number))
                    self.stats.latencies.append(now - float(sent))
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.stats.closed = True

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header = bytes([0x80 | opcode, 0x80 | len(payload)]) if len(payload) < 126 else b""
        assert header, "control and hello frames are short"
        assert self.transport is not None
        self.transport.write(header + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.closed = True


async def run_swarm(
    url: str, clients: int, stalled: int, duration: float, expect: int
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    loop = asyncio.get_running_loop()
    stats = [ClientStats() for _ in range(clients)]
    transports: list[asyncio.BaseTransport] = []
    for i, st in enumerate(stats):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if i < stalled:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        protocol = SwarmProtocol(f"{host}:{port}", path, st, i < stalled)
        transport, _ = await loop.create_connection(functools.partial(_same, protocol), sock=sock)
        transports.append(transport)
        if i % 100 == 99:
            await asyncio.sleep(0.01)  # do not look like a SYN flood to the listen backlog
    while not all(s.connected or s.closed for s in stats):
        await asyncio.sleep(0.05)
    print("ready", file=sys.stderr, flush=True)
    deadline = loop.time() + duration
    readers = stats[stalled:]
    while loop.time() < deadline:
        if expect and all(len(s.numbers) >= expect for s in readers):
            break
        await asyncio.sleep(0.1)
    for t in transports:
        t.close()
    latencies = sorted(x for s in readers for x in s.latencies)
    complete = sum(1 for s in readers if sorted(set(s.numbers)) == list(range(expect)))
    in_order = sum(1 for s in readers if s.numbers == sorted(s.numbers))
    return {
        "clients": clients,
        "stalled": stalled,
        "connected": sum(1 for s in stats if s.connected),
        "readers_complete": complete,
        "readers_in_order": in_order,
        "readers": len(readers),
        "deliveries": len(latencies),
        "p50_ms": _pct(latencies, 0.50) * 1000,
        "p99_ms": _pct(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "stalled_closed": sum(1 for s in stats[:stalled] if s.closed),
    }


def _same(protocol: SwarmProtocol) -> SwarmProtocol:
    return protocol


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclass
class ScenarioResult:
    swarm: dict[str, Any]  # what run_swarm reported
    health: dict[str, Any]  # the server's /healthz after the run ({} for the reference)
    rss_empty_kib: int  # server RSS before any client connected
    rss_idle_kib: int  # with every client connected, before the first post
    rss_after_kib: int


def run_scenario(
    *,
    clients: int,
    stalled: int,
    rate: float,
    count: int,
    size: int = 1000,
    reference: bool = False,
    pin_cores: bool = False,
    cwd: str | None = None,
) -> ScenarioResult:
    """One fan-out run: server and swarm as separate processes on loopback.

    Posting starts only once every client is connected (SIGUSR1), so every reader can be
    expected to get every post. With `pin_cores`, server and swarm get a core each.
    """
    import subprocess
    import urllib.request

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": cwd or os.getcwd()}
    server_pin = ["taskset", "-c", "0"] if pin_cores else []
    swarm_pin = ["taskset", "-c", "1"] if pin_cores else []
    cmd = [
        *server_pin,
        sys.executable,
        "-m",
        "aggregator.sim.loadgen",
        "server",
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--count",
        str(count),
        "--size",
        str(size),
        "--delay",
        "-1",
    ]
    if reference:
        cmd.append("--reference")
    server = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        if b"serving" not in server.stdout.readline():
            raise RuntimeError("the load server did not start")
        rss_empty = rss_kib(server.pid)
        swarm = subprocess.Popen(
            [
                *swarm_pin,
                sys.executable,
                "-m",
                "aggregator.sim.loadgen",
                "swarm",
                "--url",
                f"ws://127.0.0.1:{port}/ws",
                "--clients",
                str(clients),
                "--stalled",
                str(stalled),
                "--expect",
                str(count),
                "--duration",
                str(count / rate + 20),
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert swarm.stderr is not None
        if swarm.stderr.readline().strip() != b"ready":
            raise RuntimeError("the swarm could not connect")
        time.sleep(1.0)  # connected and idle: the per-connection memory
        rss_idle = rss_kib(server.pid)
        server.send_signal(signal.SIGUSR1)  # start posting
        out, _ = swarm.communicate(timeout=count / rate + 120)
        rss_after = rss_kib(server.pid)
        health: dict[str, Any] = {}
        if not reference:
            url = f"http://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=10) as resp:
                health = json.load(resp)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return ScenarioResult(json.loads(out), health, rss_empty, rss_idle, rss_after)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aggregator.sim.loadgen")
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server")
    server.add_argument("--port", type=int, default=0)
    server.add_argument("--rate", type=float, default=10.0)
    server.add_argument("--count", type=int, default=100)
    server.add_argument("--size", type=int, default=1000)
    server.add_argument(
        "--delay", type=float, default=2.0, help="seconds before posting; -1: wait for SIGUSR1"
    )
    server.add_argument("--reference", action="store_true")
    server.add_argument("--storage-url", default="", help="default: a temporary SQLite file")
    server.add_argument("--bus-url", default="memory://")
    server.add_argument("--ingest-only", action="store_true", help="no web server")
    swarm = sub.add_parser("swarm")
    swarm.add_argument("--url", required=True)
    swarm.add_argument("--clients", type=int, default=100)
    swarm.add_argument("--stalled", type=int, default=0)
    swarm.add_argument("--duration", type=float, default=30.0)
    swarm.add_argument("--expect", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.command == "swarm":
        result = asyncio.run(
            run_swarm(args.url, args.clients, args.stalled, args.duration, args.expect)
        )
        print(json.dumps(result), flush=True)
        return 0

    async def body() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.reference:
            await serve_reference(args, stop)
        else:
            await serve_ours(args, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(body())
    return 0


if __name__ == "__main__":
    sys.exit(main())
