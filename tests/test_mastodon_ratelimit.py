"""The Mastodon source within servers' rate limits, counted by the simulator.

The simulator counts like rack-attack (fixed windows aligned to the period, per address
for anonymous clients); the windows here are seconds long so the tests stay short, and
the source runs with a poll interval of 50 ms, far faster than any limit allows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from test_mastodon_source import EPOCH, FAST, Harness, harness, status_item

from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import RequestRecord, ServerSettings
from aggregator.sources.mastodon_api import RequestBudget, pace_spacing


def per_window(records: list[RequestRecord], period: float) -> Counter[int]:
    return Counter(int(r.at // period) for r in records)


async def count_is(h: Harness, n: int) -> bool:
    return await h.store.count() == n


async def test_low_remaining_spreads_the_requests_and_the_limit_is_never_hit(
    tmp_path: Path,
) -> None:
    period, limit = 3.0, 20
    settings = ServerSettings(host="social.example", rate_limit=limit, rate_period_s=period)
    items = [status_item(n, at=n) for n in range(5)]
    async with harness(tmp_path, items, [settings], SimClock.manual(EPOCH, 100)) as h:
        h.source(h.urls[0])
        await asyncio.sleep(2.4 * period)
        records = h.sim.requests(0)
    assert await_nothing_refused(records)
    windows = per_window(records, period)
    assert max(windows.values()) <= limit, windows
    # Once half the window's budget is used, what is left is spread over what is left of
    # the window (at 50 ms polls it would otherwise be gone in half a second).
    first, last = min(windows), max(windows)
    for window in range(first + 1, last):
        times = sorted(r.at for r in records if int(r.at // period) == window)
        late = times[limit // 2 :]
        assert late and late[-1] - window * period > period * 0.6, (window, times)
        gaps = [b - a for a, b in itertools.pairwise(late)]
        assert sum(gaps) / max(1, len(gaps)) > 0.15, gaps


def await_nothing_refused(records: list[RequestRecord]) -> bool:
    return all(r.status != 429 for r in records) and len(records) > 10


async def test_a_429_is_waited_out_without_a_burst(tmp_path: Path) -> None:
    period, limit = 3.0, 10
    settings = ServerSettings(host="social.example", rate_limit=limit, rate_period_s=period)
    items = [status_item(n, at=n) for n in range(5)]
    async with harness(tmp_path, items, [settings], SimClock.manual(EPOCH, 100)) as h:
        # Someone else behind our address has just used up the window.
        async with aiohttp.ClientSession() as other:
            for _ in range(limit):
                async with other.get(h.urls[0] + "/api/v1/timelines/tag/x") as resp:
                    assert resp.status == 200
        exhausted = len(h.sim.requests(0))
        h.source(h.urls[0])
        await h.until(lambda: count_is(h, 5), timeout=3 * period)
        await asyncio.sleep(period)
        ours = h.sim.requests(0)[exhausted:]
    refused = [r for r in ours if r.status == 429]
    assert len(refused) == 1, [(r.path_qs, r.status) for r in ours]  # the probe learns it
    after = ours[ours.index(refused[0]) + 1 :]
    reset = (int(refused[0].at // period) + 1) * period
    assert after and after[0].at >= reset  # nothing more in the exhausted window
    # Served requests, ours and the other client's, never exceed a window's limit.
    windows = per_window([r for r in h.sim.requests(0) if r.status != 429], period)
    assert max(windows.values()) <= limit, windows


async def test_without_rate_headers_the_own_budget_holds(tmp_path: Path) -> None:
    # A server (or proxy) that sends no X-RateLimit headers: only our budget protects it.
    settings = ServerSettings(host="social.example", rate_headers=False, rate_limit=10**6)
    timing = replace(FAST, budget=15, budget_period=2.0)
    items = [status_item(n, at=n) for n in range(5)]
    async with harness(tmp_path, items, [settings], SimClock.manual(EPOCH, 100)) as h:
        h.source(h.urls[0], timing=timing)
        await asyncio.sleep(5.0)
        times = [r.at for r in h.sim.requests(0)]
    assert len(times) >= 30  # it keeps working at the budget's pace
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t < start + 2.0 - 0.01)
        assert in_window <= 15, (i, in_window)


def test_request_budget_is_a_sliding_window() -> None:
    budget = RequestBudget(limit=3, period=10.0)
    for t in (0.0, 1.0, 2.0):
        assert budget.delay(t) == 0.0
        budget.note(t)
    assert budget.delay(5.0) == 5.0  # the first of the three leaves the window at 10
    assert budget.delay(10.0) == 0.0


def test_pace_spacing_spreads_the_second_half_of_a_window() -> None:
    now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    reset = now + timedelta(seconds=100)
    assert pace_spacing(None, None, None, now) == 0.0
    assert pace_spacing(200, 300, reset, now) == 0.0  # more than half left: full speed
    assert pace_spacing(100, 300, reset, now) == 1.0
    assert pace_spacing(10, 300, reset, now) == 10.0
    assert pace_spacing(1, 300, reset, now) > 100.0  # the last one waits for the reset
    assert pace_spacing(0, 300, now - timedelta(seconds=1), now) == 0.0  # a new window
