"""Load what the digest needs (the stored posts, the schedule file) and write it out."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from aggregator.config import Config, ConfigError
from aggregator.digest.build import Digest, EventInfo, build_digest
from aggregator.digest.render import to_json, to_markdown
from aggregator.digest.schedule import ScheduleError, Session, parse_schedule
from aggregator.match import normalise_tag
from aggregator.model import Post
from aggregator.store import PageQuery, Store, open_store


def load_schedule(config: Config) -> list[Session]:
    path = config.get("digest", "schedule")
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"digest.schedule: cannot read {path}: {exc.strerror}") from None
    try:
        return parse_schedule(text, filename=path, tz=config.timezone)
    except ScheduleError as exc:
        raise ConfigError(f"digest.schedule: {path}: {exc}") from None


async def load_posts(store: Store) -> list[Post]:
    posts: list[Post] = []
    page = await store.page(PageQuery(limit=200))
    posts += page.posts
    while page.next:
        page = await store.page(PageQuery(limit=200, before=page.next))
        posts += page.posts
    return posts


def event_info(config: Config) -> EventInfo:
    return EventInfo(
        name=config.event_name,
        hashtags=tuple(normalise_tag(t) for t in config.hashtags),
        start=config.event_start,
        end=config.event_end,
        servers=tuple(config.get("mastodon", "servers")),
    )


async def make_digest(config: Config, store: Store, sessions: list[Session]) -> Digest:
    posts = await load_posts(store)
    return build_digest(event_info(config), sessions, posts, now=datetime.now(UTC))


async def digest_command(config: Config, fmt: str, out: str) -> None:
    sessions = load_schedule(config)
    store = open_store(config.get("storage", "url"))
    await store.open()
    try:
        digest = await make_digest(config, store, sessions)
    finally:
        await store.close()
    write_output(digest, fmt, out)


def write_output(digest: Digest, fmt: str, out: str) -> None:
    if fmt == "json":
        text = to_json(digest)
    elif fmt == "md":
        text = to_markdown(digest)
    else:
        from web.digest_page import render_digest_html

        text = render_digest_html(digest)
    if out == "-":
        sys.stdout.write(text)
    else:
        tmp = Path(out + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)  # nothing half-written
