"""`backchannel demo`: the bundled event replayed through the real sources, offline.

Two simulated Mastodon servers (the event's home server and a big general one that
sees about half of the posts through federation) replay the synthetic unconference at
`speed` times real time. The virtual clock is placed so that the replay ends at about
"now": relative times on the wall read naturally and nothing is dated in the future.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator.config import load_config
from aggregator.demo import load_dataset
from aggregator.sim.bluesky_data import start_bluesky_sims
from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view

log = logging.getLogger(__name__)

START_OFFSET = 1800.0  # the first half hour has happened when the demo opens


async def run_demo(host: str, port: int, speed: float, db: str, stop: asyncio.Event) -> None:
    from web.server import serve_until

    data = load_dataset()
    last = max(float(item["at"]) for item in data["items"])
    replay_seconds = (last - START_OFFSET) / speed
    epoch = datetime.now(UTC) + timedelta(seconds=replay_seconds) - timedelta(seconds=last)
    clock = SimClock(epoch, speed=speed, start_offset=START_OFFSET)
    home = _home_host(data)
    servers = [
        ServerSettings(host=home, page_cache_s=0.0),
        ServerSettings(
            host="mastodon.example", sees=federated_view("mastodon.example"), page_cache_s=0.0
        ),
    ]
    sim = MastodonSimulator(data["items"], clock, epoch, servers, accounts=data["accounts"])
    urls = await sim.start("127.0.0.1")
    bsky = await start_bluesky_sims(clock, data)
    tmp = None
    if not db:
        tmp = tempfile.TemporaryDirectory(prefix="backchannel-demo-")
        db = str(Path(tmp.name) / "demo.db")
    schedule = _write_schedule(data, epoch, Path(db).parent / "demo-schedule.csv")
    event = data["event"]
    # Only the admin token comes from the environment: the demo's other settings are fixed.
    secrets = {k: v for k, v in os.environ.items() if k.startswith("BACKCHANNEL_WEB_ADMIN")}
    config = load_config(env=secrets).with_overrides(
        event={
            "name": event["name"],
            "hashtags": event["hashtags"],
            "timezone": event["timezone"],
            "start": epoch.astimezone(UTC).replace(tzinfo=None).isoformat(),
        },
        mastodon={"servers": urls, "poll_interval": 2.0, "min_poll_interval": 1.0},
        bluesky=bsky.config(),
        storage={"url": f"sqlite:///{db}"},
        digest={"schedule": str(schedule)},
        web={"host": host, "port": port},
    )
    # The event's configured zone is for display; the demo's start is given in UTC.
    config = config.with_overrides(event={"timezone": "UTC"})
    print(
        f"backchannel demo: replaying {event['name']} ({len(data['items'])} items) at "
        f"{speed:g}x from simulated Mastodon servers {', '.join(urls)} and "
        f"a simulated Jetstream at {bsky.jetstream_url}; "
        f"the replay ends in about {replay_seconds / 60:.0f} min",
        flush=True,
    )
    try:
        await serve_until(config, host, port, stop)
    finally:
        await sim.stop()
        await bsky.stop()
        if tmp is not None:
            tmp.cleanup()


def _write_schedule(data: dict[str, Any], epoch: datetime, path: Path) -> Path:
    """The event's sessions as a schedule CSV, so /digest and the wall's Now banner have
    the grid an organiser would have imported."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["start", "end", "room", "title", "leaders", "hashtag"])
        for s in data["sessions"]:
            start = (epoch + timedelta(seconds=s["start_s"])).strftime("%Y-%m-%dT%H:%M:%S")
            end = (epoch + timedelta(seconds=s["end_s"])).strftime("%Y-%m-%dT%H:%M:%S")
            leaders = [x["name"] for x in s["leaders"]]
            leaders += [x["handle"] for x in s["leaders"] if x.get("handle")]
            writer.writerow(
                [start, end, s["room"], s["title"], ";".join(leaders), s.get("hashtag") or ""]
            )
    return path


def _home_host(data: dict[str, object]) -> str:
    accounts = data.get("accounts")
    if isinstance(accounts, list):
        for account in accounts:
            url = str(account.get("url", "")) if isinstance(account, dict) else ""
            if "bluelight" in url:
                return url.split("/")[2]
    return "social.bluelight.example"
