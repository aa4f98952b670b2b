"""Fan-out across two serve nodes sharing one stream through PostgreSQL and Redis.

    python bench/fanout_multinode.py [--clients 5000] [--rate 10] [--seconds 10] [--runs 3]

One ingest node (the synthetic source of `aggregator.sim.loadgen`, PostgreSQL store,
Redis bus, no web), two `backchannel serve` nodes, a throwaway PostgreSQL cluster and
redis-server, and two client swarms, each holding half of the clients on one node. All
of it shares this machine's two cores, so the figure is a floor: in production each serve
node has its own machine. Reported per node and overall: delivery (every post to every
client), p50/p99 from a post being made to a client reading it, and the serve nodes' RSS
per connection. Compare with the single-node row of bench/fanout.py.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers import PostgresServer, RedisServer  # noqa: E402

from aggregator.sim.loadgen import _free_port, rss_kib  # noqa: E402


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, **kwargs)


def wait_ready(port: int, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve node on {port} never became ready")


def one_run(pg: PostgresServer, redis: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from servers import create_database

    dsn = asyncio.run(create_database(pg))
    count = int(args.rate * args.seconds)
    procs: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory(prefix="bench-mn-")
    try:
        ingest = spawn(
            [
                *("-m", "aggregator.sim.loadgen", "server", "--ingest-only"),
                *("--rate", str(args.rate), "--count", str(count), "--delay", "-1"),
                *("--storage-url", dsn, "--bus-url", redis.url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs.append(ingest)
        assert ingest.stdout is not None
        if b"serving" not in ingest.stdout.readline():
            raise RuntimeError("the ingest node did not start")
        ports = [_free_port(), _free_port()]
        for i, port in enumerate(ports):
            config = Path(tmp.name) / f"serve{i}.toml"
            config.write_text(
                f'[event]\nhashtags = ["loadgen"]\n[bluesky]\nmode = "off"\n'
                f"[web]\nport = {port}\nmax_connections_per_ip = 0\n"
                f'[storage]\nurl = "{dsn}"\n[bus]\nurl = "{redis.url}"\n'
            )
            procs.append(
                spawn(
                    [
                        "-m",
                        "aggregator.cli",
                        "--log-level",
                        "warning",
                        "serve",
                        "--config",
                        str(config),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_ready(port)
        serves = procs[1:3]
        rss_empty = [rss_kib(p.pid) for p in serves]
        per_node = args.clients // 2
        swarms = [
            spawn(
                [
                    *("-m", "aggregator.sim.loadgen", "swarm"),
                    *("--url", f"ws://127.0.0.1:{port}/ws", "--clients", str(per_node)),
                    *("--expect", str(count), "--duration", str(count / args.rate + 30)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for port in ports
        ]
        for swarm in swarms:
            assert swarm.stderr is not None
            if swarm.stderr.readline().strip() != b"ready":
                raise RuntimeError("a swarm could not connect")
        time.sleep(1.0)
        rss_idle = [rss_kib(p.pid) for p in serves]
        ingest.send_signal(signal.SIGUSR1)  # start posting
        results = [json.loads(s.communicate(timeout=count / args.rate + 120)[0]) for s in swarms]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()
    readers = sum(r["readers"] for r in results)
    complete = sum(r["readers_complete"] for r in results)
    return {
        "clients": sum(r["connected"] for r in results),
        "delivery": complete / max(1, readers),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "p99_ms_per_node": [round(r["p99_ms"], 1) for r in results],
        "idle_kib_per_conn": statistics.mean(
            (idle - empty) / max(1, per_node)
            for idle, empty in zip(rss_idle, rss_empty, strict=True)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pg, redis = PostgresServer(), RedisServer()
    pg.init()
    pg.start()
    redis.start()
    try:
        runs = [one_run(pg, redis, args) for _ in range(args.runs)]
    finally:
        pg.destroy()
        redis.destroy()
    for run in runs:
        print(json.dumps(run))
    print(
        f"two serve nodes, {args.clients} clients, {args.rate:g} posts/s, median of {len(runs)}: "
        f"delivery {statistics.median(r['delivery'] for r in runs):.1%}, "
        f"p50 {statistics.median(r['p50_ms'] for r in runs):.0f} ms, "
        f"p99 {statistics.median(r['p99_ms'] for r in runs):.0f} ms, "
        f"idle {statistics.median(r['idle_kib_per_conn'] for r in runs):.1f} KiB/conn"
    )


if __name__ == "__main__":
    main()
