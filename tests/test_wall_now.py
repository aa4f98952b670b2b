"""The wall's "Now" banner follows the schedule (/api/sessions) in headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser_support import LiveServer, launch_chromium
from playwright.async_api import Browser, async_playwright

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


async def test_now_banner_shows_the_running_sessions(tmp_path: Path, browser: Browser) -> None:
    now = datetime.now(ZoneInfo("UTC")).replace(tzinfo=None, microsecond=0)
    rows = [
        "start,end,room,title,leaders,hashtag",
        f"{now - timedelta(minutes=10)},{now + timedelta(minutes=30)},Lighthouse,Accessible maps,,",
        f"{now - timedelta(minutes=5)},{now + timedelta(minutes=40)},Harbour,Tiny servers,,",
        f"{now + timedelta(hours=2)},{now + timedelta(hours=3)},Attic,Later talk,,",
    ]
    schedule = tmp_path / "grid.csv"
    schedule.write_text("\n".join(r.replace(" ", "T", 1) if r[0].isdigit() else r for r in rows))
    server = LiveServer(tmp_path, env={"BACKCHANNEL_DIGEST_SCHEDULE": str(schedule)})
    await server.start()
    try:
        page = await browser.new_page()
        await page.goto(server.url("/wall"))
        banner = page.locator("#now:not([hidden]) .now-text")
        await banner.wait_for(timeout=3000)
        text = await banner.text_content()
        assert text == "Accessible maps (Lighthouse) · Tiny servers (Harbour)"
        sessions = await page.evaluate("fetch('/api/sessions').then(r => r.json())")
        assert [s["title"] for s in sessions["sessions"]][-1] == "Later talk"
    finally:
        await server.stop()
