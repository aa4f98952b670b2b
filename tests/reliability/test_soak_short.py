"""The soak's short mode (bench/soak.py --seconds 35): 10x a busy conference's post rate
through the simulators with 1,000 connected clients. Nothing lost, every client served,
memory, open files and /healthz latency flat from the first fifth to the last."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def test_short_soak_loses_nothing_and_does_not_grow(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    subprocess.run(
        [sys.executable, "bench/soak.py", "--seconds", "35", "--sample", "1", "--json", str(out)],
        cwd=ROOT,
        check=True,
        timeout=140,
        stdout=subprocess.DEVNULL,
    )
    report = json.loads(out.read_text())
    print("\n" + json.dumps(report))
    assert report["exit_code"] == 0
    assert report["posts_lost"] == 0
    assert report["mastodon_lost"] == 0
    assert report["event_posts_published"] >= 35 * 40  # ~50 a second were offered
    assert report["clients_that_received"] == report["clients"] == 1000
    assert report["clients_connected_at_end"] == 1000
    assert report["clients_dropped_by_server"] == 0  # reading clients never fall behind
    # Flat: a short run still warms caches, so the bounds are loose but far below a leak
    # of one buffered message per client per tick (~1,000 x 1 KB x 10/s = 10 MB/s).
    assert report["rss_mb"]["end"] - report["rss_mb"]["start"] < 60, report["rss_mb"]
    assert report["open_files"]["end"] - report["open_files"]["start"] <= 10
    assert report["healthz_ms"]["failures"] == 0
    assert report["healthz_ms"]["end_p99"] < 2_000, report["healthz_ms"]
