"""Digest outputs that need no template: Markdown for bloggers, JSON, an SVG chart."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson

from aggregator.digest.build import Digest

BARS = " ▁▂▃▄▅▆▇█"


def to_json(digest: Digest) -> str:
    # orjson: the same indented UTF-8 JSON as json.dumps(indent=2), ~10x faster, which
    # is most of a 1M-post digest's rendering time.
    return orjson.dumps(digest.data, option=orjson.OPT_INDENT_2).decode() + "\n"


def _md_escape(text: str) -> str:
    # Post text is plain; keep Markdown from reading it as markup.
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def _time(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M")


def sparkline(activity: list[dict[str, Any]]) -> str:
    peak = max((a["posts"] for a in activity), default=0)
    if not peak:
        return ""
    return "".join(BARS[round(a["posts"] / peak * (len(BARS) - 1))] for a in activity)


def to_markdown(digest: Digest) -> str:
    d = digest.data
    event, stats, posts = d["event"], d["stats"], digest.posts
    tags = " ".join(f"#{t}" for t in event["hashtags"])
    out = [
        "---",
        f"title: {json.dumps(event['name'] + ': the backchannel digest', ensure_ascii=False)}",
        f"date: {event['generated']}",
        f"tags: [{', '.join(json.dumps(t) for t in event['hashtags'])}]",
        "---",
        "",
        f"# {_md_escape(event['name'])}: what people said",
        "",
        f"{stats['posts']} posts by {stats['people']} people on "
        f"{', '.join(f'{k} ({v})' for k, v in sorted(stats['platforms'].items()))}, "
        f"{stats['quotes']} quotes, {stats['writeups']} write-ups. Hashtags: {tags}.",
        "",
    ]
    if stats["activity"]:
        out += [f"Activity by hour: `{sparkline(stats['activity'])}`", ""]
    if d["quotes"]:
        out += ["## Quotes", ""]
        for quote in d["quotes"][:15]:
            who = f" — {quote['speaker']}" if quote["speaker"] else ""
            by = len(quote["posts"])
            note = f" (quoted by {by} people)" if by > 1 else ""
            out.append(f"> “{_md_escape(quote['text'])}”{who}{note}")
            out.append("")
    for session in d["sessions"]:
        if not session["posts"]:
            continue
        out += [f"## {_md_escape(session['title'])}", ""]
        leaders = session["leaders"]
        where = f"{session['room']}, {_time(session['start'])}–{_time(session['end'])}"
        out += [f"*{where}*" + (f" · led by {', '.join(leaders)}" if leaders else ""), ""]
        for quote in session["quotes"][:3]:
            out.append(f"> “{_md_escape(quote['text'])}” — {quote['speaker']}")
            out.append("")
        for pid in session["best"]:
            post = posts[pid]
            out.append(
                f"- {_md_escape(post.text)[:280]} — [{post.author.name or post.author.handle}]"
                f"({post.url})"
            )
        for writeup in session["writeups"]:
            title = _md_escape(writeup["title"] or writeup["url"])
            out.append(f"- Write-up: [{title}]({_md_url(writeup['url'])})")
        out += ["", f"{len(session['posts'])} posts in this session.", ""]
    if d["writeups"]:
        out += ["## Write-ups", ""]
        for w in d["writeups"]:
            out.append(f"- {_md_writeup(w)}")
        out.append("")
    grouped = links_by_kind(d["links"])
    if grouped:
        out += ["## Other links", ""]
        for kind, links in grouped:
            out += [f"### {KIND_TITLES[kind]}", ""]
            for link in links:
                title = (
                    f"[{_md_escape(link['title'])}]({_md_url(link['url'])})"
                    if link["title"]
                    else f"<{_md_url(link['url'])}>"
                )
                shared = len(link["shared_by"])
                note = f" (shared by {shared} people)" if shared > 1 else ""
                out.append(f"- {title}{note}")
            out.append("")
    if stats["top_contributors"]:
        out += ["## Top contributors", ""]
        out += [f"- {c['handle']} ({c['posts']})" for c in stats["top_contributors"]]
        out.append("")
    out.append(f"*{len(d['general'])} posts were not about one session.*")
    return "\n".join(out) + "\n"


KIND_TITLES = {
    "slides": "Slides",
    "video": "Video",
    "photos": "Photos",
    "code": "Code and tools",
    "other": "Other",
}


def links_by_kind(links: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The links that are not write-ups, grouped by kind in a fixed order."""
    return [
        (kind, [x for x in links if x["kind"] == kind])
        for kind in KIND_TITLES
        if any(x["kind"] == kind for x in links)
    ]


def _md_url(url: str) -> str:
    # A URL inside (...) or <...>: keep the delimiters from closing early.
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace(">", "%3E")


def one_line(text: str | None, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _md_writeup(w: dict[str, Any]) -> str:
    """`[Title](url)` by Author, Site, 22 Nov 2026: one-line extract."""
    line = f"[{_md_escape(w['title'] or w['url'])}]({_md_url(w['url'])})"
    by = [f"by {_md_escape(w['author'])}"] if w.get("author") else []
    if w.get("site"):
        by.append(_md_escape(w["site"]))
    if w.get("published"):
        by.append(_date(w["published"]))
    if by:
        line += " — " + ", ".join(by)
    if w.get("description"):
        line += f": {_md_escape(one_line(w['description']))}"
    return line


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%-d %b %Y")
    except ValueError:
        return iso[:10]


def activity_svg(activity: list[dict[str, Any]], width: int = 640, height: int = 120) -> str:
    """A bar chart of posts per hour as inline SVG: no script, readable in print."""
    if not activity:
        return ""
    peak = max(a["posts"] for a in activity) or 1
    bar = width / len(activity)
    bars = []
    for i, a in enumerate(activity):
        h = a["posts"] / peak * (height - 20)
        label = escape(f"{a['hour'][11:16]} UTC: {a['posts']} posts")
        bars.append(
            f'<rect x="{i * bar:.1f}" y="{height - 20 - h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{h:.1f}"><title>{label}</title></rect>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Posts per hour" class="activity">{"".join(bars)}</svg>'
    )
