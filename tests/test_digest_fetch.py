"""The SSRF-guarded fetcher: private addresses refused directly, by DNS and by redirect;
oversize, slow and non-HTML pages cut off; robots.txt honoured. Loopback only."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aggregator.digest.fetch import FetchRefusedError, GuardedFetcher, address_allowed

HERE = ipaddress.ip_network("127.0.0.1/32")  # the only address the tests may reach


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><title>ok</title></html>", content_type="text/html")

    def redirect(target: str):  # type: ignore[no-untyped-def]
        async def handler(request: web.Request) -> web.Response:
            raise web.HTTPFound(target.replace("{port}", str(request.url.port)))

        return handler

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        for _ in range(40):  # 40 MB, sent without a length
            await resp.write(b"x" * 1024 * 1024)
        return resp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late", content_type="text/html")

    async def pdf(request: web.Request) -> web.Response:
        return web.Response(body=b"%PDF-1.7", content_type="application/pdf")

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nDisallow: /private\n")

    app.router.add_get("/page", page)
    app.router.add_get("/private/page", page)
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/pdf", pdf)
    app.router.add_get("/hop", redirect("/page"))
    for name, target in {
        "to-loopback2": "http://127.0.0.2:{port}/page",
        "to-ten": "http://10.0.0.1/page",
        "to-metadata": "http://169.254.169.254/latest/meta-data/",
        "to-v6-loopback": "http://[::1]:{port}/page",
        "to-mapped": "http://[::ffff:10.0.0.1]/page",
        "to-private-name": "http://intranet.test/page",
        "to-file": "file:///etc/passwd",
        "loop": "/loop",
    }.items():
        app.router.add_get(f"/{name}", redirect(target))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


def fetcher(**kw) -> GuardedFetcher:  # type: ignore[no-untyped-def]
    lookup = {"intranet.test": ["10.1.2.3"], "mixed.test": ["93.184.215.14", "192.168.1.1"]}
    return GuardedFetcher(allowed=(HERE,), lookup=lookup, **kw)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "2002:0a00:0001::1",
        "224.0.0.1",
        "ff02::1",
        "198.18.0.1",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address))


def test_global_addresses_are_allowed() -> None:
    assert address_allowed(ipaddress.ip_address("93.184.215.14"))
    assert address_allowed(ipaddress.ip_address("2606:4700::1111"))


async def test_allowed_page_and_same_site_redirect(site: str) -> None:
    async with fetcher() as f:
        page = await f.fetch_html(f"{site}/hop")
        assert page.url.endswith("/page") and b"<title>ok</title>" in page.body


@pytest.mark.parametrize(
    "path",
    [
        "to-loopback2",
        "to-ten",
        "to-metadata",
        "to-v6-loopback",
        "to-mapped",
        "to-private-name",
        "to-file",
        "loop",
    ],
)
async def test_redirects_to_private_places_are_refused(site: str, path: str) -> None:
    async with fetcher(respect_robots=False) as f:
        with pytest.raises(FetchRefusedError):
            await f.fetch_html(f"{site}/{path}")


async def test_direct_private_urls_and_names_are_refused() -> None:
    async with GuardedFetcher(lookup={"mixed.test": ["93.184.215.14", "192.168.1.1"]}) as f:
        for url in (
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://mixed.test/",
            "http://user:pw@example.org/",
            "ftp://example.org/",
        ):
            with pytest.raises(FetchRefusedError):
                await f.fetch_html(url)


async def test_oversize_slow_and_non_html_are_cut_off(site: str) -> None:
    async with fetcher(timeout=1.0, max_bytes=1024 * 1024) as f:
        with pytest.raises(FetchRefusedError, match="larger than"):
            await f.fetch_html(f"{site}/big")
        with pytest.raises(FetchRefusedError, match="not HTML"):
            await f.fetch_html(f"{site}/pdf")
        with pytest.raises(TimeoutError):
            await f.fetch_html(f"{site}/slow")


async def test_robots_txt_is_honoured(site: str) -> None:
    async with fetcher() as f:
        with pytest.raises(FetchRefusedError, match="robots"):
            await f.fetch_html(f"{site}/private/page")
        assert (await f.fetch_html(f"{site}/page")).status == 200
