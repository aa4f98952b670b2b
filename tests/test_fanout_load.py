"""Fan-out under load, over real loopback sockets, server and swarm in separate processes:
1,000 clients get every post in order; 10 stalled clients do not hurt the other 990;
clients that stop reading during a flood are dropped and server memory stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.sim.loadgen import ScenarioResult, run_scenario

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(clients: int, stalled: int, rate: float, count: int, size: int = 1000) -> ScenarioResult:
    return run_scenario(
        clients=clients, stalled=stalled, rate=rate, count=count, size=size, cwd=str(ROOT)
    )


def test_thousand_clients_and_ten_stalled_ones() -> None:
    base = run(1000, 0, rate=10, count=40).swarm
    with_stalled = run(1000, 10, rate=10, count=40).swarm
    print(
        f"\n1000 clients: p99 {base['p99_ms']:.0f} ms; with 10 stalled: "
        f"p99 {with_stalled['p99_ms']:.0f} ms"
    )
    for result in (base, with_stalled):
        assert result["connected"] == 1000
        assert result["readers_complete"] == result["readers"], "every post to every reader"
        assert result["readers_in_order"] == result["readers"], "in order"
    # Stalled clients must not slow the others. Two runs on a shared 2-core machine vary
    # by tens of ms; a fan-out that waited on stalled clients would add seconds.
    assert with_stalled["p99_ms"] <= base["p99_ms"] * 1.5 + 50


def test_clients_that_stop_reading_in_a_flood_are_dropped_with_bounded_memory() -> None:
    # 8 KB posts at 200/s for 8 s: 12.8 MB per client, more than kernel buffers (4 MB) hide.
    outcome = run(40, 10, rate=200, count=1600, size=8000)
    result, health = outcome.swarm, outcome.health
    growth_mib = (outcome.rss_after_kib - outcome.rss_idle_kib) / 1024
    print(
        f"\nflood: readers p99 {result['p99_ms']:.0f} ms, dropped {health['clients']['dropped']}, "
        f"server RSS +{growth_mib:.1f} MiB"
    )
    assert result["readers_complete"] == result["readers"]
    assert health["clients"]["dropped"] >= 10
    # Unbounded buffering would hold 10 x ~9 MB; the bounded buffers cap it far lower.
    assert growth_mib < 40
