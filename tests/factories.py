"""Small builders for test data."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.model import Author, Media, Metrics, Post, Provenance, format_timestamp

BASE = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

# The post JSON of DESIGN.md: exactly these keys, in every API, websocket and digest.
POST_JSON_KEYS = frozenset(
    "id platform url author text html created_at language tags sensitive spoiler_text "
    "media links reply_to quote_of metrics session".split()
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_post(n: int, **changes: Any) -> Post:
    prov = changes.pop("provenance", Provenance(source="mastodon:social.example", local_id=str(n)))
    post = Post(
        id=f"https://social.example/users/alice/statuses/{n}",
        platform="mastodon",
        url=f"https://social.example/@alice/{n}",
        author=Author(
            handle="@alice@social.example", name="Alice", url="https://social.example/@alice"
        ),
        text=f"post number {n} #testcamp",
        html=f"<p>post number {n} #testcamp</p>",
        created_at=format_timestamp(BASE + timedelta(seconds=n)),
        tags=("testcamp",),
        media=(Media("image", f"https://media.example/{n}.jpg", alt="a photo"),)
        if n % 3 == 0
        else (),
        metrics=Metrics(likes=n % 5),
        provenance=prov,
    )
    return post.with_changes(**changes) if changes else post
