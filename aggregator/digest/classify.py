"""What kind of link is it: a write-up of the event, or slides, video, photos, code, other.

Pure: the URL, the page metadata we have (maybe none), the platform preview, the event.
Precision first: a link is a write-up only on positive evidence that it is an article
(og:type article, JSON-LD Article/BlogPosting, an h-entry, it came from a feed or a
Webmention) that is not older than the event, or, with only a platform preview, a title
that names the event or a blog-post-shaped path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aggregator.digest.meta import ARTICLE_TYPES

KINDS = ("writeup", "slides", "video", "photos", "code", "other")
SLIDE_HOSTS = ("speakerdeck.com", "slideshare.net", "slides.com", "noti.st", "pitch.com")
VIDEO_HOSTS = (
    "youtube.com",
    "youtu.be",
    "vimeo.com",
    "twitch.tv",
    "media.ccc.de",
    "dailymotion.com",
)
PHOTO_HOSTS = ("flickr.com", "flic.kr", "instagram.com", "imgur.com", "500px.com", "unsplash.com")
CODE_HOSTS = (
    "github.com",
    "gitlab.com",
    "codeberg.org",
    "bitbucket.org",
    "sr.ht",
    "pypi.org",
    "npmjs.com",
    "crates.io",
    "huggingface.co",
)
SLIDE_EXT = (".pdf", ".ppt", ".pptx", ".key", ".odp")
VIDEO_EXT = (".mp4", ".webm", ".mov", ".mkv", ".m4v")
PHOTO_EXT = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".avif")
VIDEO_OG = ("video", "video.other", "video.movie", "video.episode")
ARTICLE_PATH = re.compile(
    r"/(?:19|20)\d\d/|/(?:blog|posts?|notes?|articles?|entry|entries|writing|journal|"
    r"escritos|artikel|billets?)/|/p/[^/]+$"
)
# An old article is background reading, not a write-up of this event.
GRACE = timedelta(days=2)
LEAD = timedelta(hours=12)  # notes published the evening before still count as "after"


@dataclass(frozen=True)
class EventTerms:
    names: tuple[str, ...]  # casefolded, spaces removed: "bluelightcamp2026", "blc26"
    start: datetime | None = None

    @classmethod
    def of(cls, name: str, hashtags: Iterable[str], start: datetime | None) -> EventTerms:
        terms = {_squash(name)} | {_squash(t) for t in hashtags}
        # "BlueLightCamp 2026" is also mentioned as plain "BlueLightCamp".
        terms |= {_squash(re.sub(r"\s*\d{2,4}$", "", name))}
        return cls(tuple(sorted(t for t in terms if len(t) >= 3)), start)

    def mentioned(self, *texts: str | None) -> bool:
        return any(term in _squash(t) for t in texts if t for term in self.names)


def _squash(text: str) -> str:
    return re.sub(r"[\s#_\-]+", "", text.casefold())


def _host_in(host: str, hosts: Iterable[str]) -> bool:
    return any(host == h or host.endswith("." + h) for h in hosts)


def url_kind(url: str) -> str | None:
    """The kind a URL alone tells, or None when it could be anything."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.lower()
    if _host_in(host, SLIDE_HOSTS) or path.endswith(SLIDE_EXT):
        return "slides"
    if host == "docs.google.com" and path.startswith("/presentation"):
        return "slides"
    if _host_in(host, VIDEO_HOSTS) or path.endswith(VIDEO_EXT):
        return "video"
    if re.match(r"^/(?:w|videos/watch|videos/embed)/[\w-]+/?$", path):
        return "video"  # PeerTube
    if _host_in(host, PHOTO_HOSTS) or "pixelfed" in host or path.endswith(PHOTO_EXT):
        return "photos"
    if _host_in(host, CODE_HOSTS) or host.startswith(("gitlab.", "git.", "forgejo.", "gitea.")):
        return "code"
    return None


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def classify(
    url: str,
    meta: Mapping[str, Any] | None,
    preview_title: str | None,
    preview_description: str | None,
    event: EventTerms,
    *,
    source: str = "post",
) -> str:
    """One of KINDS. `meta` is PageMeta.to_json() of the fetched page (None: not fetched);
    `source` is "post", "feed" or "webmention"."""
    final = str(meta.get("url") or url) if meta else url
    kind = url_kind(url) or url_kind(final)
    if kind:
        return kind
    if source in ("feed", "webmention"):
        return "writeup"  # the organiser's feed, or a verified mention of the digest
    path = urlsplit(final).path
    if path in ("", "/") and not urlsplit(final).query:
        return "other"  # a home page is a blog, not a post about the event
    if meta is None:
        if not preview_title:
            return "other"
        if event.mentioned(preview_title, preview_description) or ARTICLE_PATH.search(path):
            return "writeup"
        return "other"
    og_type = str(meta.get("og_type") or "").lower()
    if og_type in VIDEO_OG:
        return "video"
    title, description = meta.get("title") or preview_title, meta.get("description")
    article = (
        og_type == "article"
        or bool(ARTICLE_TYPES & set(meta.get("schema_types") or ()))
        or bool(meta.get("h_entry"))
    )
    published = _moment(meta.get("published"))
    if published and event.start and published < event.start - GRACE:
        return "other"
    mentions = event.mentioned(title, description, meta.get("text"))
    after_start = bool(published and event.start and published >= event.start - LEAD)
    if article and (mentions or after_start or ARTICLE_PATH.search(path)):
        return "writeup"
    if meta.get("feeds") and mentions and (ARTICLE_PATH.search(path) or published):
        return "writeup"
    return "other"
