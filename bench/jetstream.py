"""Jetstream benchmark: frames from the local simulator through the real source into a
real SQLite store.

    python bench/jetstream.py [--rate 20000] [--seconds 20] [--backlog 300000] [--runs 5]

The simulator (`python -m aggregator.sim.jetstream`, with its AppView) runs in its own
process pinned to core 1; this process (source, profile hydration, pipeline, SQLite
store, its writer thread) is pinned to core 0, like `taskset -c 0`. Traffic is the
simulator's network-like mix: 5,000 DIDs, ~5 % deletes, identity events, 10 % non-ASCII
texts, near-miss tags, and `--match-rate` of posts carrying the event's hashtags.

1. sustained: the simulator publishes `--rate` events/s live for `--seconds`; we report
   the rate we kept up with, the CPU it took (`cpu_pct`: every thread of this process,
   on its one core), whether the simulator had to cut us off (`ConsumerTooSlow`, when we
   lag more than `--max-lag` events), and the latency of each matching post from
   the simulator stamping the event to its change being published after the store's
   commit (p50/p99).
2. catch-up: `--backlog` events are already in the simulator's log and the source
   replays them from a time cursor as fast as it can: the most events/s one core takes.

Each figure is the median of `--runs` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.bus import MemoryBus
from aggregator.match import HashtagMatcher
from aggregator.pipeline import Pipeline, Stop, new_inbox
from aggregator.sources.bluesky_profiles import KnownPosts, ProfileHydrator
from aggregator.sources.jetstream import JetstreamSource
from aggregator.store.sqlite import SQLiteStore

TAGS = ["bluelightcamp", "blc26"]
GEN = re.compile(r"gen:(\d+)")
ROOT = Path(__file__).resolve().parent.parent


def start_simulator(
    args: argparse.Namespace, *, live: bool
) -> tuple[subprocess.Popen[str], str, str]:
    cmd = [
        sys.executable,
        "-m",
        "aggregator.sim.jetstream",
        "--match-rate",
        str(args.match_rate),
        "--max-lag",
        str(args.max_lag),
        "--retention",
        str(max(args.backlog, args.max_lag) + 10_000),
    ]
    if live:
        cmd += ["--rate", str(args.rate), "--seconds", str(args.seconds), "--wait-for-client"]
    else:
        cmd += ["--backlog", str(args.backlog)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: os.sched_setaffinity(0, {args.sim_core}),
    )
    assert proc.stdout is not None
    jetstream, appview = proc.stdout.readline().strip(), proc.stdout.readline().strip()
    return proc, jetstream, appview


async def one_run(args: argparse.Namespace, *, live: bool) -> dict[str, float]:
    proc, jetstream_url, appview_url = start_simulator(args, live=live)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        await store.open()
        bus = MemoryBus()
        inbox = new_inbox()
        pipeline = Pipeline(inbox, store, bus)
        sub = bus.subscribe()

        async def measure() -> None:
            async for event in sub:
                now_us = time.time() * 1e6
                for change in event.changes:
                    if change.kind == "new" and change.post is not None:
                        found = GEN.search(change.post.text)
                        if found:
                            latencies.append((now_us - int(found.group(1))) / 1e6)

        async with aiohttp.ClientSession() as http:
            known = KnownPosts()
            hydrator = ProfileHydrator(appview_url, http, inbox, store=store, known=known)
            since = None if live else datetime.now(UTC) - timedelta(hours=1)
            source = JetstreamSource(
                jetstream_url,
                HashtagMatcher(TAGS),
                inbox,
                store,
                hydrator=hydrator,
                known=known,
                since=since,
            )
            tasks = [
                asyncio.create_task(pipeline.run()),
                asyncio.create_task(measure()),
                asyncio.create_task(source.run()),
                asyncio.create_task(hydrator.run()),
            ]
            target = int(args.rate * args.seconds) if live else args.backlog
            started: float | None = None
            cpu_started = 0.0
            deadline = time.monotonic() + (args.seconds * 3 + 30 if live else 600)
            while source.events < target and time.monotonic() < deadline:
                if started is None and source.events > 0:
                    started, cpu_started = time.perf_counter(), time.process_time()
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - (started or time.perf_counter())
            cpu = time.process_time() - cpu_started  # every thread: source, pipeline, store
            events = source.events
            await asyncio.sleep(1.0)  # the last matches reach the store
            async with http.get(jetstream_url.replace("ws://", "http://") + "/_sim/stats") as r:
                stats = await r.json()
            for task in tasks[2:]:
                task.cancel()
            await asyncio.gather(*tasks[2:], return_exceptions=True)
            await inbox.put(Stop())
            await tasks[0]
            tasks[1].cancel()
            stored = await store.count()
        await store.close()
    proc.terminate()
    proc.wait(timeout=10)
    latencies.sort()
    timing = {"p50_s": _pct(latencies, 0.50), "p99_s": _pct(latencies, 0.99)} if live else {}
    return {
        "events": events,
        "events_per_s": events / elapsed if elapsed else 0.0,
        "matched": source.matched,
        "stored": stored,
        "decoded_pct": 100.0 * source.decoded / max(1, events),
        "cpu_pct": 100.0 * cpu / elapsed if elapsed else 0.0,
        "too_slow": float(stats["errors_sent"].get("ConsumerTooSlow", 0)),
        "reconnects": float(source.reconnects),
        **timing,  # a backlog's events were stamped long before: no latency to speak of
    }


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def summarise(name: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{name}: median of {len(runs)} runs", flush=True)
    for key in runs[0]:
        values = [r[key] for r in runs]
        shown = [round(v, 3) for v in values]
        print(f"  {key:13} median {statistics.median(values):12.3f}   runs {shown}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rate", type=float, default=20_000.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--backlog", type=int, default=300_000)
    p.add_argument("--match-rate", type=float, default=0.005)
    p.add_argument("--max-lag", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--core", type=int, default=0)
    p.add_argument("--sim-core", type=int, default=1)
    p.add_argument("--skip", choices=("sustained", "catch-up"), default=None)
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {args.core})
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    with contextlib.suppress(OSError):
        model = next(line for line in open("/proc/cpuinfo") if line.startswith("model name"))
        print(model.split(":", 1)[1].strip())
    print(f"source on core {args.core}, simulator on core {args.sim_core}", flush=True)
    if args.skip != "sustained":
        runs = [asyncio.run(one_run(args, live=True)) for _ in range(args.runs)]
        summarise(f"sustained: {args.rate:,.0f} events/s for {args.seconds:g} s", runs)
    if args.skip != "catch-up":
        runs = [asyncio.run(one_run(args, live=False)) for _ in range(args.runs)]
        summarise(f"catch-up: replay of {args.backlog:,} events", runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
