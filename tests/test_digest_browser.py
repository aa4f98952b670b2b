"""The printable digest page renders in headless Chromium: sections, chart, no errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import LiveServer, launch_chromium
from factories import make_post
from playwright.async_api import async_playwright

from aggregator.model import Link

pytestmark = pytest.mark.browser


async def test_the_digest_page_renders_in_chromium(tmp_path: Path) -> None:
    server = LiveServer(tmp_path)
    await server.start()
    try:
        posts = [
            make_post(1, text="“Small servers are villages.” — Tomasz #testcamp"),
            make_post(
                2,
                text="My write-up #testcamp",
                links=(
                    Link(
                        url="https://blog.example/2026/11/testcamp-notes",
                        title="Test Camp: my notes",
                        description="What I learnt",
                    ),
                ),
            ),
            make_post(3, text="<script>alert(1)</script> still just text #testcamp"),
        ]
        await server.publish(*posts)
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                # Every resource the page loads must exist (the browser's own favicon
                # probe aside).
                page.on(
                    "response",
                    lambda r: (
                        errors.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico")
                        else None
                    ),
                )
                page.on("dialog", lambda dialog: errors.append(f"dialog {dialog.message}"))
                response = await page.goto(server.url("/digest"))
                assert response is not None and response.status == 200
                assert "Test Camp" in (await page.locator("h1").text_content() or "")
                headings = await page.locator("h2").all_text_contents()
                assert "Write-ups" in headings and "Top contributors" in headings
                assert await page.locator("main.h-entry").count() == 1
                assert await page.locator(".writeups a.u-url").first.get_attribute("href") == (
                    "https://blog.example/2026/11/testcamp-notes"
                )
                assert await page.locator("svg").count() >= 1  # the activity chart, no JS
                assert await page.locator("script").count() == 0
                pdf = await page.pdf()  # printable
                assert pdf.startswith(b"%PDF") and len(pdf) > 1000
                assert errors == []
            finally:
                await browser.close()
    finally:
        await server.stop()
