"""Three simulated Mastodon servers with faults injected, the real app, a wall.

The servers share posts (each has its own plus a share of the others', under its own
ids); one streams, one refuses the stream (so it is polled) and gets posts 40 s late,
one has no streaming API and serves cached pages. While the event plays, streams are
cut mid-frame or refused, requests fail with 500/503, come back half-written, slow or as
garbage. At the end the wall's websocket client must hold every post exactly once, with
its edits and without its deletes, and no server may have seen more requests in a
window than its rate limit allows.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_mastodon_source import EPOCH, final_statuses, status_item
from test_mastodon_stream import app_config, running_app, wait_for

from aggregator.sanitise import html_text_and_links
from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view

pytestmark = pytest.mark.slow

HOSTS = ("a.example", "b.example", "c.example")
LIMIT, PERIOD = 60, 10.0  # requests per window, per server
STEP, STEPS = 20.0, 50  # virtual seconds per step, steps (the event lasts ~1000 s)


def event_items() -> list[dict[str, Any]]:
    items = [status_item(k, at=5 + 7 * k, host=HOSTS[k % 3]) for k in range(130)]
    for k in (3, 20, 41, 62, 80, 101):  # edited a minute after posting
        uri = items[k]["status"]["uri"]
        content = f"<p>post {k}, corrected #testcamp</p>"
        items.append({"at": 5 + 7 * k + 60, "op": "edit", "uri": uri, "content": content})
    for k in (10, 33, 57, 90):  # deleted a minute and a half after posting
        items.append({"at": 5 + 7 * k + 90, "op": "delete", "uri": items[k]["status"]["uri"]})
    return items


def servers() -> list[ServerSettings]:
    common: dict[str, Any] = {"rate_limit": LIMIT, "rate_period_s": PERIOD}
    a, b, c = HOSTS
    return [
        ServerSettings(host=a, sees=federated_view(a, 0.6), **common),
        ServerSettings(
            host=b,
            sees=federated_view(b, 0.6),
            stream_tokens=frozenset(),
            remote_delay_s=40,
            **common,
        ),
        ServerSettings(
            host=c, sees=federated_view(c, 0.6), streaming=False, page_cache_s=0.5, **common
        ),
    ]


async def inject(sim: MastodonSimulator, step: int) -> None:
    if step == 5:
        await sim.drop_streams(0, mid_frame=True)
    elif step == 8:
        sim.fail_next(3, 500, server=1)
    elif step == 10:
        sim.garbage_next(1, server=2)
    elif step == 12:
        sim.stream_garbage_next(2, server=0)
    elif step == 15:
        sim.slow_next(2, 0.5, server=1)
    elif step == 18:
        sim.drop_next(1, server=2)
    elif step == 22:
        sim.streams_unavailable(3, server=0)
        await sim.drop_streams(0)
    elif step == 35:
        sim.fail_next(2, 503, server=2)
    elif step == 28:
        await sim.drop_streams(0, mid_frame=True)


async def test_three_servers_with_faults_give_the_wall_every_post_once(tmp_path: Path) -> None:
    items = event_items()
    clock = SimClock.manual(EPOCH, 0)
    sim = MastodonSimulator(items, clock, EPOCH, servers())
    urls = await sim.start()
    try:
        async with running_app(app_config(tmp_path, urls), "wall") as (_, (wall,)):
            await wait_for(lambda: sim.open_streams(0) == 1)
            for step in range(1, STEPS + 1):
                clock.set_offset(step * STEP)
                await inject(sim, step)
                await asyncio.sleep(0.1)
            expected = sim.expected_visible_uris()
            final = final_statuses(items)

            def converged() -> bool:
                return set(wall.view) == expected and all(
                    wall.view[uri]["text"] == html_text_and_links(final[uri]["content"])[0]
                    for uri in expected
                )

            started = asyncio.get_running_loop().time()
            await wait_for(converged, timeout=30)
            settle = asyncio.get_running_loop().time() - started
    finally:
        await sim.stop()
    deleted = {i["uri"] for i in items if i["op"] == "delete"}
    assert len(expected) == 130 - len(deleted)
    assert not deleted & set(wall.view)
    assert set(wall.shown.values()) == {1}, "a post was shown twice"
    busiest = []
    for server in range(3):
        # Counted as the server counts: per window, per client (token, or address).
        served = [r for r in sim.requests(server) if r.status != 429]
        windows = Counter((r.authed, int(r.at // PERIOD)) for r in served)
        assert max(windows.values()) <= LIMIT, (server, windows)
        assert not [r for r in sim.requests(server) if r.status == 429], server
        busiest.append(max(windows.values()))
    print(
        f"\n{len(expected)} posts, each shown once; settled {settle:.1f} s after the event; "
        f"busiest {PERIOD:.0f}-s window per server: {busiest} (limit {LIMIT})"
    )
