"""Refresh docs/screenshots/: the wall (dark, light) and the remote view (phone, desktop).

    PYTHONPATH=. python bench/screenshots.py [--out docs/screenshots]

Runs the real app on a loopback port with a throwaway database, publishes a realistic
morning of an unconference through the inbox, and photographs the pages in Debian's
Chromium (/usr/bin/chromium). No network: avatar and photo URLs are answered by the
browser itself with generated SVGs, so the pictures look like a real event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aggregator.config import load_config  # noqa: E402
from aggregator.model import Author, Link, Media, Metrics, Post, format_timestamp  # noqa: E402
from aggregator.pipeline import RawItem  # noqa: E402
from web.app import create_app  # noqa: E402
from web.keys import RUNTIME  # noqa: E402
from web.server import start_site  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FILES = "https://files.bluelight.example"

# (platform, handle, name, minutes ago, html, media slugs, link, spoiler)
POSTS: list[tuple[str, str, str, int, str, tuple[str, ...], tuple[str, str] | None, str]] = [
    (
        "mastodon",
        "ifeoma@social.bluelight.example",
        "Ifeoma Okonkwo-Hale",
        95,
        "<p>Session board is up! Find it by the coffee, or pitch yours at 09:30. "
        '<a href="#" class="mention hashtag">#BlueLightCamp</a></p>',
        ("board",),
        None,
        "",
    ),
    (
        "bluesky",
        "tomasz.bsky.social",
        "Tomasz Wierzbicki",
        80,
        "<p>Pitching “Running a tiny Fediverse server” in Harbour at 10:00. Bring your "
        "moderation horror stories. #blc26</p>",
        (),
        None,
        "",
    ),
    (
        "mastodon",
        "lotte@mastodon.example",
        "Lotte van Dammer",
        64,
        "<p>Packed room for “Accessible maps for everyone” in Lighthouse. "
        '<a href="#" class="mention">@ifeoma</a> opens with: volunteers mapped every kerb cut '
        'in the old town in one weekend. <a href="#" class="mention hashtag">#blc26</a></p>',
        ("slide",),
        None,
        "",
    ),
    (
        "blog",
        "nina.example.org",
        "Nina Parkhurst",
        58,
        "<p>Write-up: what we learned running the first BlueLightCamp, and the three things "
        "we would do differently.</p>",
        (),
        ("https://nina.example.org/2026/blc-notes", "Notes from BlueLightCamp 2026"),
        "",
    ),
    (
        "mastodon",
        "rafa@fedi.example.org",
        "Rafael Ortigosa",
        47,
        "<p>“Accessibility data is just data nobody bothered to collect.” — Ifeoma in "
        'Lighthouse <a href="#" class="mention hashtag">#bluelightcamp</a></p>',
        (),
        None,
        "",
    ),
    (
        "bluesky",
        "priya.bsky.social",
        "Priya Ramaswell",
        39,
        "<p>Low-tech solar websites session: the whole site runs on a 10 W panel on a "
        "balcony. Page weight matters! #blc26</p>",
        ("solar",),
        None,
        "",
    ),
    (
        "mastodon",
        "sam@toot.example.net",
        "Sam Oyelaran-Pike",
        31,
        "<p>Ending of the film in the community archives session, in case you missed it.</p>",
        (),
        None,
        "spoilers: the archive documentary",
    ),
    (
        "bluesky",
        "bea.example.net",
        "Bea Sandival",
        22,
        "<p>Question from the floor in Lighthouse: how do you keep kerb data up to date when "
        "the council digs up the street? Nobody had a neat answer. #blc26</p>",
        (),
        None,
        "",
    ),
    (
        "mastodon",
        "mika@toot.example.net",
        "Mika Virtavuori",
        14,
        "<p>Running a tiny Fediverse server in Harbour: half the room is nodding, the other "
        'half is typing. <a href="#" class="mention hashtag">#BlueLightCamp</a></p>',
        ("harbour",),
        None,
        "",
    ),
    (
        "bluesky",
        "camille.example.fr",
        "Camille Rouvière",
        9,
        "<p>Lunch queue conversation turned into an impromptu session on offline-first apps. "
        "Harbour at 13:30? #blc26</p>",
        (),
        None,
        "",
    ),
    (
        "mastodon",
        "olu@social.bluelight.example",
        "Olu Adebayo",
        5,
        "<p>Slides from my lightning talk on community Wi-Fi are up. Thanks for the great "
        'questions! <a href="#" class="mention hashtag">#blc26</a></p>',
        (),
        ("https://olu.example.com/talks/community-wifi", "Community Wi-Fi in six weekends"),
        "",
    ),
    (
        "bluesky",
        "sigrid.example.no",
        "Sigrid Holmgårdh",
        2,
        "<p>Met three people from my own town I had never met at home. That's the magic of an "
        "unconference. #bluelightcamp</p>",
        (),
        None,
        "",
    ),
    (
        "mastodon",
        "ruth@toot.example.net",
        "Ruth Okafor-Lind",
        1,
        "<p>Closing circle in ten minutes in the main hall. Bring your post-its! "
        '<a href="#" class="mention hashtag">#blc26</a></p>',
        ("closing",),
        None,
        "",
    ),
]

SCENES = {
    "board": ("Session board", "#f6c453", "#f28c38", "10:00 Harbour · 10:00 Lighthouse"),
    "slide": ("Accessible maps for everyone", "#2b6cb0", "#63b3ed", "Lighthouse · 10:00"),
    "solar": ("Low-tech solar websites", "#2f855a", "#9ae6b4", "Beacon · 11:00"),
    "harbour": ("Running a tiny Fediverse server", "#553c9a", "#b794f4", "Harbour · 11:00"),
    "closing": ("Closing circle", "#c05621", "#fbd38d", "Main hall · 17:00"),
}


def build_posts(now: datetime) -> list[Post]:
    posts = []
    for n, (platform, handle, name, ago, html, media, link, spoiler) in enumerate(POSTS):
        slug = handle.split("@")[0].split(".")[0]
        if platform == "bluesky":
            pid = f"at://did:plc:{slug}/app.bsky.feed.post/3lbc{n:04d}"
            url = f"https://bsky.app/profile/{handle}/post/3lbc{n:04d}"
        elif platform == "blog":
            pid = url = link[0] if link else f"https://{handle}/{n}"
        else:
            pid = f"https://{handle.split('@')[1]}/users/{slug}/statuses/1136{n:05d}"
            url = f"https://{handle.split('@')[1]}/@{slug}/1136{n:05d}"
        posts.append(
            Post(
                id=pid,
                platform=platform,  # type: ignore[arg-type]
                url=url,
                author=Author(
                    handle=handle if platform != "mastodon" else "@" + handle,
                    name=name,
                    avatar=f"{FILES}/avatars/{slug}.png",
                    url=url,
                ),
                text=html,
                html=html,
                created_at=format_timestamp(now - timedelta(minutes=ago)),
                language="en",
                tags=("blc26",),
                spoiler_text=spoiler,
                sensitive=bool(spoiler),
                media=tuple(
                    Media(
                        "image",
                        f"{FILES}/media/{m}.jpg",
                        f"{FILES}/media/{m}.jpg",
                        alt=SCENES[m][0] + " at BlueLightCamp",
                    )
                    for m in media
                ),
                links=(Link(link[0], link[1]),) if link else (),
                metrics=Metrics(likes=n * 3 % 17),
            )
        )
    return posts


def avatar_svg(name: str) -> str:
    hue = int(hashlib.sha1(name.encode()).hexdigest()[:4], 16) % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96">'
        f'<rect width="96" height="96" fill="hsl({hue} 55% 55%)"/>'
        f'<circle cx="48" cy="38" r="18" fill="hsl({hue} 60% 85%)"/>'
        f'<ellipse cx="48" cy="92" rx="32" ry="28" fill="hsl({hue} 60% 85%)"/></svg>'
    )


def scene_svg(slug: str) -> str:
    title, dark, light, sub = SCENES.get(slug, ("BlueLightCamp", "#334", "#99a", ""))
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 360">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" '
        f'stop-color="{dark}"/><stop offset="1" stop-color="{light}"/></linearGradient></defs>'
        '<rect width="640" height="360" fill="url(#g)"/>'
        '<rect x="60" y="70" width="520" height="200" rx="14" fill="#fff" opacity=".92"/>'
        f'<text x="320" y="165" font-family="sans-serif" font-size="34" font-weight="700" '
        f'text-anchor="middle" fill="{dark}">{title}</text>'
        f'<text x="320" y="215" font-family="sans-serif" font-size="22" text-anchor="middle" '
        f'fill="#444">{sub}</text>'
        '<circle cx="120" cy="320" r="26" fill="#0003"/><circle cx="190" cy="330" r="30" '
        'fill="#0003"/><circle cx="460" cy="325" r="28" fill="#0003"/></svg>'
    )


async def answer_images(route: Any) -> None:
    """Answer the fake CDN with SVGs; anything else off-host is refused (no network)."""
    url = route.request.url
    if url.startswith(FILES):
        name = url.rsplit("/", 1)[-1].split(".")[0]
        body = avatar_svg(name) if "/avatars/" in url else scene_svg(name)
        await route.fulfill(status=200, content_type="image/svg+xml", body=body)
    else:
        await route.abort()


SHOTS = [
    # name, path, viewport, colour scheme, device scale
    ("wall-dark.png", "/wall", {"width": 1920, "height": 1080}, "dark", 1),
    ("wall-light.png", "/wall?theme=light", {"width": 1920, "height": 1080}, "light", 1),
    ("remote-light.png", "/", {"width": 390, "height": 844}, "light", 2),
    ("remote-dark.png", "/", {"width": 1280, "height": 900}, "dark", 1),
]


async def capture(
    out_dir: Path, *, browser: Any = None, storage_dir: Path | None = None
) -> list[Path]:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(storage_dir or scratch) / "screenshots.db"
        config = load_config(env={}).with_overrides(
            event={"name": "BlueLightCamp 2026", "hashtags": ["bluelightcamp", "blc26"]},
            storage={"url": f"sqlite:///{db}"},
            bluesky={"mode": "off"},
            mastodon={"servers": []},
            web={"public_url": "https://blc26.example.org"},
        )
        app = create_app(config)
        runner, port = await start_site(app, "127.0.0.1", 0)
        try:
            runtime = app[RUNTIME]
            posts = build_posts(datetime.now(UTC))
            for post in posts:
                await runtime.inbox.put(RawItem("screenshots", "post", post))
            for _ in range(200):  # the pipeline stores them within a few ticks
                if await runtime.store.count() >= len(posts):
                    break
                await asyncio.sleep(0.05)
            if browser is not None:
                return await _shoot(browser, port, out_dir)
            from playwright.async_api import async_playwright

            async with async_playwright() as playwright:
                own = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    return await _shoot(own, port, out_dir)
                finally:
                    await own.close()
        finally:
            await runner.cleanup()


async def _shoot(browser: Any, port: int, out_dir: Path) -> list[Path]:
    paths = []
    for name, path, viewport, scheme, scale in SHOTS:
        page = await browser.new_page(
            viewport=viewport,
            color_scheme=scheme,
            device_scale_factor=scale,
            reduced_motion="reduce",  # no card caught half-way through easing in
        )
        await page.route("https://**/*", answer_images)
        await page.goto(f"http://127.0.0.1:{port}{path}")
        await page.wait_for_selector('.conn[data-state="live"]')
        await page.wait_for_function(
            # Lazy images off screen never load, so only wait for the visible ones.
            "() => [...document.images].filter((i) => {"
            "  const r = i.getBoundingClientRect();"
            "  return r.top < innerHeight && r.left < innerWidth;"
            "})"
            ".every((i) => i.complete)",
            timeout=5000,
        )
        target = out_dir / name
        await page.screenshot(path=str(target))
        await page.close()
        paths.append(target)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    for path in asyncio.run(capture(args.out)):
        print(path)


if __name__ == "__main__":
    main()
