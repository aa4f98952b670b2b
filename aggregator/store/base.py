"""What every storage backend offers, and the change records it hands back."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aggregator.model import Post

ChangeKind = Literal["new", "updated", "deleted"]
# What the automatic rules decided for a post: ("show" | "hide" | "approve", rule or None).
Verdict = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Change:
    """One durable change; `seq` orders all changes and is the websocket resume cursor."""

    kind: ChangeKind
    id: str
    seq: int
    post: Post | None  # None for "deleted"
    # Moderation state after the change; audiences decide what they may see from it.
    hidden: bool = False
    approved: bool = False
    pinned: bool = False
    rule: str | None = None  # the automatic rule that decided, if one did
    surfaced: bool = False  # a moderation action: visibility may differ from before


@dataclass(frozen=True, slots=True)
class PageQuery:
    before: str | None = None
    after: str | None = None
    limit: int = 50
    platform: str | None = None
    session: str | None = None
    q: str | None = None
    has_media: bool | None = None
    approved_only: bool = False  # pre-moderation: only what a moderator let through


@dataclass(frozen=True, slots=True)
class Page:
    posts: list[Post]
    next: str | None  # `before=` value for the older page
    newer: str | None = None  # `after=` value to fetch what is newer than this page


class CursorError(ValueError):
    """A `before`/`after` value that is not one we issued."""


def encode_page_cursor(created_us: int, pk: int) -> str:
    raw = f"{created_us}:{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_cursor(value: str) -> tuple[int, int]:
    try:
        padded = value + "=" * (-len(value) % 4)
        created, pk = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split(":")
        return int(created), int(pk)
    except (ValueError, UnicodeError):
        raise CursorError(f"not a valid cursor: {value[:40]!r}") from None


class Store(Protocol):
    commit_listeners: list[Callable[[float], None]]  # called with each commit's seconds

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def upsert(
        self, posts: list[Post], verdicts: Mapping[str, Verdict] | None = None
    ) -> list[Change]: ...

    async def tombstone(self, ids: list[str]) -> list[Change]: ...

    async def tombstone_local(self, source: str, local_ids: list[str]) -> list[Change]: ...

    async def save_cursor(self, source: str, value: str) -> None: ...

    async def load_cursor(self, source: str) -> str | None: ...

    async def recent_local_ids(self, source: str, limit: int) -> list[str]: ...

    async def get(self, post_id: str) -> Post | None: ...

    async def page(self, query: PageQuery) -> Page: ...

    async def changes_since(self, seq: int, limit: int) -> list[Change]: ...

    async def last_seq(self) -> int: ...

    async def count(self) -> int: ...

    # moderation and admin
    async def moderate(self, action: str, post_id: str, actor: str) -> list[Change]: ...

    async def ban(self, kind: str, value: str, actor: str, *, ban: bool = True) -> list[Change]: ...

    async def assign(self, post_id: str, session: str | None, actor: str) -> list[Change]: ...

    async def audit(self, actor: str, action: str, target: str, detail: Any) -> None: ...

    async def put_settings(self, values: dict[str, Any], actor: str) -> None: ...

    async def get_settings(self) -> dict[str, Any]: ...

    async def bans(self) -> list[dict[str, Any]]: ...

    async def audit_log(self, limit: int = 200) -> list[dict[str, Any]]: ...

    async def admin_posts(
        self, which: str, limit: int = 200
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]: ...

    # digest: link metadata (unfurled pages, blog feed entries, verified Webmentions)
    async def put_link_meta(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace rows keyed by `url` (the canonical URL as shared, or the
        feed entry's / Webmention source's URL). A row is
        `{"url", "final", "source": "page"|"preview"|"feed"|"webmention",
        "status": "ok"|"error"|"refused"|"rejected", "fetched_at": ISO 8601 UTC,
        "meta": PageMeta.to_json() | None}`; the backend stores `url`, `final`, `source`,
        `status`, `fetched_at` (as microseconds) in columns and the whole row as JSON."""
        ...

    async def link_meta(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        """Every stored row (only those of `source` when given), keyed by `url`, exactly
        as put (a later put of the same `url` replaces it)."""
        ...
