"""/digest, /digest.md, /digest.json, /digest.atom: the digest, built on request."""

from __future__ import annotations

from aiohttp import web
from feedgen.feed import FeedGenerator
from markupsafe import Markup

from aggregator.digest.build import Digest
from aggregator.digest.command import load_schedule, make_digest
from aggregator.digest.render import activity_svg, to_json, to_markdown
from web.feed import xml_clean
from web.keys import CONFIG, RUNTIME
from web.pages import environment, public_base


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


async def digest_atom(request: web.Request) -> web.Response:
    """New write-ups as an Atom feed: the digest keeps growing for days after the event."""
    digest = await _digest(request)
    base = public_base(request)
    event = digest.data["event"]
    feed = FeedGenerator()
    feed.id(f"{base}/digest.atom")
    feed.title(f"{event['name']}: write-ups")
    feed.link(href=f"{base}/digest.atom", rel="self")
    feed.link(href=f"{base}/digest", rel="alternate")
    feed.updated(event["generated"])
    for writeup in digest.data["writeups"]:
        first = digest.posts.get(writeup["posts"][0]) if writeup["posts"] else None
        entry = feed.add_entry(order="append")
        entry.id(writeup["url"])
        entry.title(xml_clean(writeup["title"] or writeup["url"]))
        entry.link(href=writeup["url"])
        entry.updated(first.created_at if first else event["generated"])
        if writeup.get("description"):
            entry.summary(xml_clean(writeup["description"]))
        if first is not None:
            entry.author({"name": xml_clean(first.author.name or first.author.handle)})
    return web.Response(
        body=feed.atom_str(pretty=True), content_type="application/atom+xml", charset="utf-8"
    )
