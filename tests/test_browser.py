"""The wall (/wall) and the remote view (/) in headless Chromium against the real app.

The app runs on a loopback port with a real SQLite store; posts go in through the same
inbox the sources use, so every card here travelled store -> bus -> fan-out -> websocket.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI
from factories import make_post

from aggregator.model import Author, Link, Media, Post

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

try:
    from aggregator.sanitise import sanitise_html
except ImportError:  # pragma: no cover - the sanitiser is optional for these tests
    sanitise_html = None

pytestmark = pytest.mark.browser

from browser_support import (  # noqa: E402
    LIVE_TIMEOUT_MS,
    LiveServer,
    launch_chromium,
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    live = LiveServer(tmp_path)
    await live.start()
    yield live
    await live.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


async def open_page(browser: Browser, url: str, **options: Any) -> tuple[Page, list[str]]:
    """A page that records dialogs and script errors; waits until the stream is live."""
    page = await browser.new_page(**options)
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: dialogs.append(f"pageerror: {error}"))
    await page.goto(url)
    await page.wait_for_selector('.conn[data-state="live"]', timeout=5000)
    return page, dialogs


# Page functions are passed as functions: a bare expression would need eval(), which the
# pages' CSP forbids.
count_is = "(n) => document.querySelectorAll('article.card').length === n"


def card(page: Page, post_id: str) -> Any:
    return page.locator(f'article.card[data-id="{post_id}"]')


def at_post(n: int, **changes: Any) -> Post:
    """A Bluesky post (the factory makes Mastodon ones)."""
    return make_post(
        n,
        id=f"at://did:plc:bob/app.bsky.feed.post/3k{n:04d}",
        platform="bluesky",
        url=f"https://bsky.app/profile/bob.example/post/3k{n:04d}",
        author=Author(handle="bob.example", name="Bob", url="https://bsky.app/profile/bob.example"),
        **changes,
    )


# --------------------------------------------------------------------------- live stream


async def test_live_post_appears_updates_in_place_and_retracts(
    server: LiveServer, browser: Browser
) -> None:
    wall, wall_dialogs = await open_page(browser, server.url("/wall"))
    remote, remote_dialogs = await open_page(browser, server.url("/"))
    post = make_post(1)
    await server.publish(post)
    for page in (wall, remote):
        await card(page, post.id).wait_for(timeout=LIVE_TIMEOUT_MS)
        assert "post number 1" in await card(page, post.id).inner_text()

    edited = post.with_changes(html="<p>edited text #testcamp</p>", text="edited text")
    await server.publish(edited)
    for page in (wall, remote):
        await page.wait_for_function(
            "id => document.querySelector(`article[data-id='${id}'] .text`)"
            "?.textContent.includes('edited text')",
            arg=post.id,
            timeout=LIVE_TIMEOUT_MS,
        )
        assert await card(page, post.id).count() == 1  # replaced, not duplicated

    await server.delete(post.id)
    for page in (wall, remote):
        await card(page, post.id).wait_for(state="detached", timeout=LIVE_TIMEOUT_MS)
    assert wall_dialogs == [] and remote_dialogs == []


async def test_wall_options_and_bounded_dom(server: LiveServer, browser: Browser) -> None:
    await server.publish(make_post(3), at_post(4))
    wall, _ = await open_page(
        browser, server.url("/wall?platform=bluesky&media=0&columns=2&theme=light")
    )
    await wall.wait_for_function(count_is, arg=1)
    assert await card(wall, at_post(4).id).count() == 1
    body_class = await wall.get_attribute("body", "class") or ""
    assert {"theme-light", "hide-media", "fixed-columns"} <= set(body_class.split())
    column_count = "() => getComputedStyle(document.getElementById('cards')).columnCount"
    assert await wall.evaluate(column_count) == "2"

    await server.publish(*(at_post(n) for n in range(10, 80)))  # 70 more, live
    await card(wall, at_post(79).id).wait_for(timeout=LIVE_TIMEOUT_MS)
    assert await wall.locator("article.card").count() == 60  # the oldest were dropped
    assert await wall.locator("article.card[data-platform='mastodon']").count() == 0
    assert not await wall.locator(".media").first.is_visible()


# --------------------------------------------------------------------------- safety


def hostile_post() -> Post:
    payload = '<script>alert("html")</script><img src=x onerror=alert("img")><p>still here</p>'
    html = sanitise_html(payload) if sanitise_html is not None else "<p>still here</p>"
    return make_post(
        7,
        html=html + '<p><a href="https://ok.example/">fine link</a></p>',
        text="still here",
        url="javascript:alert('url')",
        language='en" onmouseover="alert(1)',
        author=Author(
            handle="<script>alert('handle')</script>",
            name='<img src=x onerror=alert("name")>',
            avatar="javascript:alert('avatar')",
            url="javascript:alert('author')",
        ),
        media=(
            Media("image", "javascript:alert('media')", alt='"><img src=x onerror=alert(1)>'),
            Media("image", "https://media.example/ok.jpg", alt='"><img src=x onerror=alert(2)>'),
        ),
        links=(Link("javascript:alert('link')", title="<script>alert('title')</script>"),),
    )


INJECTED = """() => {
  const root = document.getElementById('cards');
  const found = [];
  for (const el of root.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) found.push(`${el.tagName} ${attr.name}`);
      if (/^\\s*javascript:/i.test(attr.value)) found.push(`${el.tagName} ${attr.name}=js`);
    }
    if (el.tagName === 'SCRIPT') found.push('SCRIPT');
    if (el.tagName === 'IMG' && !['avatar', 'media-img'].includes(el.className)) {
      found.push(`IMG ${el.className}`);
    }
  }
  return found;
}"""


async def test_hostile_post_renders_inert_live_and_server_side(
    server: LiveServer, browser: Browser
) -> None:
    post = hostile_post()
    for path in ("/wall", "/"):
        # Without the CSP, so that only the rendering stands between a payload and a dialog.
        page, dialogs = await open_page(browser, server.url(path), bypass_csp=True)
        if path == "/wall":
            await server.publish(post)  # the first page sees it live ...
        await card(page, post.id).wait_for(timeout=LIVE_TIMEOUT_MS)
        await page.hover(f'article.card[data-id="{post.id}"] .text')
        await page.wait_for_timeout(300)  # give any handler a chance to fire
        assert await page.evaluate(INJECTED) == []
        one = card(page, post.id)
        assert await one.locator(".name").inner_text() == post.author.name
        assert await one.locator(".handle").inner_text() == "@" + post.author.handle
        assert "still here" in await one.locator(".text").inner_text()
        assert await one.locator("a.permalink").count() == 0  # javascript: URL dropped
        assert dialogs == []
        await page.close()
        # ... and the second page gets it rendered by the server.


async def test_content_warning_hides_the_body(server: LiveServer, browser: Browser) -> None:
    post = make_post(
        3, spoiler_text="keynote spoilers", html="<p>the butler did it</p>", text="the butler"
    )
    wall, _ = await open_page(browser, server.url("/wall"))
    remote, _ = await open_page(browser, server.url("/"))
    await server.publish(post)
    for page in (wall, remote):
        one = card(page, post.id)
        await one.wait_for(timeout=LIVE_TIMEOUT_MS)
        assert await one.locator(".cw-text").inner_text() == "keynote spoilers"
        assert not await one.locator(".text").is_visible()
        assert not await one.locator(".media").is_visible()

    await card(remote, post.id).locator("summary").click()
    assert await card(remote, post.id).locator(".text").is_visible()
    # The projector never opens it, not even when clicked.
    await card(wall, post.id).locator("summary").click(force=True)
    assert not await card(wall, post.id).locator(".text").is_visible()


# --------------------------------------------------------------------------- the same card twice


NORMALISE = """(node) => {
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) return n.textContent.trim() || null;
    const attrs = [...n.attributes].map((a) => `${a.name}=${a.value}`).sort();
    const kids = [...n.childNodes].map(walk).filter((k) => k !== null);
    return [n.tagName.toLowerCase(), attrs, kids];
  };
  return walk(node);
}"""

SAME_CARD = f"""async ([path, id, mediaLimit]) => {{
  const normalise = {NORMALISE};
  const html = await (await fetch(path)).text();
  const doc = new DOMParser().parseFromString(html, 'text/html');  // inert: nothing loads
  const server = [...doc.querySelectorAll('article.card')].find((c) => c.dataset.id === id);
  const api = await (await fetch('/api/posts?limit=5')).json();
  const post = api.posts.find((p) => p.id === id);
  const {{ renderCard }} = await import(document.body.dataset.common);
  return [normalise(server), normalise(renderCard(post, {{ mediaLimit }}))];
}}"""


@pytest.mark.parametrize(
    "post",
    [
        make_post(
            3,
            language="en",
            media=(
                Media("image", "https://media.example/a.jpg", "https://media.example/a_s.jpg", "A"),
                Media("video", "https://media.example/b.mp4", "https://media.example/b.jpg", ""),
            ),
            links=(
                Link("https://blog.example/x?a=1&b=2", title=None),
                Link("https://blog.example/y?a=1&b=2", title="Notes & slides"),
            ),
            author=Author("@alice@social.example", "Alice", "https://social.example/a.png"),
        ),
        at_post(5, spoiler_text="cw", sensitive=True, language=None),
    ],
    ids=["media-and-link", "content-warning"],
)
async def test_live_card_markup_matches_server_card(
    server: LiveServer, browser: Browser, post: Post
) -> None:
    await server.publish(post)
    page, _ = await open_page(browser, server.url("/"))
    for path, limit in (("/", 4), ("/wall", 1)):
        rendered, built = await page.evaluate(SAME_CARD, [path, post.id, limit])
        assert rendered == built, path


# --------------------------------------------------------------------------- remote view


async def test_remote_new_posts_pill_infinite_scroll_and_filters(
    server: LiveServer, browser: Browser
) -> None:
    await server.publish(
        *(make_post(n) for n in range(1, 51)), *(at_post(n) for n in range(51, 56))
    )
    remote, dialogs = await open_page(
        browser, server.url("/"), viewport={"width": 390, "height": 844}, reduced_motion="reduce"
    )
    assert await remote.locator("article.card").count() == 40

    # Scrolling to the end loads the older page, then says there is nothing more.
    await remote.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await remote.wait_for_function(count_is, arg=55)
    await remote.get_by_text("No older posts.").wait_for()

    # Scrolled down, a new post waits behind the pill instead of moving the page.
    await remote.evaluate("window.scrollTo(0, 3000)")
    fresh = make_post(60)
    await server.publish(fresh)
    pill = remote.locator("#new-pill")
    await pill.wait_for(state="visible", timeout=LIVE_TIMEOUT_MS)
    assert re.fullmatch(r"\s*1\s+new post\s*", await pill.inner_text())
    assert await card(remote, fresh.id).count() == 0
    assert await remote.evaluate("window.scrollY") > 2000
    await remote.wait_for_function(
        "() => document.getElementById('announcer').textContent.includes('1 new post')"
    )
    await pill.click()
    await card(remote, fresh.id).wait_for()
    assert await remote.evaluate("window.scrollY") == 0
    assert await remote.evaluate("document.activeElement.dataset.id") == fresh.id
    assert not await pill.is_visible()

    # Filters re-read the list from the API and apply to live posts too.
    await remote.select_option("select[name=platform]", "bluesky")
    await remote.wait_for_function(count_is, arg=5)
    assert "platform=bluesky" in remote.url
    await server.publish(make_post(61), at_post(62))
    await card(remote, at_post(62).id).wait_for(timeout=LIVE_TIMEOUT_MS)
    assert await card(remote, make_post(61).id).count() == 0

    await remote.select_option("select[name=platform]", "")
    await remote.fill("input[name=q]", "number 7")
    await remote.wait_for_function(
        "() => [...document.querySelectorAll('article.card .text')]"
        ".every((t) => t.textContent.includes('number 7'))"
        " && document.querySelectorAll('article.card').length > 0"
    )
    assert dialogs == []


# --------------------------------------------------------------------------- reconnect


async def test_pages_reconnect_after_a_server_restart(server: LiveServer, browser: Browser) -> None:
    await server.publish(make_post(1))
    wall, _ = await open_page(browser, server.url("/wall"))
    remote, _ = await open_page(browser, server.url("/"))

    await server.stop()
    for page in (wall, remote):
        await page.wait_for_selector('.conn[data-state="reconnecting"]', timeout=5000)
    await server.start()  # same port, same database
    missed = make_post(2)
    await server.publish(missed)  # most likely before the pages are back: resumed by cursor
    for page in (wall, remote):
        await page.wait_for_selector('.conn[data-state="live"]', timeout=10_000)
        await card(page, missed.id).wait_for(timeout=LIVE_TIMEOUT_MS)
    live = make_post(3)
    await server.publish(live)
    for page in (wall, remote):
        await card(page, live.id).wait_for(timeout=LIVE_TIMEOUT_MS)
        assert await page.locator("article.card").count() == 3


async def test_resync_rereads_the_list(
    server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    await server.publish(*(make_post(n) for n in range(1, 6)))
    wall, wall_errors = await open_page(browser, server.url("/wall"))
    remote, remote_errors = await open_page(browser, server.url("/"))

    # A fresh database: the pages' cursor is now one the server never issued -> resync.
    await server.stop()
    server.config = server.config.with_overrides(storage={"url": f"sqlite:///{tmp_path}/new.db"})
    await server.start()
    fresh = at_post(9)
    await server.publish(fresh)
    for page in (wall, remote):
        await page.wait_for_function(count_is, arg=1, timeout=10_000)
        assert await card(page, fresh.id).count() == 1
    live = at_post(10)
    await server.publish(live)
    for page in (wall, remote):
        await card(page, live.id).wait_for(timeout=LIVE_TIMEOUT_MS)
    assert wall_errors == [] and remote_errors == []


# --------------------------------------------------------------------------- screenshots


async def test_screenshot_script_runs(tmp_path: Path, browser: Browser) -> None:
    """bench/screenshots.py (which refreshes docs/screenshots) keeps working."""
    from bench.screenshots import capture

    paths = await capture(tmp_path / "shots", browser=browser, storage_dir=tmp_path)
    assert sorted(p.name for p in paths) == [
        "remote-dark.png",
        "remote-light.png",
        "wall-dark.png",
        "wall-light.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in paths)
