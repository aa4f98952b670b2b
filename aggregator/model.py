"""The one post shape shared by the API, the websocket and the digest.

`Post.to_json()` produces exactly the post JSON of DESIGN.md; `Post.from_json()` reads it
back. Fields that are ours but not part of the public contract (where a post was seen,
consent flags, edit time) live in `Provenance`, which is stored but never serialised into
the contract shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

Platform = Literal["bluesky", "mastodon", "blog"]
MediaType = Literal["image", "video", "gif"]

PLATFORMS: tuple[Platform, ...] = ("bluesky", "mastodon", "blog")
MEDIA_TYPES: tuple[MediaType, ...] = ("image", "video", "gif")


@dataclass(frozen=True, slots=True)
class Author:
    handle: str
    name: str = ""
    avatar: str | None = None
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"handle": self.handle, "name": self.name, "avatar": self.avatar, "url": self.url}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Author:
        return cls(
            handle=str(data.get("handle") or ""),
            name=str(data.get("name") or ""),
            avatar=data.get("avatar") or None,
            url=str(data.get("url") or ""),
        )


@dataclass(frozen=True, slots=True)
class Media:
    type: MediaType
    url: str
    preview_url: str = ""
    alt: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "url": self.url,
            "preview_url": self.preview_url,
            "alt": self.alt,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Media:
        kind = data.get("type")
        return cls(
            type=kind if kind in MEDIA_TYPES else "image",
            url=str(data.get("url") or ""),
            preview_url=str(data.get("preview_url") or ""),
            alt=str(data.get("alt") or ""),
        )


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    title: str | None = None
    description: str | None = None
    image: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "title": self.title,
            "description": self.description,
            "image": self.image,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Link:
        return cls(
            url=str(data.get("url") or ""),
            title=data.get("title"),
            description=data.get("description"),
            image=data.get("image"),
        )


@dataclass(frozen=True, slots=True)
class Metrics:
    likes: int = 0
    reposts: int = 0
    replies: int = 0

    def to_json(self) -> dict[str, int]:
        return {"likes": self.likes, "reposts": self.reposts, "replies": self.replies}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        return cls(
            likes=_int(data.get("likes")),
            reposts=_int(data.get("reposts")),
            replies=_int(data.get("replies")),
        )


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where and how we saw a post; stored, never part of the public post JSON."""

    source: str = ""  # e.g. "mastodon:social.example", "bluesky:jetstream"
    local_id: str = ""  # the id on the server we asked (Mastodon ids are per server)
    home: bool = True  # seen on the author's home server (its counts are authoritative)
    edited_at: str | None = None
    bot: bool = False
    discoverable: bool | None = None
    noindex: bool = False
    boosted_by: str | None = None  # handle of the account whose boost carried it to us
    author_id: str = ""  # platform account id: a DID, or the ActivityPub actor URL


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    platform: Platform
    url: str
    author: Author
    text: str
    html: str
    created_at: str  # ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"
    language: str | None = None
    tags: tuple[str, ...] = ()
    sensitive: bool = False
    spoiler_text: str = ""
    media: tuple[Media, ...] = ()
    links: tuple[Link, ...] = ()
    reply_to: str | None = None
    quote_of: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    session: str | None = None
    provenance: Provenance = field(default_factory=Provenance, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "url": self.url,
            "author": self.author.to_json(),
            "text": self.text,
            "html": self.html,
            "created_at": self.created_at,
            "language": self.language,
            "tags": list(self.tags),
            "sensitive": self.sensitive,
            "spoiler_text": self.spoiler_text,
            "media": [m.to_json() for m in self.media],
            "links": [link.to_json() for link in self.links],
            "reply_to": self.reply_to,
            "quote_of": self.quote_of,
            "metrics": self.metrics.to_json(),
            "session": self.session,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], provenance: Provenance | None = None) -> Post:
        platform = data.get("platform")
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        return cls(
            id=str(data["id"]),
            platform=platform,
            url=str(data.get("url") or ""),
            author=Author.from_json(data.get("author") or {}),
            text=str(data.get("text") or ""),
            html=str(data.get("html") or ""),
            created_at=str(data.get("created_at") or ""),
            language=data.get("language") or None,
            tags=tuple(str(t) for t in data.get("tags") or ()),
            sensitive=bool(data.get("sensitive")),
            spoiler_text=str(data.get("spoiler_text") or ""),
            media=tuple(Media.from_json(m) for m in data.get("media") or ()),
            links=tuple(Link.from_json(x) for x in data.get("links") or ()),
            reply_to=data.get("reply_to") or None,
            quote_of=data.get("quote_of") or None,
            metrics=Metrics.from_json(data.get("metrics") or {}),
            session=data.get("session") or None,
            provenance=provenance or Provenance(),
        )

    def with_changes(self, **changes: Any) -> Post:
        return replace(self, **changes)

    @property
    def created_dt(self) -> datetime:
        return parse_timestamp(self.created_at) or datetime(1970, 1, 1, tzinfo=UTC)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return max(0, value)
    try:
        return max(0, int(str(value)))
    except (TypeError, ValueError):
        return 0


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp from a platform into an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def format_timestamp(moment: datetime) -> str:
    """The one timestamp format of the post JSON: UTC, second precision, trailing Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
