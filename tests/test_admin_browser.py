"""An organiser runs a pre-moderated wall from /admin; a second moderator's screen and the
projector follow every decision live (headless Chromium against the real app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser_support import LiveServer, launch_chromium
from factories import make_post
from playwright.async_api import Browser, Page, async_playwright

from web.keys import RUNTIME

pytestmark = pytest.mark.browser

TOKEN = "moderator-token"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


async def moderator(browser: Browser, server: LiveServer) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(server.url("/admin"))
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_selector(".conn[data-state=live]")
    return page


async def test_pre_moderated_wall_run_from_two_admin_screens(
    tmp_path: Path, browser: Browser
) -> None:
    server = LiveServer(tmp_path, env={"BACKCHANNEL_WEB_ADMIN_TOKEN": TOKEN})
    await server.start()
    try:
        alice = await moderator(browser, server)
        bob = await moderator(browser, server)
        await alice.check("input[name=moderation][value=pre]")
        await alice.wait_for_selector("#rules-status:has-text('Saved')")
        await bob.wait_for_function(
            "() => document.querySelector('input[name=moderation][value=pre]').checked"
        )
        wall = await (await browser.new_context()).new_page()
        await wall.goto(server.url("/wall"))
        await wall.wait_for_selector(".conn[data-state=live]")

        post = make_post(1, text="Pre-moderated hello")
        await server.publish(post)
        item = f'#queue li[data-id="{post.id}"]'
        await alice.wait_for_selector(f"{item}.state-pending", timeout=5000)
        await bob.wait_for_selector(f"{item}.state-pending", timeout=5000)
        await wall.wait_for_timeout(500)
        assert await wall.locator(".card").count() == 0  # nothing unapproved on the projector

        await alice.keyboard.press("j")  # select the first post, then approve it
        await alice.keyboard.press("a")
        await wall.wait_for_selector(f'.card[data-id="{post.id}"]', timeout=1500)
        await bob.wait_for_selector(f"{item}.state-visible", timeout=1500)

        await alice.fill("#announcement", "Lunch is served in the hall")
        await alice.click("#announce-form button[type=submit]")
        await wall.wait_for_selector(
            "#announce:not([hidden]) >> text=Lunch is served", timeout=1500
        )

        await alice.click(f"{item} button:has-text('Pin')")
        await wall.wait_for_selector(
            f'#pinned:not([hidden]) .card[data-id="{post.id}"]', timeout=1500
        )

        await bob.click(f"{item} button:has-text('Hide')")
        await wall.wait_for_function(
            f"() => !document.querySelector('#cards .card[data-id=\"{post.id}\"]')", timeout=1500
        )
        await alice.wait_for_selector(f"{item}.state-hidden", timeout=1500)
        audit = await server.app[RUNTIME].store.audit_log(50)
        actions = [entry["action"] for entry in audit]
        for action in ("settings", "approve", "pin", "hide"):
            assert action in actions, actions
    finally:
        await server.stop()


async def test_the_session_grid_edits_the_wall_banner_and_posts_get_overrides(
    tmp_path: Path, browser: Browser
) -> None:
    from datetime import UTC, datetime, timedelta

    server = LiveServer(tmp_path, env={"BACKCHANNEL_WEB_ADMIN_TOKEN": TOKEN})
    await server.start()
    try:
        admin = await moderator(browser, server)
        wall = await (await browser.new_context()).new_page()
        await wall.goto(server.url("/wall"))
        await wall.wait_for_selector(".conn[data-state=live]")
        now = datetime.now(UTC)  # the test config's event zone is UTC
        form = admin.locator("#session-form")
        await form.locator("input[name=title]").fill("Repair café")
        await form.locator("input[name=room]").fill("Room B")
        await form.locator("input[name=start]").fill(
            (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
        )
        await form.locator("input[name=end]").fill(
            (now + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M")
        )
        await form.locator("input[name=leaders]").fill("Mika")
        await form.locator("button[type=submit]").click()
        # The grid shows it, and the projector's "Now" banner changes at once.
        cell = admin.locator(".session-cell", has_text="Repair café")
        await cell.wait_for(timeout=5000)
        await wall.wait_for_selector("#now:not([hidden])", timeout=5000)
        assert "Repair café (Room B)" in (await wall.locator(".now-text").text_content() or "")
        # Editing the title in the grid updates the banner too.
        await cell.click()
        await form.locator("input[name=title]").fill("Repair café, round two")
        await form.locator("button[type=submit]").click()
        await wall.wait_for_function(
            "() => document.querySelector('.now-text').textContent.includes('round two')",
            timeout=5000,
        )
        # A post's session select lists the session; choosing it stores the override.
        post = make_post(7, text="Fixing a kettle")
        await server.publish(post)
        item = admin.locator(f'.admin-item[data-id="{post.id}"]')
        await item.wait_for(timeout=5000)
        session_id = await admin.locator(".session-cell").first.get_attribute("data-id")
        await item.locator("select.session-select").select_option(session_id)
        store = server.app[RUNTIME].store
        for _ in range(100):
            stored = await store.get(post.id)
            if stored is not None and stored.session == session_id:
                break
            await admin.wait_for_timeout(50)
        assert stored is not None and stored.session == session_id
    finally:
        await server.stop()
