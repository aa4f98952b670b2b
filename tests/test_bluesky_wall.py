"""Bluesky end to end: the Jetstream simulator -> the real source -> store -> fan-out ->
the wall in headless Chromium. Posts arrive with a DID only; the wall must show the
author's handle and name within seconds, deletes must vanish, a handle change must show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI

from aggregator.config import load_config
from aggregator.sim.appview import AppViewSimulator, SimProfile
from aggregator.sim.jetstream import JetstreamSimulator
from web.app import create_app
from web.server import start_site

try:
    from playwright.async_api import Page, async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

from browser_support import launch_chromium

pytestmark = pytest.mark.browser

ADA = "did:plc:ada4xyzabcdefghijklmnop"
HYDRATED_WITHIN_MS = 5000  # "never a bare DID for more than a few seconds"


def tagged_record(text: str, tag: str) -> dict[str, Any]:
    """A post whose text ends with a #tag facet (UTF-8 byte offsets, as the app writes)."""
    full = f"{text} #{tag}"
    start = len(text.encode()) + 1
    return {
        "$type": "app.bsky.feed.post",
        "text": full,
        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "langs": ["en"],
        "facets": [
            {
                "index": {"byteStart": start, "byteEnd": len(full.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
            }
        ],
    }


@dataclass
class BlueskyWall:
    jetstream: JetstreamSimulator
    appview: AppViewSimulator
    url: str


@pytest.fixture
async def wall(tmp_path: Path) -> AsyncIterator[BlueskyWall]:
    jetstream = JetstreamSimulator()
    appview = AppViewSimulator(
        [SimProfile(ADA, "ada.bsky.example", "Ada Lovelace", "https://cdn.example/ada.jpg")]
    )
    jetstream_url = await jetstream.start()
    appview_url = await appview.start()
    config = load_config(env={}).with_overrides(
        event={"name": "Test Camp", "hashtags": ["testcamp"]},
        storage={"url": f"sqlite:///{tmp_path}/t.db"},
        mastodon={"servers": []},
        bluesky={"mode": "jetstream", "jetstream_url": jetstream_url, "appview_url": appview_url},
    )
    app = create_app(config)
    runner, port = await start_site(app, "127.0.0.1", 0)
    try:
        yield BlueskyWall(jetstream, appview, f"http://127.0.0.1:{port}/wall")
    finally:
        await runner.cleanup()
        await jetstream.stop()
        await appview.stop()


async def until_connected(jetstream: JetstreamSimulator, page: Page) -> None:
    for _ in range(250):
        if jetstream.connections:
            return
        await page.wait_for_timeout(20)
    raise AssertionError("the Jetstream source never connected")


async def test_bluesky_posts_reach_the_wall_with_real_names_and_deletes_vanish(
    wall: BlueskyWall,
) -> None:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(wall.url)
            await page.wait_for_selector('.conn[data-state="live"]', timeout=5000)
            await until_connected(wall.jetstream, page)

            wall.jetstream.publish_commit(ADA, "create", "3kpost1", tagged_record("Hi", "TestCamp"))
            wall.jetstream.publish_commit(
                ADA, "create", "3kmiss", tagged_record("No", "testcamping")
            )
            post_id = f"at://{ADA}/app.bsky.feed.post/3kpost1"
            card = page.locator(f'article.card[data-id="{post_id}"]')
            await card.wait_for(timeout=HYDRATED_WITHIN_MS)
            name = card.locator(".name")
            handle = card.locator(".handle")
            await page.wait_for_function(
                '(id) => document.querySelector(`article.card[data-id="${id}"] .name`)'
                "?.textContent === 'Ada Lovelace'",
                arg=post_id,
                timeout=HYDRATED_WITHIN_MS,
            )
            assert await handle.text_content() == "@ada.bsky.example"
            assert await name.text_content() == "Ada Lovelace"
            assert "Hi #TestCamp" in (await card.locator(".text").text_content() or "")
            assert await card.locator(".platform-bluesky").count() == 1
            # The near-miss tag never reached the wall.
            assert await page.locator("article.card").count() == 1

            wall.appview.rename(ADA, "ada.example.org")
            wall.jetstream.publish_identity(ADA, "ada.example.org")
            await page.wait_for_function(
                '(id) => document.querySelector(`article.card[data-id="${id}"] .handle`)'
                "?.textContent === '@ada.example.org'",
                arg=post_id,
                timeout=HYDRATED_WITHIN_MS,
            )

            wall.jetstream.publish_commit(ADA, "delete", "3kpost1")
            await card.wait_for(state="detached", timeout=3000)
            assert errors == []
        finally:
            await browser.close()
