"""Fan-out benchmark: our server vs a minimal `websockets.broadcast()` reference.

    python bench/fanout.py [--clients 5000] [--rates 10,20,50,100] [--seconds 10] [--runs 3]

The server process is pinned to core 0 and the swarm (aggregator.sim.loadgen) to core 1,
on loopback, with an open-loop post schedule of ~1 KB posts. For each server and rate it
reports delivery (every post to every client), p50/p99 delivery latency and the server's
RSS per idle connection; then the slow-client scenario (1 % of clients stop reading).
A rate passes when delivery is 100 % and p99 <= 250 ms; "throughput" is the highest
passing rate x clients (deliveries/s). Medians of `--runs` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.sim.loadgen import rss_kib  # noqa: E402

GOAL_P99_MS = 250.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scenario(
    reference: bool, clients: int, stalled: int, rate: float, seconds: float
) -> dict[str, Any]:
    port = free_port()
    count = int(rate * seconds)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        "taskset",
        "-c",
        "0",
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
        "--delay",
        "-1",
    ]
    if reference:
        cmd.append("--reference")
    server = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        rss_empty = rss_kib(server.pid)
        swarm = subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
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
                str(seconds + 20),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert swarm.stderr is not None
        assert swarm.stderr.readline().strip() == b"ready"
        time.sleep(1.0)  # all connected and idle, nothing posted yet
        rss_idle = rss_kib(server.pid)
        server.send_signal(signal.SIGUSR1)
        out, _ = swarm.communicate(timeout=seconds + 90)
        result: dict[str, Any] = json.loads(out)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    result["idle_kib_per_conn"] = (rss_idle - rss_empty) / max(1, clients)
    result["delivery"] = result["readers_complete"] / max(1, result["readers"])
    result["passes"] = result["delivery"] == 1.0 and result["p99_ms"] <= GOAL_P99_MS
    return result


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rates", default="10,20,50,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(
        f"# {args.clients} clients, ~1 KB posts, {args.seconds:g} s per run, "
        f"median of {args.runs}; server on core 0, swarm on core 1"
    )
    print("| server | posts/s | delivery | p50 ms | p99 ms | idle KiB/conn | goal |")
    print("|---|---|---|---|---|---|---|")
    best: dict[str, float] = {}
    for name, reference in (("backchannel", False), ("reference", True)):
        for rate in rates:
            runs = [
                scenario(reference, args.clients, 0, rate, args.seconds) for _ in range(args.runs)
            ]
            passes = sum(r["passes"] for r in runs) > len(runs) / 2
            print(
                f"| {name} | {rate:g} | {median_of(runs, 'delivery'):.3f} | "
                f"{median_of(runs, 'p50_ms'):.0f} | {median_of(runs, 'p99_ms'):.0f} | "
                f"{median_of(runs, 'idle_kib_per_conn'):.1f} | {'pass' if passes else 'FAIL'} |",
                flush=True,
            )
            if passes:
                best[name] = rate * args.clients
            else:
                break
    stalled = max(1, args.clients // 100)
    runs = [
        scenario(False, args.clients, stalled, rates[0], args.seconds) for _ in range(args.runs)
    ]
    print(
        f"\nslow clients: {stalled} of {args.clients} stop reading at {rates[0]:g} posts/s: "
        f"delivery to the rest {median_of(runs, 'delivery'):.3f}, "
        f"p99 {median_of(runs, 'p99_ms'):.0f} ms"
    )
    ours, ref = best.get("backchannel", 0.0), best.get("reference", 0.0)
    ratio = f"{ours / ref:.2f}" if ref else "n/a (reference never met the goal)"
    print(
        f"highest passing load: backchannel {ours:,.0f} deliveries/s, reference "
        f"{ref:,.0f} deliveries/s; ratio ours/reference = {ratio}"
    )


if __name__ == "__main__":
    main()
