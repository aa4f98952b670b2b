"""Fan-out under load, over real loopback sockets, server and swarm in separate processes:
1,000 clients get every post in order; 10 stalled clients do not hurt the other 990;
clients that stop reading during a flood are dropped and server memory stays bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aggregator.sim.loadgen import rss_kib

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_scenario(
    clients: int, stalled: int, rate: float, count: int, size: int = 1000
) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [
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
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        assert b"serving" in server.stdout.readline()
        rss_before = rss_kib(server.pid)
        swarm = subprocess.Popen(
            [
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
                str(count / rate + 15),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert swarm.stderr is not None
        assert swarm.stderr.readline().strip() == b"ready"  # every client connected
        server.send_signal(signal.SIGUSR1)  # start posting
        out, _ = swarm.communicate(timeout=180)
        rss_after = rss_kib(server.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            health = json.load(resp)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return json.loads(out), health, rss_before, rss_after


def test_thousand_clients_and_ten_stalled_ones() -> None:
    base, _, _, _ = run_scenario(1000, 0, rate=10, count=40)
    with_stalled, _, _, _ = run_scenario(1000, 10, rate=10, count=40)
    print(
        f"\n1000 clients: p99 {base['p99_ms']:.0f} ms; with 10 stalled: "
        f"p99 {with_stalled['p99_ms']:.0f} ms"
    )
    for result in (base, with_stalled):
        assert result["connected"] == 1000
        assert result["readers_complete"] == result["readers"], "every post to every reader"
        assert result["readers_in_order"] == result["readers"], "in order"
    # Stalled clients must not slow the others: within 10 % (+ 25 ms of scheduler noise).
    assert with_stalled["p99_ms"] <= base["p99_ms"] * 1.10 + 25


def test_clients_that_stop_reading_in_a_flood_are_dropped_with_bounded_memory() -> None:
    # 8 KB posts at 200/s for 8 s: 12.8 MB per client, more than kernel buffers (4 MB) hide.
    result, health, rss_before, rss_after = run_scenario(40, 10, rate=200, count=1600, size=8000)
    growth_mib = (rss_after - rss_before) / 1024
    print(
        f"\nflood: readers p99 {result['p99_ms']:.0f} ms, dropped {health['clients']['dropped']}, "
        f"server RSS +{growth_mib:.1f} MiB"
    )
    assert result["readers_complete"] == result["readers"]
    assert health["clients"]["dropped"] >= 10
    # Unbounded buffering would hold 10 x ~9 MB; the bounded buffers cap it far lower.
    assert growth_mib < 40
