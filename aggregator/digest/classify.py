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
from functools import lru_cache
from typing import Any

from aggregator.digest.links import host_and_path
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
PEERTUBE = re.compile(r"^/(?:w|videos/watch|videos/embed)/[\w-]+/?$")
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


HOST_KINDS: dict[str, str] = {
    **{h: "slides" for h in SLIDE_HOSTS},
    **{h: "video" for h in VIDEO_HOSTS},
    **{h: "photos" for h in PHOTO_HOSTS},
    **{h: "code" for h in CODE_HOSTS},
}


@lru_cache(maxsize=65536)
def host_kind(host: str) -> str | None:
    """The kind of the site itself (the host or any parent domain), cached per host."""
    labels = host.removeprefix("www.").split(".")
    for i in range(len(labels) - 1):
        kind = HOST_KINDS.get(".".join(labels[i:]))
        if kind:
            return kind
    if "pixelfed" in host:
        return "photos"
    if host.startswith(("gitlab.", "git.", "forgejo.", "gitea.")):
        return "code"
    return None


def url_kind(url: str) -> str | None:
    """The kind a URL alone tells, or None when it could be anything."""
    host, path = host_and_path(url)
    path = path.lower()
    if path.endswith(SLIDE_EXT):
        return "slides"
    if host == "docs.google.com" and path.startswith("/presentation"):
        return "slides"
    kind = host_kind(host)
    if kind:
        return kind
    if path.endswith(VIDEO_EXT) or PEERTUBE.match(path):
        return "video"  # a file, or a PeerTube watch page
    if path.endswith(PHOTO_EXT):
        return "photos"
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
    kind = url_kind(url) or (url_kind(final) if final != url else None)
    if kind:
        return kind
    if source in ("feed", "webmention"):
        return "writeup"  # the organiser's feed, or a verified mention of the digest
    path = host_and_path(final)[1]
    if path in ("", "/") and "?" not in final:
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
