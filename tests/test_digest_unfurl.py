"""Unfurling against a loopback blog host: shortener chains expanded (every hop through the
guarded fetcher), same-site rel=canonical trusted and cross-site ignored, metadata read,
results cached in the store (a second run fetches nothing), the CLI's progress bar, and
private addresses refused unless the config allows loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from blog_site import BlogSite
from factories import make_post

from aggregator.digest.fetch import LOOPBACK, GuardedFetcher
from aggregator.digest.links import SharedLink, collect_links
from aggregator.digest.unfurl import Unfurler
from aggregator.model import Link
from aggregator.store import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def blog() -> AsyncIterator[tuple[BlogSite, str]]:
    site = BlogSite()
    server = TestServer(site.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield site, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "links.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def shared(*urls: str) -> list[SharedLink]:
    posts = [make_post(i, links=(Link(u),)) for i, u in enumerate(urls, start=1)]
    return list(collect_links(posts).values())


async def test_unfurl_expands_redirects_reads_metadata_and_caches(
    blog: tuple[BlogSite, str], store: SQLiteStore
) -> None:
    site, base = blog
    links = shared(
        f"{base}/s/abc",
        f"{base}/local-first-at-blc26",
        f"{base}/s/pdf",
        f"{base}/syndicated",
        f"{base}/private/secret",
        f"{base}/missing",
    )
    async with GuardedFetcher(allowed=LOOPBACK) as fetcher:
        unfurler = Unfurler(fetcher, concurrency=3)
        todo = unfurler.pending(links, await store.link_meta())
        assert len(todo) == 6
        done: list[int] = []
        rows = await unfurler.run(todo, store, advance=lambda: done.append(1))
    assert len(done) == 6
    by_url = {r["url"]: r for r in rows}
    short = by_url[f"{base}/s/abc"]
    # Two redirects, tracking parameters dropped, then the same-site rel=canonical.
    assert short["final"] == f"{base}/2026/11/22/moderation-notes/"
    assert short["meta"]["author"] == "Aoife Byrne" and short["meta"]["og_type"] == "article"
    assert site.hits["/s/abc"] == site.hits["/r/abc"] == 1
    assert by_url[f"{base}/s/pdf"]["final"] == f"{base}/files/slides.pdf"
    # A canonical on another site is not trusted: the page keeps its own address.
    assert by_url[f"{base}/syndicated"]["final"] == f"{base}/syndicated"
    assert by_url[f"{base}/private/secret"]["status"] == "refused"  # robots.txt
    assert by_url[f"{base}/missing"]["status"] == "error"
    stored = await store.link_meta()
    assert set(stored) == set(by_url)
    # The next run (another day) fetches only what failed, and not before retry_after.
    async with GuardedFetcher(allowed=LOOPBACK) as fetcher:
        assert Unfurler(fetcher).pending(links, stored) == []
        later = Unfurler(fetcher, clock=lambda: datetime(2100, 1, 1, tzinfo=UTC))
        assert {x.url for x in later.pending(links, stored)} == {
            f"{base}/private/secret",
            f"{base}/missing",
        }


async def test_platform_preview_saves_a_fetch_when_the_url_tells_the_kind(
    blog: tuple[BlogSite, str], store: SQLiteStore
) -> None:
    posts = [
        make_post(1, links=(Link("https://speakerdeck.com/sigrid/own", "Own your posts"),)),
        make_post(2, links=(Link("https://github.com/lars/sensor"),)),  # no preview: fetch
    ]
    links = list(collect_links(posts).values())
    async with GuardedFetcher(allowed=LOOPBACK) as fetcher:
        todo = Unfurler(fetcher).pending(links, {})
    assert [x.url for x in todo] == ["https://github.com/lars/sensor"]


async def test_private_addresses_are_refused_without_the_test_switch(
    blog: tuple[BlogSite, str], store: SQLiteStore
) -> None:
    site, base = blog
    async with GuardedFetcher() as fetcher:  # the production default: nothing private
        rows = await Unfurler(fetcher).run(shared(f"{base}/local-first-at-blc26"), store)
    assert rows[0]["status"] == "refused" and "private" in rows[0]["error"]
    assert site.hits["/local-first-at-blc26"] == 0


async def test_digest_cli_unfurls_with_a_progress_bar(
    blog: tuple[BlogSite, str], tmp_path: Path
) -> None:
    site, base = blog
    db = tmp_path / "event.db"
    store = SQLiteStore(db)
    await store.open()
    await store.upsert(
        [
            make_post(1, text=f"My #testcamp notes {base}/s/abc"),
            make_post(2, links=(Link(f"{base}/local-first-at-blc26", "Local-first"),)),
            make_post(3, links=(Link(f"{base}/s/pdf"),)),
        ]
    )
    await store.close()
    config = tmp_path / "event.toml"
    config.write_text(
        '[event]\nname = "BlueLightCamp 2026"\nhashtags = ["testcamp"]\n'
        f'[storage]\nurl = "sqlite:///{db}"\n[bluesky]\nmode = "off"\n'
        "[digest]\nfetch_private_addresses = true\n"
    )
    out = tmp_path / "digest.json"
    cmd = [sys.executable, "-m", "aggregator.cli", "digest", "--config", str(config)]
    # The blog host runs in this event loop: the CLI must run beside it, not block it.
    code, _, err = await run_cli(*cmd, "--format", "json", "--out", str(out))
    assert code == 0, err
    assert "unfurling links" in err and "3/3" in err
    data = json.loads(out.read_text())
    writeups = {w["url"]: w for w in data["writeups"]}
    notes = writeups[f"{base}/2026/11/22/moderation-notes/"]
    assert notes["author"] == "Aoife Byrne" and notes["site"] == "Aoife writes"
    assert notes["published"] == "2026-11-22T08:30:00Z"
    assert writeups[f"{base}/local-first-at-blc26"]["author"] == "Mika Tanaka"
    assert [x["kind"] for x in data["links"]] == ["slides"]
    hits = sum(site.hits.values())
    code, md, err = await run_cli(*cmd, "--format", "md")
    assert code == 0, err
    assert sum(site.hits.values()) == hits  # everything came from the store's cache
    assert "by Aoife Byrne, Aoife writes, 22 Nov 2026" in md
    assert "### Slides" in md


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_concurrency_is_bounded_per_host(store: SQLiteStore) -> None:
    from aiohttp import web

    active = {"now": 0, "max": 0}

    async def slow(request: web.Request) -> web.Response:
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.05)
        active["now"] -= 1
        return web.Response(text="<title>x</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{n}", slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = f"http://127.0.0.1:{server.port}"
        links = shared(*(f"{base}/{n}" for n in range(8)))
        async with GuardedFetcher(allowed=LOOPBACK, respect_robots=False) as fetcher:
            rows = await Unfurler(fetcher, concurrency=8, per_host=1).run(links, store)
    finally:
        await server.close()
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert active["max"] == 1


async def test_run_unfurls_in_the_background_when_configured(
    blog: tuple[BlogSite, str], tmp_path: Path
) -> None:
    from aiohttp.test_utils import TestClient

    from aggregator.config import load_config
    from web.app import create_app

    _, base = blog
    db = tmp_path / "bg.db"
    store = SQLiteStore(db)
    await store.open()
    await store.upsert([make_post(1, text=f"notes #testcamp {base}/local-first-at-blc26")])
    await store.close()
    config = load_config(env={}).with_overrides(
        event={"name": "BlueLightCamp 2026", "hashtags": ["testcamp"]},
        storage={"url": f"sqlite:///{db}"},
        bluesky={"mode": "off"},
        digest={"unfurl_interval": 60.0, "fetch_private_addresses": True},
    )
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        writeups: list[dict[str, object]] = []
        for _ in range(100):  # bounded: 10 s at most
            writeups = (await (await client.get("/digest.json")).json())["writeups"]
            if writeups and writeups[0]["author"]:
                break
            await asyncio.sleep(0.1)
        assert writeups and writeups[0]["author"] == "Mika Tanaka"
