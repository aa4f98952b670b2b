"""GET /feed.atom: the live stream as an Atom feed for feed readers (built with feedgen)."""

from __future__ import annotations

import re

from aiohttp import web
from feedgen.feed import FeedGenerator

from aggregator.model import Post
from aggregator.store.base import PageQuery
from web.keys import CONFIG, RUNTIME
from web.pages import public_base

FEED_SIZE = 50
# XML 1.0 forbids most control characters; a post containing one must not break the feed.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_clean(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _title(post: Post) -> str:
    who = post.author.name or post.author.handle
    body = post.spoiler_text or post.text
    first = body.strip().splitlines()[0] if body.strip() else "(no text)"
    return xml_clean(f"{who}: {first[:120]}")


async def live_feed(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    page = await request.app[RUNTIME].store.page(PageQuery(limit=FEED_SIZE))
    base = public_base(request)
    feed = FeedGenerator()
    feed.id(f"{base}/feed.atom")
    feed.title(xml_clean(f"{config.event_name}: live"))
    feed.subtitle(xml_clean(" ".join(f"#{t.lstrip('#')}" for t in config.hashtags)) or "live")
    feed.link(href=f"{base}/feed.atom", rel="self")
    feed.link(href=f"{base}/", rel="alternate")
    feed.updated(page.posts[0].created_at if page.posts else "1970-01-01T00:00:00Z")
    for post in page.posts:
        entry = feed.add_entry(order="append")
        entry.id(post.id)
        entry.title(_title(post))
        entry.link(href=post.url or post.id)
        entry.published(post.created_at)
        entry.updated(post.provenance.edited_at or post.created_at)
        entry.author(
            {"name": xml_clean(post.author.name or post.author.handle), "uri": post.author.url}
        )
        if post.spoiler_text or post.sensitive:
            # Feed readers show content unasked; keep the warning in front of the text.
            entry.summary(xml_clean(f"CW: {post.spoiler_text or 'sensitive'}"))
        else:
            entry.content(xml_clean(post.html), type="html")
    body = feed.atom_str(pretty=True)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")
