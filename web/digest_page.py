"""/digest, /digest.md, /digest.json, /digest.atom: the digest, built on request."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from feedgen.feed import FeedGenerator
from markupsafe import Markup

from aggregator.digest.build import Digest
from aggregator.digest.command import make_digest
from aggregator.digest.render import activity_svg, links_by_kind, to_json, to_markdown
from web.feed import xml_clean
from web.keys import CONFIG, RUNTIME
from web.pages import environment, public_base


def render_digest_html(digest: Digest, static: object = None, webmention: str = "") -> str:
    template = environment().get_template("digest.html")
    return template.render(
        d=digest.data,
        posts=digest.posts,
        chart=Markup(activity_svg(digest.data["stats"]["activity"])),  # built from numbers
        webmention=webmention,
        other_kinds=links_by_kind(digest.data["links"]),
    )


def _advertise(request: web.Request, response: web.Response) -> web.Response:
    """The Webmention endpoint, in the HTTP Link header of every digest response."""
    response.headers.add("Link", f'<{public_base(request)}/webmention>; rel="webmention"')
    return response


async def _digest(request: web.Request) -> Digest:
    config = request.app[CONFIG]
    from web.sessions_admin import current_sessions

    return await make_digest(
        config, request.app[RUNTIME].store, await current_sessions(request.app)
    )


async def digest_html(request: web.Request) -> web.Response:
    endpoint = f"{public_base(request)}/webmention"
    html = render_digest_html(await _digest(request), webmention=endpoint)
    return _advertise(request, web.Response(text=html, content_type="text/html", charset="utf-8"))


async def digest_md(request: web.Request) -> web.Response:
    text = to_markdown(await _digest(request))
    return _advertise(
        request, web.Response(text=text, content_type="text/markdown", charset="utf-8")
    )


async def digest_json(request: web.Request) -> web.Response:
    text = to_json(await _digest(request))
    return _advertise(
        request, web.Response(text=text, content_type="application/json", charset="utf-8")
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
        # When we learnt of it: the first post sharing it, else the feed/Webmention date.
        seen = first.created_at if first else writeup.get("published") or event["generated"]
        entry.updated(_aware(seen, event["generated"]))
        if writeup.get("published"):
            entry.published(_aware(writeup["published"], event["generated"]))
        if writeup.get("description"):
            entry.summary(xml_clean(writeup["description"]))
        author = writeup.get("author") or (
            (first.author.name or first.author.handle) if first else None
        )
        if author:
            entry.author({"name": xml_clean(author)})
        entry.category(term=writeup.get("source") or "post")
    response = web.Response(
        body=feed.atom_str(pretty=True), content_type="application/atom+xml", charset="utf-8"
    )
    return _advertise(request, response)


def _aware(iso: str, fallback: str) -> str:
    """feedgen needs a time zone; a page's date without one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
