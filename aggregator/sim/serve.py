"""`python -m aggregator.sim.mastodon`: serve simulated Mastodon servers until killed.

    python -m aggregator.sim.mastodon --port 0 --speed 60 [--servers 1]

prints one base URL per line (flushed), then serves until SIGINT/SIGTERM and exits 0.
Server 0 is the event's home server and sees everything; servers 1.. see their own
posts plus a stable half of everyone else's (`federated_view`).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view


def _server_hosts(dataset: Mapping[str, Any], n: int) -> list[str]:
    hosts: list[str] = []
    for account in dataset.get("accounts", ()):
        host = str(account["acct"]).split("@", 1)[-1]
        if host not in hosts:
            hosts.append(host)
    hosts += [f"sim{i}.example" for i in range(len(hosts), n)]
    return hosts[:n]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m aggregator.sim.mastodon",
        description="Serve simulated Mastodon servers replaying the bundled unconference.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="first port (0 = ephemeral)")
    p.add_argument("--servers", type=int, default=1)
    p.add_argument("--speed", type=float, default=1.0, help="virtual seconds per real second")
    p.add_argument("--start-offset", type=float, default=0.0, help="virtual start, s after epoch")
    p.add_argument("--epoch", default="event", help="'event' (dataset start), 'now', or ISO")
    p.add_argument("--require-token", action="store_true")
    p.add_argument("--token", action="append", default=[], help="valid bearer token(s)")
    p.add_argument("--rate-limit", type=int, default=300)
    p.add_argument("--rate-period", type=float, default=300.0)
    p.add_argument("--page-cache", type=float, default=0.0, help="anonymous page cache, s")
    p.add_argument("--remote-delay", type=float, default=0.0, help="federation delay, s")
    p.add_argument("--no-boosts", action="store_true", help="keep boosts out of tag timelines")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    from aggregator.demo import event_epoch, load_dataset

    data = load_dataset()
    if args.epoch == "event":
        epoch = event_epoch(data)
    elif args.epoch == "now":
        epoch = datetime.now(UTC) - timedelta(seconds=args.start_offset)
    else:
        epoch = datetime.fromisoformat(args.epoch.replace("Z", "+00:00"))
        if epoch.tzinfo is None:
            epoch = epoch.replace(tzinfo=UTC)
    clock = SimClock(epoch, speed=args.speed, start_offset=args.start_offset)
    tokens = frozenset(args.token or ["sim-token"])
    hosts = _server_hosts(data, max(args.servers, 1))
    servers = [
        ServerSettings(
            host=h,
            sees=None if i == 0 else federated_view(h),
            rate_limit=args.rate_limit,
            rate_period_s=args.rate_period,
            require_token=args.require_token,
            tokens=tokens,
            page_cache_s=args.page_cache,
            include_boosts=not args.no_boosts,
            remote_delay_s=args.remote_delay,
        )
        for i, h in enumerate(hosts)
    ]
    sim = MastodonSimulator(data["items"], clock, epoch, servers, accounts=data["accounts"])
    ports = [args.port + i for i in range(len(servers))] if args.port else []
    for url in await sim.start(args.host, ports):
        print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_serve(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
