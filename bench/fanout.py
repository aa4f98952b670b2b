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
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.sim.loadgen import run_scenario  # noqa: E402

GOAL_P99_MS = 250.0


def scenario(
    reference: bool, clients: int, stalled: int, rate: float, seconds: float
) -> dict[str, Any]:
    outcome = run_scenario(
        clients=clients,
        stalled=stalled,
        rate=rate,
        count=int(rate * seconds),
        reference=reference,
        pin_cores=True,
        cwd=str(ROOT),
    )
    result = outcome.swarm
    result["idle_kib_per_conn"] = (outcome.rss_idle_kib - outcome.rss_empty_kib) / max(1, clients)
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
