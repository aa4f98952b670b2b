"""The Webmention receiver (W3C): request checks, asynchronous verification through the
guarded fetcher, valid / no-link-back / spoofed / private-address sources, withdrawal,
rate limit, discovery (HTML <link> and HTTP Link header), and the digest outputs."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from blog_site import BlogSite

from aggregator.config import load_config
from web.app import create_app
from web.webmention import RECEIVER, ours

ATOM = "{http://www.w3.org/2005/Atom}"
LINKING = """<!doctype html><html><head><title>Notes</title>
<meta property="og:type" content="article">
<meta property="og:title" content="My BlueLightCamp notes, with the digest">
<meta name="author" content="Fern Ade">
<meta property="article:published_time" content="2026-11-22T12:00:00Z"></head>
<body><article class="h-entry"><p>The organisers published
<a href="{target}">the digest</a>.</p></article></body></html>"""
NO_LINK = "<html><body><p>I mention the digest but do not link it.</p></body></html>"


@pytest.fixture
async def blog() -> AsyncIterator[tuple[BlogSite, str]]:
    site = BlogSite()
    server = TestServer(site.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield site, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


def make_config(tmp_path: Path, **digest: Any):  # type: ignore[no-untyped-def]
    return load_config(env={}).with_overrides(
        event={"name": "BlueLightCamp 2026", "hashtags": ["blc26"]},
        storage={"url": f"sqlite:///{tmp_path}/wm.db"},
        bluesky={"mode": "off"},
        digest={"fetch_private_addresses": True} | digest,
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(make_config(tmp_path, webmention_rate=5), ingest=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def digest_url(client: TestClient) -> str:  # type: ignore[type-arg]
    return f"http://127.0.0.1:{client.server.port}/digest"


async def mention(client: TestClient, source: str, target: str) -> int:  # type: ignore[type-arg]
    resp = await client.post("/webmention", data={"source": source, "target": target})
    status = resp.status
    await client.app[RECEIVER].drain()
    return status


async def test_digest_advertises_the_endpoint(client: TestClient) -> None:  # type: ignore[type-arg]
    for path in ("/digest", "/digest.json", "/digest.md", "/digest.atom"):
        resp = await client.get(path)
        assert resp.headers["Link"].endswith('/webmention>; rel="webmention"'), path
    html = await (await client.get("/digest")).text()
    assert (
        f'<link rel="webmention" href="http://127.0.0.1:{client.server.port}/webmention">' in html
    )


async def test_valid_mention_is_listed_in_json_and_atom(
    client: TestClient,  # type: ignore[type-arg]
    blog: tuple[BlogSite, str],
) -> None:
    site, base = blog
    target = digest_url(client)
    site.mention_pages["/fern/notes"] = LINKING.replace("{target}", target)
    assert await mention(client, f"{base}/fern/notes", target) == 202
    data = await (await client.get("/digest.json")).json()
    [writeup] = data["writeups"]
    assert writeup["url"] == f"{base}/fern/notes" and writeup["source"] == "webmention"
    assert writeup["author"] == "Fern Ade" and writeup["published"] == "2026-11-22T12:00:00Z"
    atom = ET.fromstring(await (await client.get("/digest.atom")).read())
    [entry] = atom.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "My BlueLightCamp notes, with the digest"
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Fern Ade"
    html = await (await client.get("/digest")).text()
    assert '<span class="p-author">Fern Ade</span>' in html
    assert '<time class="dt-published" datetime="2026-11-22T12:00:00Z">' in html
    md = await (await client.get("/digest.md")).text()
    assert "by Fern Ade" in md and "22 Nov 2026" in md
    # A relative link resolves to the target too; the updated page no longer links: withdrawn.
    site.mention_pages["/fern/notes"] = NO_LINK
    assert await mention(client, f"{base}/fern/notes", target) == 202
    assert (await (await client.get("/digest.json")).json())["writeups"] == []


async def test_relative_link_back_counts(
    client: TestClient,  # type: ignore[type-arg]
    blog: tuple[BlogSite, str],
) -> None:
    site, base = blog
    root = f"http://127.0.0.1:{client.server.port}/"
    site.mention_pages["/rel"] = f'<base href="{root}"><p><a href="./digest">the digest</a></p>'
    assert await mention(client, f"{base}/rel", digest_url(client)) == 202
    assert client.app[RECEIVER].results[-1][2] == "verified"
    assert len((await (await client.get("/digest.json")).json())["writeups"]) == 1


async def test_no_link_back_is_rejected_and_logged(
    client: TestClient,  # type: ignore[type-arg]
    blog: tuple[BlogSite, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site, base = blog
    site.mention_pages["/nolink"] = NO_LINK
    with caplog.at_level(logging.WARNING, logger="web.webmention"):
        assert await mention(client, f"{base}/nolink", digest_url(client)) == 202
    assert "no link to the target" in caplog.text
    assert (await (await client.get("/digest.json")).json())["writeups"] == []


async def test_spoofed_sources_are_rejected(
    client: TestClient,  # type: ignore[type-arg]
    blog: tuple[BlogSite, str],
) -> None:
    site, base = blog
    target = digest_url(client)
    port = base.rsplit(":", 1)[1]
    site.mention_pages["/real"] = LINKING.replace("{target}", target)
    # 1. A source that does not link at all, claiming to mention us.
    site.mention_pages["/claims"] = "<p>Trust me, I link to the digest.</p>"
    assert await mention(client, f"{base}/claims", target) == 202
    # 2. A source on another host that only redirects to a page that does link.
    site.redirects["/hop"] = f"{base}/real"
    assert await mention(client, f"http://localhost:{port}/hop", target) == 202
    outcomes = [r[2] for r in client.app[RECEIVER].results]
    assert outcomes[0] == "no link to the target"
    assert outcomes[1].startswith("spoofed: the source redirects to another host")
    assert (await (await client.get("/digest.json")).json())["writeups"] == []


@pytest.mark.parametrize(
    ("form", "why"),
    [
        ({}, "required"),
        ({"source": "https://blog.example/a"}, "required"),
        ({"source": "ftp://blog.example/a", "target": "{digest}"}, "http(s)"),
        ({"source": "not a url", "target": "{digest}"}, "http(s)"),
        (
            {"source": "https://blog.example/a", "target": "https://other.example/digest"},
            "not this",
        ),
        ({"source": "https://blog.example/a", "target": "{root}/wall"}, "not this"),
        ({"source": "{digest}", "target": "{digest}"}, "same"),
        ({"source": "https://blog.example:99999/", "target": "{digest}"}, "http(s)"),
    ],
)
async def test_bad_requests_get_400(
    client: TestClient,  # type: ignore[type-arg]
    form: dict[str, str],
    why: str,
) -> None:
    root = f"http://127.0.0.1:{client.server.port}"
    data = {k: v.format(digest=f"{root}/digest", root=root) for k, v in form.items()}
    resp = await client.post("/webmention", data=data)
    assert resp.status == 400 and why in await resp.text()
    json_body = await client.post("/webmention", json={"source": "a", "target": "b"})
    assert json_body.status == 400


async def test_private_source_refused_by_the_ssrf_guard(
    tmp_path: Path, blog: tuple[BlogSite, str]
) -> None:
    site, base = blog
    app = create_app(make_config(tmp_path, fetch_private_addresses=False), ingest=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        target = digest_url(client)
        site.mention_pages["/fern/notes"] = LINKING.replace("{target}", target)
        assert await mention(client, f"{base}/fern/notes", target) == 202
        outcome = client.app[RECEIVER].results[-1][2]
        assert outcome.startswith("refused") and "private" in outcome
        assert site.hits["/fern/notes"] == 0
        assert (await (await client.get("/digest.json")).json())["writeups"] == []


async def test_rate_limited_per_source_host(
    client: TestClient,  # type: ignore[type-arg]
    blog: tuple[BlogSite, str],
) -> None:
    site, base = blog
    site.mention_pages["/n"] = NO_LINK
    codes = [await mention(client, f"{base}/n?{i}", digest_url(client)) for i in range(7)]
    assert codes == [202] * 5 + [429] * 2
    port = base.rsplit(":", 1)[1]
    other = await mention(client, f"http://localhost:{port}/n", digest_url(client))
    assert other == 202  # another host name has its own budget


def test_target_must_be_our_digest() -> None:
    assert ours("https://bc.example/digest", "https://bc.example")
    assert ours("https://bc.example/event/digest.md", "https://bc.example/event/")
    assert not ours("https://bc.example/digestive", "https://bc.example")
    assert not ours("http://bc.example/digest", "https://bc.example")
    assert not ours("https://bc.example.evil/digest", "https://bc.example")
