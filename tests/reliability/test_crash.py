"""Crash safety: `backchannel run` SIGKILLed at random points of a busy replay, again and again.

The Mastodon simulator replays the bundled event on two servers at high speed while the
Jetstream simulator streams network-like traffic (5 % of it tagged for the event). The
service is killed at seeded random moments (during start-up, migration, backfill, live
ingest) and restarted on the same SQLite file. After every kill no saved cursor is ahead
of the stored posts; at the end every published post is stored exactly once, nothing
that was never published is stored, and the file passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest
from factories import free_port
from reliability_support import (
    integrity,
    read_store,
    simulators,
    spawn_service,
    stop_process,
    unsaved_behind_cursors,
    wait_http,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SEED = 20261121
KILLS = 20
BUDGET_S = 90.0  # the kill loop stops by itself after this, whatever it reached
SPEED = 700.0  # the 13-hour event replays in ~66 s of real time
JETSTREAM_RATE = 300.0  # events a second, 5 % of them matching: ~15 event posts a second


async def test_twenty_sigkills_lose_nothing_double_nothing_corrupt_nothing(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "crash.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with simulators(SPEED) as sims:
        config = write_config(tmp_path / "event.toml", sims, port, db)
        generate = asyncio.create_task(sims.load.run(JETSTREAM_RATE, sims.replay_s))
        started = time.monotonic()
        service = spawn_service(config, tmp_path / "run0.log")
        kills, lifetimes, ahead = 0, [], []
        try:
            while kills < KILLS and time.monotonic() - started < BUDGET_S:
                # Anywhere from mid-import to well into live ingest.
                lifetime = rng.uniform(0.3, 3.5)
                await asyncio.sleep(lifetime)
                stop_process(service, signal.SIGKILL)
                kills += 1
                lifetimes.append(lifetime)
                stored = read_store(db) if db.exists() else None
                if stored is not None:
                    ahead += unsaved_behind_cursors(stored, sims)
                service = spawn_service(config, tmp_path / f"run{kills}.log")
            await wait_http(f"{base}/healthz")
            # Let both replays finish, then let the sources catch up.
            await asyncio.wait_for(generate, sims.replay_s + 30)
            remaining = sims.replay_s - (time.monotonic() - started)
            await asyncio.sleep(max(0.0, remaining) + 1.0)
            expected = sims.expected()
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                stored = read_store(db)
                if expected <= stored.live | stored.deleted:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # anything still in flight would show up as a double
            assert stop_process(service, signal.SIGTERM) == 0, "SIGTERM must shut down cleanly"
        finally:
            generate.cancel()
            stop_process(service)
        final = read_store(db)
        elapsed = time.monotonic() - started

    assert kills >= KILLS, f"only {kills} kills in {BUDGET_S} s"
    assert not ahead, f"a cursor was ahead of the stored posts: {sorted(set(ahead))[:3]}"
    assert integrity(db) == "ok"
    have = final.live | final.deleted
    missing = expected - have
    assert not missing, f"{len(missing)} posts lost, e.g. {sorted(missing)[:3]}"
    # Rows are unique by id (a UNIQUE index); nothing stored that was never published,
    # and the only Mastodon posts beyond the visible set are ones deleted later.
    unknown = final.live - expected - sims.deleted_mastodon()
    assert not unknown, f"posts that were never published: {sorted(unknown)[:3]}"
    assert final.rows == len(have)
    # The cursor check above looked at every source's cursor.
    hosts = {f"mastodon:{u.split('://', 1)[1]}" for u in sims.mastodon_urls}
    assert hosts | {"bluesky:jetstream"} <= set(final.cursors), final.cursors
    for n in range(kills + 1):
        log = (tmp_path / f"run{n}.log").read_text(errors="replace")
        assert "database disk image is malformed" not in log, log[-2000:]
    print(
        f"\n{kills} SIGKILLs in {elapsed:.0f} s (lifetimes {min(lifetimes):.2f}-"
        f"{max(lifetimes):.2f} s); {len(expected)} published "
        f"({len(sims.expected_mastodon())} Mastodon, {len(sims.load.matched)} Bluesky), "
        f"{len(missing)} lost, 0 doubled; {sims.load.published} Jetstream events; "
        f"integrity ok"
    )
