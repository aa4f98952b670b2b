"""The links people shared: collect, canonicalise, dedupe, count who shared each. Pure.

A link comes from a post's links (the Mastodon preview card, Bluesky `embed.external`,
link facets, anchors in the post HTML) and from bare URLs in its text. Canonical form:
lowercase scheme and host, no default port, no fragment, no tracking parameters, the
remaining query sorted, so `https://Blog.example:443/a?utm_source=x&b=2&a=1#top` and
`https://blog.example/a?a=1&b=2` are one link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from aggregator.model import Link, Post

# Query parameters that only say who sent the click, never which page it is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "source",
        "via",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "s_cid",
        "si",
        "spm",
        "share",
        "trk",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "__hs", "ga_")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Bare URLs in post text; stops at whitespace and at closing punctuation of the sentence.
URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'`]+")
TRAILING = ".,;:!?)]}»”’…"
MAX_URL = 2048
# Lowercase host, no port, query or fragment, only unreserved path characters: canonical.
SIMPLE_URL = re.compile(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/[A-Za-z0-9/._~-]*)?\Z")


@lru_cache(maxsize=65536)
def canonical_url(url: str) -> str | None:
    """The canonical form of an http(s) URL, or None when it is not one. Cached: the
    same links are shared again and again, and the digest reads every post."""
    url = url.strip()
    if SIMPLE_URL.match(url):
        return url if url.count("/") > 2 else url + "/"  # already canonical
    if len(url) > MAX_URL:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _tracking(k.lower())
    ]
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def _tracking(name: str) -> bool:
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def site_of(url: str) -> str:
    """The host without a leading `www.`: what "the same site" means for rel=canonical."""
    return host_and_path(url)[0].removeprefix("www.")


def same_site(a: str, b: str) -> bool:
    return bool(site_of(a)) and site_of(a) == site_of(b)


def urls_in_text(text: str) -> list[str]:
    if "http" not in text:
        return []  # most posts: skip the regex
    found = []
    for match in URL_IN_TEXT.finditer(text):
        url = match.group(0)
        if url.endswith("…") or url.endswith("..."):
            continue  # shortened for display: the real link is in the post's links
        while url and url[-1] in TRAILING:
            # Keep a closing bracket that has its opening one inside the URL (Wikipedia).
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        found.append(url)
    return found


@dataclass
class Preview:
    """What a platform already told us about a link (its card / embed.external)."""

    title: str | None = None
    description: str | None = None
    image: str | None = None


@dataclass
class SharedLink:
    url: str  # canonical
    posts: list[str] = field(default_factory=list)  # ids, first share first
    sharers: list[str] = field(default_factory=list)  # author handles, distinct
    first_shared: str = ""  # ISO timestamp of the first post
    preview: Preview = field(default_factory=Preview)
    texts: list[str] = field(default_factory=list)  # the sharing posts' text, for "mentions"
    _post_set: set[str] = field(default_factory=set, repr=False)


def collect_links(
    posts: Sequence[Post], *, skip_hosts: Iterable[str] = ()
) -> dict[str, SharedLink]:
    """Every distinct link in `posts` (taken in the order given), keyed by canonical URL.

    `skip_hosts`: hosts whose links are never write-ups (the platforms' own servers:
    profiles, hashtags, other posts)."""
    skip = {h.lower() for h in skip_hosts}
    skip.add("bsky.app")
    found: dict[str, SharedLink] = {}
    for post in posts:
        candidates: list[tuple[str, Link | None]] = [(link.url, link) for link in post.links]
        candidates += [(u, None) for u in urls_in_text(post.text)]
        if not candidates:
            continue
        own_host = _host(post.url)
        for raw, link in candidates:
            url = canonical_url(raw)
            if url is None:
                continue
            host = _host(url)
            if host in skip or host == own_host:
                continue
            entry = found.get(url)
            if entry is None:
                entry = found[url] = SharedLink(url, first_shared=post.created_at)
            if post.id not in entry._post_set:
                entry._post_set.add(post.id)
                entry.posts.append(post.id)
                entry.texts.append(post.text)
                if post.author.handle not in entry.sharers:
                    entry.sharers.append(post.author.handle)
            if link is not None:
                p = entry.preview
                p.title = p.title or link.title
                p.description = p.description or link.description
                p.image = p.image or link.image
    return found


def _host(url: str) -> str:
    return host_and_path(url)[0]


def host_and_path(url: str) -> tuple[str, str]:
    """(lowercase host, path) of an absolute URL by plain string work: urlsplit is the
    digest's hot spot when every post carries a different link."""
    rest = url.partition("://")[2]
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if 0 <= i < end:
            end = i
    netloc, tail = rest[:end], rest[end:]
    host = netloc.rpartition("@")[2]
    host = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    path = tail.split("?", 1)[0].split("#", 1)[0]
    return host.lower(), path
