"""Blog feeds as a source: entries become write-ups, conditional GET saves refetching,
old entries and broken feeds are skipped, and `run` polls them as a supervised source."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from blog_site import BlogSite, feed_item

from aggregator.config import load_config
from aggregator.digest.feeds import FeedPoller
from aggregator.store import SQLiteStore
from web.app import create_app

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
async def blog() -> AsyncIterator[tuple[BlogSite, str]]:
    site = BlogSite(
        feed_items=[
            feed_item(
                "alt-text-blc26",
                "Escribir mejor texto alternativo",
                "Sat, 21 Nov 2026 18:00:00 +0000",
            ),
            feed_item("old-post", "Un post de 2025", "Mon, 01 Sep 2025 10:00:00 +0000"),
        ]
    )
    server = TestServer(site.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield site, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def test_feed_entries_become_write_ups_with_conditional_get(
    blog: tuple[BlogSite, str], tmp_path: Path
) -> None:
    site, base = blog
    store = SQLiteStore(tmp_path / "feeds.db")
    await store.open()
    try:
        feeds = [f"{base}/broken/feed/", f"{base}/tag/blc26/feed/"]
        poller = FeedPoller(feeds, store, allow_loopback=True, since=START)
        assert await poller.poll_once() == 1  # the broken feed is skipped, not fatal
        rows = await store.link_meta("feed")
        assert list(rows) == [f"{base}/alt-text-blc26/"]  # tracking parameters dropped
        meta = rows[f"{base}/alt-text-blc26/"]["meta"]
        assert meta["title"] == "Escribir mejor texto alternativo"
        assert meta["author"] == "Bea Ortiz" and meta["site"] == "Bea escribe"
        assert meta["published"] == "2026-11-21T18:00:00Z"
        assert meta["description"] == "Notas de la sesión. more"
        # Unchanged feed: one 304, nothing stored twice.
        assert await poller.poll_once() == 0
        assert site.not_modified == 1
        # A new entry (new ETag) is picked up on the next poll.
        site.feed_items.append(
            feed_item("blc26-dia-2", "BlueLightCamp, día 2", "Sun, 22 Nov 2026 09:00:00 +0000")
        )
        site.etag = '"v2"'
        assert await poller.poll_once() == 1
        assert len(await store.link_meta("feed")) == 2
    finally:
        await store.close()


async def test_run_polls_feeds_as_a_supervised_source(
    blog: tuple[BlogSite, str], tmp_path: Path
) -> None:
    _, base = blog
    config = load_config(env={}).with_overrides(
        event={"name": "BlueLightCamp 2026", "hashtags": ["blc26"], "start": "2026-11-21T09:00:00"},
        storage={"url": f"sqlite:///{tmp_path}/run.db"},
        bluesky={"mode": "off"},
        digest={
            "feeds": [f"{base}/tag/blc26/feed/"],
            "feed_interval": 10.0,
            "fetch_private_addresses": True,
        },
    )
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        data: dict[str, object] = {}
        for _ in range(100):  # bounded: 10 s at most
            data = await (await client.get("/digest.json")).json()
            if data["writeups"]:
                break
            await asyncio.sleep(0.1)
        writeups = data["writeups"]
        assert isinstance(writeups, list) and len(writeups) == 1
        assert writeups[0]["source"] == "feed" and writeups[0]["author"] == "Bea Ortiz"
        health = await (await client.get("/healthz")).json()
        assert "digest:feeds" in str(health)
        atom = ET.fromstring(await (await client.get("/digest.atom")).read())
        titles = [e.findtext(f"{ATOM}title") for e in atom.findall(f"{ATOM}entry")]
        assert titles == ["Escribir mejor texto alternativo"]
