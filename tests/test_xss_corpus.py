"""A corpus of known XSS vectors as post content, author names, CW text, alt text and link
titles: none may execute on /wall, / or /admin in headless Chromium.

The CSP is bypassed in these pages on purpose, so that only our rendering (nh3 on the
server, textContent in the pages) stands between a vector and the browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser_support import LiveServer, launch_chromium
from factories import make_post
from playwright.async_api import Browser, Page, async_playwright

from aggregator.model import Author, Link, Media, Post, Provenance
from aggregator.sanitise import sanitise_html

pytestmark = pytest.mark.browser

VECTORS = [
    line
    for line in (Path(__file__).parent / "data" / "xss_vectors.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
TOKEN = "xss-admin-token"

# Anything that would mean a vector got through as markup.
INJECTED = (
    "script:not([src]), script[src*='xss'], iframe, frame, object, embed, base, meta[http-equiv],"
    " link[rel=import], svg script, [onerror], [onload], [onclick], [onmouseover], [onfocus],"
    " [ontoggle], [onbegin], [onstart], [onpageshow], [onanimationstart], [onpointerover],"
    " [formaction], [srcdoc], a[href^='javascript:' i], a[href^='data:' i], a[href^='vbscript:' i]"
)


def hostile_posts() -> list[Post]:
    posts = []
    for n, vector in enumerate(VECTORS, start=1):
        posts.append(
            make_post(
                n,
                text=vector,
                html=sanitise_html(vector),  # what the normalisers do with post HTML
                author=Author(
                    handle=f"@x{n}@evil.example",
                    name=vector[:200],
                    avatar="javascript:window.__xss=1" if n % 2 else None,
                    url="javascript:window.__xss=1",
                ),
                spoiler_text=vector if n % 5 == 0 else "",
                url="javascript:window.__xss=1" if n % 3 == 0 else f"https://evil.example/{n}",
                media=(Media("image", "javascript:window.__xss=1", alt=vector),),
                links=(Link(f"https://evil.example/l{n}", title=vector, description=vector),),
                provenance=Provenance(source="test"),
            )
        )
    return posts


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


async def open_page(browser: Browser, url: str, dialogs: list[str]) -> Page:
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    page.on(
        "dialog",
        lambda dialog: (dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())),
    )
    await page.goto(url)
    return page


async def assert_inert(page: Page, dialogs: list[str], where: str) -> None:
    # Give event-handler vectors (onerror, onfocus, animations) time to fire.
    await page.mouse.move(200, 300)
    await page.wait_for_timeout(800)
    assert dialogs == [], f"{where}: a dialog opened: {dialogs[:3]}"
    assert await page.evaluate("window.__xss === undefined"), f"{where}: window.__xss was set"
    found = await page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map(e => e.outerHTML.slice(0, 120))",
        INJECTED,
    )
    assert found == [], f"{where}: injected elements: {found[:5]}"


async def test_no_vector_executes_anywhere(tmp_path: Path, browser: Browser) -> None:
    assert len(VECTORS) >= 100
    server = LiveServer(tmp_path, env={"BACKCHANNEL_WEB_ADMIN_TOKEN": TOKEN})
    await server.start()
    try:
        dialogs: list[str] = []
        # Live path first: the pages are open while every vector arrives over the websocket.
        wall = await open_page(browser, server.url("/wall"), dialogs)
        remote = await open_page(browser, server.url("/"), dialogs)
        posts = hostile_posts()
        await server.publish(*posts)
        await wall.wait_for_function(
            "() => document.querySelectorAll('.card').length >= 40", timeout=10_000
        )
        await assert_inert(wall, dialogs, "/wall (live)")
        await assert_inert(remote, dialogs, "/ (live)")
        # Server-rendered path: the same posts in the first page of a fresh load.
        for path in ("/wall", "/", "/?q=script"):
            page = await open_page(browser, server.url(path), dialogs)
            await assert_inert(page, dialogs, f"{path} (server-rendered)")
        # The moderators' screen renders every one of them in its queue.
        admin = await open_page(browser, server.url("/admin"), dialogs)
        await admin.fill("#token", TOKEN)
        await admin.click("button[type=submit]")
        await admin.wait_for_function(
            f"() => document.querySelectorAll('#queue .card').length >= {len(posts)}",
            timeout=10_000,
        )
        await assert_inert(admin, dialogs, "/admin")
        # The vectors are shown as text, not lost: a name survives intact.
        names = await remote.evaluate(
            "() => [...document.querySelectorAll('.card .name')].map(e => e.textContent)"
        )
        assert any("<script>" in name for name in names)
    finally:
        await server.stop()
