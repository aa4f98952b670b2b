"""Load what the digest needs (the stored posts, the schedule file) and write it out."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from aggregator.config import Config, ConfigError
from aggregator.digest.build import Digest, EventInfo, build_digest, consented
from aggregator.digest.edits import merge_sessions
from aggregator.digest.fetch import GuardedFetcher
from aggregator.digest.links import collect_links
from aggregator.digest.render import to_json, to_markdown
from aggregator.digest.schedule import ScheduleError, Session, parse_schedule
from aggregator.digest.unfurl import Unfurler
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


async def make_digest(
    config: Config, store: Store, sessions: list[Session], posts: list[Post] | None = None
) -> Digest:
    """Build from the store and the link metadata already learnt (no network)."""
    if posts is None:
        posts = await load_posts(store)
    link_meta = await store.link_meta()
    return build_digest(
        event_info(config), sessions, posts, now=datetime.now(UTC), link_meta=link_meta
    )


async def unfurl_links(config: Config, store: Store, posts: list[Post], *, bar: bool) -> int:
    """Fetch what the store does not know yet about the links in `posts`; returns how
    many links were fetched. `bar`: a progress bar on stderr."""
    event = event_info(config)
    skip = [urlsplit(s).hostname or "" for s in event.servers]
    shared = collect_links([p for p in posts if consented(p)], skip_hosts=skip)
    allow = bool(config.get("digest", "fetch_private_addresses"))
    async with GuardedFetcher.from_config(allow) as fetcher:
        unfurler = Unfurler(fetcher)
        todo = unfurler.pending(list(shared.values()), await store.link_meta())
        if not todo:
            return 0
        with tqdm(
            total=len(todo), desc="unfurling links", unit="link", file=sys.stderr, disable=not bar
        ) as progress:
            await unfurler.run(todo, store, advance=lambda: progress.update(1))
    return len(todo)


async def digest_command(config: Config, fmt: str, out: str, *, fetch: bool = True) -> None:
    sessions = load_schedule(config)
    store = open_store(config.get("storage", "url"))
    await store.open()
    try:
        edits = (await store.get_settings()).get("sessions")
        sessions = merge_sessions(sessions, edits, config.timezone)
        posts = await load_posts(store)
        if fetch:
            await unfurl_links(config, store, posts, bar=True)
        digest = await make_digest(config, store, sessions, posts)
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
