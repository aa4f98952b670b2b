"""/digest, /digest.md, /digest.json: the digest, built from the store on request."""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from aggregator.digest.build import Digest
from aggregator.digest.command import load_schedule, make_digest
from aggregator.digest.render import activity_svg, to_json, to_markdown
from web.keys import CONFIG, RUNTIME
from web.pages import environment


def render_digest_html(digest: Digest, static: object = None) -> str:
    template = environment().get_template("digest.html")
    return template.render(
        d=digest.data,
        posts=digest.posts,
        chart=Markup(activity_svg(digest.data["stats"]["activity"])),  # built from numbers
    )


async def _digest(request: web.Request) -> Digest:
    config = request.app[CONFIG]
    return await make_digest(config, request.app[RUNTIME].store, load_schedule(config))


async def digest_html(request: web.Request) -> web.Response:
    html = render_digest_html(await _digest(request))
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def digest_md(request: web.Request) -> web.Response:
    return web.Response(
        text=to_markdown(await _digest(request)), content_type="text/markdown", charset="utf-8"
    )


async def digest_json(request: web.Request) -> web.Response:
    return web.Response(
        text=to_json(await _digest(request)), content_type="application/json", charset="utf-8"
    )
