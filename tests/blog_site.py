# ruff: noqa: E501 - realistic HTML has long lines
"""A small loopback blog host for the link tests: realistic posts (OpenGraph, JSON-LD
with @graph, h-entry), a shortener redirect chain, a PDF, same-site and cross-site
rel=canonical, a tag feed with ETag/Last-Modified, and pages for Webmention checks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WP_POST = """<!doctype html>
<html lang="en-GB"><head>
<meta charset="UTF-8">
<title>Moderation without burnout &#8211; Aoife writes</title>
<link rel="canonical" href="{base}/2026/11/22/moderation-notes/">
<link rel="alternate" type="application/rss+xml" title="Aoife writes &raquo; Feed" href="{base}/feed/">
<meta property="og:locale" content="en_GB">
<meta property="og:type" content="article">
<meta property="og:title" content="Moderation without burnout: notes from BlueLightCamp 2026">
<meta property="og:description" content="What we learned about rotas, shared block lists and looking after moderators.">
<meta property="og:url" content="{base}/2026/11/22/moderation-notes/">
<meta property="og:site_name" content="Aoife writes">
<meta property="article:published_time" content="2026-11-22T08:30:00+00:00">
<meta property="og:image" content="/wp-content/uploads/2026/11/rota.png">
<meta name="author" content="Aoife Byrne">
<script type="application/ld+json">{{"@context":"https://schema.org","@graph":[
 {{"@type":"WebSite","@id":"{base}/#website","name":"Aoife writes"}},
 {{"@type":"BlogPosting","headline":"Moderation without burnout","datePublished":"2026-11-22T08:30:00+00:00",
   "author":{{"@type":"Person","name":"Aoife Byrne"}},"publisher":{{"@type":"Organization","name":"Aoife writes"}}}}
]}}</script>
</head><body class="post-template-default single">
<header><a href="{base}/">Aoife writes</a><nav><a href="{base}/about/">About</a></nav></header>
<main><article class="post"><h1>Moderation without burnout</h1>
<p>Yesterday at #BlueLightCamp we talked about moderator rotas.</p>
<p>Thanks to everyone in room B.</p></article></main>
</body></html>"""

HUGO_POST = """<!DOCTYPE html><html><head>
<title>Local-first software at BlueLightCamp | mika's notes</title>
<meta name="description" content="Notes and follow-up reading on CRDTs and sync.">
</head><body>
<article class="h-entry">
  <h1 class="p-name">Local-first software at BlueLightCamp</h1>
  <a class="p-author h-card" href="/"><span class="p-name">Mika Tanaka</span></a>
  <time class="dt-published" datetime="2026-11-21T19:02:00+01:00">21 Nov</time>
  <div class="e-content"><p>Session D1 was about sync engines.</p></div>
</article></body></html>"""

OLD_ARTICLE = """<html><head><meta property="og:type" content="article">
<meta property="og:title" content="Why CRDTs matter">
<meta property="article:published_time" content="2019-03-02T10:00:00Z">
</head><body><p>An old essay.</p></body></html>"""

HOME_PAGE = """<html><head><title>Lars' workshop</title>
<meta property="og:type" content="website"></head><body>Welcome</body></html>"""

CROSS_CANONICAL = """<html><head><meta property="og:type" content="article">
<link rel="canonical" href="https://elsewhere.example/stolen">
<meta property="og:title" content="Syndicated: my BlueLightCamp notes">
</head><body>copy</body></html>"""

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Bea escribe</title><link>{base}/</link>
<description>Notas</description>
{items}
</channel></rss>"""

ITEM = """<item><title>{title}</title><link>{base}/{slug}/?utm_source=rss&amp;utm_medium=rss</link>
<dc:creator><![CDATA[Bea Ortiz]]></dc:creator><pubDate>{date}</pubDate>
<description><![CDATA[<p>{summary} <a href="https://x.example/">more</a></p>]]></description></item>"""


@dataclass
class BlogSite:
    hits: Counter[str] = field(default_factory=Counter)
    feed_items: list[dict[str, str]] = field(default_factory=list)
    etag: str = '"v1"'
    not_modified: int = 0
    mention_pages: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        base = f"http://{request.host}"
        html = lambda text: web.Response(text=text, content_type="text/html")  # noqa: E731
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nDisallow: /private/\n")
        if path == "/s/abc":  # a shortener: two hops to the post, with tracking on the way
            raise web.HTTPMovedPermanently(f"{base}/r/abc")
        if path == "/r/abc":
            raise web.HTTPFound(f"{base}/2026/11/22/moderation-notes/?utm_source=short&fbclid=x")
        if path == "/s/pdf":
            raise web.HTTPFound(f"{base}/files/slides.pdf")
        if path == "/files/slides.pdf":
            return web.Response(body=b"%PDF-1.7 ...", content_type="application/pdf")
        if path.startswith("/2026/11/22/moderation-notes"):
            return html(WP_POST.format(base=base))
        if path == "/local-first-at-blc26":
            return html(HUGO_POST)
        if path == "/essays/crdts":
            return html(OLD_ARTICLE)
        if path == "/":
            return html(HOME_PAGE)
        if path == "/syndicated":
            return html(CROSS_CANONICAL)
        if path == "/private/secret":
            return html("<title>secret</title>")
        if path == "/tag/blc26/feed/":
            return self.feed(request, base)
        if path == "/broken/feed/":
            return web.Response(text="<html><body>not a feed", content_type="text/plain")
        if path in self.redirects:
            raise web.HTTPFound(self.redirects[path])
        if path in self.mention_pages:
            return html(self.mention_pages[path].format(base=base))
        if path == "/gone":
            return web.Response(status=410, text="gone", content_type="text/html")
        raise web.HTTPNotFound()

    def feed(self, request: web.Request, base: str) -> web.Response:
        if request.headers.get("If-None-Match") == self.etag:
            self.not_modified += 1
            return web.Response(status=304, headers={"ETag": self.etag})
        items = "\n".join(ITEM.format(base=base, **item) for item in self.feed_items)
        return web.Response(
            text=FEED.format(base=base, items=items),
            content_type="application/rss+xml",
            headers={"ETag": self.etag, "Last-Modified": "Sun, 22 Nov 2026 09:00:00 GMT"},
        )


def feed_item(slug: str, title: str, date: str, summary: str = "Notas de la sesión.") -> Any:
    return {"slug": slug, "title": title, "date": date, "summary": summary}
