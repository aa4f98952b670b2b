"""The store contract, run against every backend: SQLite and a real PostgreSQL server.

Every case runs on both backends (a parametrised fixture), moderation included, and what only a
shared database has to get right: several writers drawing from one change sequence,
migrations racing at start, and a server restart in the middle of a write stream.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from factories import make_post
from servers import PostgresServer, create_database, shared_postgres

from aggregator.model import Author, Metrics, Provenance
from aggregator.store import CursorError, PageQuery, SQLiteStore
from aggregator.store.migrations import MIGRATIONS
from aggregator.store.pg_migrations import PG_MIGRATIONS
from aggregator.store.postgres import PostgresStore
from aggregator.store.sqlite_admin import UnknownPostError

AnyStore = SQLiteStore | PostgresStore


@dataclass
class Backend:
    name: str
    make: Callable[[], AnyStore]  # another store object on the same database


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", lambda: SQLiteStore(tmp_path / "t.db"))
    dsn = await create_database(shared_postgres())
    return Backend("postgresql", lambda: PostgresStore(dsn))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AnyStore]:
    s = backend.make()
    await s.open()
    yield s
    await s.close()


def test_both_backends_have_the_same_schema_versions() -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS)


async def test_insert_then_duplicate_is_noop(store: AnyStore) -> None:
    changes = await store.upsert([make_post(1), make_post(2)])
    assert [c.kind for c in changes] == ["new", "new"]
    assert await store.upsert([make_post(1)]) == []
    assert await store.count() == 2


async def test_same_post_twice_in_one_batch(store: AnyStore) -> None:
    liked = make_post(1, metrics=Metrics(likes=4))
    changes = await store.upsert([make_post(1), make_post(1), liked])
    assert [c.kind for c in changes] == ["new", "updated"]
    got = await store.get(make_post(1).id)
    assert got is not None and got.metrics.likes == 4


async def test_edit_updates_and_stale_copy_does_not_revert(store: AnyStore) -> None:
    await store.upsert([make_post(1)])
    edited = make_post(
        1,
        text="edited",
        html="<p>edited</p>",
        provenance=Provenance(source="mastodon:social.example", edited_at="2026-11-21T10:00:00Z"),
    )
    changes = await store.upsert([edited])
    assert [c.kind for c in changes] == ["updated"]
    assert await store.upsert([make_post(1)]) == []
    got = await store.get(make_post(1).id)
    assert got is not None and got.text == "edited"
    assert [p.id for p in (await store.page(PageQuery(q="edited"))).posts] == [make_post(1).id]
    assert (await store.page(PageQuery(q="number"))).posts == []  # the old text is gone


async def test_home_server_counts_win(store: AnyStore) -> None:
    home = Provenance(source="mastodon:social.example", home=True)
    away = Provenance(source="mastodon:other.example", home=False)
    await store.upsert([make_post(1, metrics=Metrics(likes=5), provenance=home)])
    assert await store.upsert([make_post(1, metrics=Metrics(likes=1), provenance=away)]) == []
    changes = await store.upsert([make_post(1, metrics=Metrics(likes=9), provenance=home)])
    assert changes[0].post is not None and changes[0].post.metrics.likes == 9


async def test_delete_tombstones_and_is_never_resurrected(store: AnyStore) -> None:
    await store.upsert([make_post(1), make_post(2)])
    changes = await store.tombstone([make_post(1).id])
    assert [(c.kind, c.id) for c in changes] == [("deleted", make_post(1).id)]
    assert await store.get(make_post(1).id) is None
    assert await store.upsert([make_post(1)]) == []
    assert await store.tombstone([make_post(1).id]) == []
    page = await store.page(PageQuery())
    assert [p.id for p in page.posts] == [make_post(2).id]
    assert (await store.page(PageQuery(q="number 1"))).posts == []


async def test_delete_before_seen_stays_deleted(store: AnyStore) -> None:
    await store.tombstone([make_post(7).id])
    assert await store.upsert([make_post(7)]) == []


async def test_delete_by_local_id(store: AnyStore) -> None:
    await store.upsert([make_post(3)])
    changes = await store.tombstone_local("mastodon:social.example", ["3"])
    assert [c.id for c in changes] == [make_post(3).id]
    assert await store.tombstone_local("mastodon:social.example", ["999"]) == []
    await store.upsert([make_post(4), make_post(5)])
    assert await store.recent_local_ids("mastodon:social.example", 10) == ["5", "4"]


async def test_restart_loses_nothing_and_continues_the_sequence(backend: Backend) -> None:
    first = backend.make()
    await first.open()
    await first.upsert([make_post(n) for n in range(1, 51)])
    await first.save_cursor("mastodon:social.example", "50")
    last = await first.last_seq()
    await first.close()
    second = backend.make()
    await second.open()
    assert await second.count() == 50
    assert await second.load_cursor("mastodon:social.example") == "50"
    assert await second.load_cursor("nowhere") is None
    assert await second.upsert([make_post(10)]) == []
    changes = await second.upsert([make_post(51), make_post(52)])
    assert [c.seq for c in changes] == [last + 1, last + 2]  # continues, never reused
    await second.close()
    if isinstance(second, SQLiteStore):
        with sqlite3.connect(second.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_cursor_is_saved_after_the_posts_it_covers(store: AnyStore) -> None:
    posts = asyncio.create_task(store.upsert([make_post(n) for n in range(100)]))
    cursor = asyncio.create_task(store.save_cursor("src", "99"))
    await asyncio.gather(posts, cursor)
    assert await store.load_cursor("src") == "99"
    assert await store.count() == 100


async def test_paging_newest_first_without_gaps(store: AnyStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 121)])
    seen: list[str] = []
    before = None
    while True:
        page = await store.page(PageQuery(before=before, limit=50))
        seen += [p.id for p in page.posts]
        if page.next is None:
            break
        before = page.next
    assert seen == [make_post(n).id for n in range(120, 0, -1)]


async def test_after_returns_what_is_newer(store: AnyStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 11)])
    first = await store.page(PageQuery(limit=5))
    assert first.newer is not None
    await store.upsert([make_post(n) for n in range(11, 14)])
    newer = await store.page(PageQuery(after=first.newer, limit=50))
    assert [p.id for p in newer.posts] == [make_post(n).id for n in (13, 12, 11)]


async def test_filters_and_search(store: AnyStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 10)])
    bob = Author(handle="@bob@x.example", name="Bob")
    await store.upsert([make_post(100, text="Accessibility in emergency apps", author=bob)])
    await store.upsert([make_post(101, text="Café Zürich résumé", author=bob)])
    media = await store.page(PageQuery(has_media=True))
    assert {p.id for p in media.posts} == {make_post(n).id for n in (3, 6, 9)}
    found = await store.page(PageQuery(q="accessibility"))
    assert [p.id for p in found.posts] == [make_post(100).id]
    both = await store.page(PageQuery(q="EMERGENCY accessibility"))
    assert [p.id for p in both.posts] == [make_post(100).id]
    assert (await store.page(PageQuery(q="emergency nonsense"))).posts == []
    # Accents and case fold the same way in both backends.
    accents = await store.page(PageQuery(q="cafe zurich RESUME"))
    assert [p.id for p in accents.posts] == [make_post(101).id]
    assert (await store.page(PageQuery(platform="bluesky"))).posts == []
    assert len((await store.page(PageQuery(platform="mastodon", limit=200))).posts) == 11
    # Query syntax in user input is data, not a query language.
    assert (await store.page(PageQuery(q='" OR * NEAR('))).posts == []
    assert (await store.page(PageQuery(q="!(a|b) & 'c':*"))).posts == []


async def test_search_with_nul_characters_is_data_not_a_crash(store: AnyStore) -> None:
    # Found by the reliability fuzzer: a NUL ended the quoted FTS5 term early ("unterminated
    # string"), a 500 on /api/posts?q= and on /.
    await store.upsert([make_post(100, text="Accessibility in emergency apps")])
    found = await store.page(PageQuery(q="accessibility\x00emergency"))
    assert [p.id for p in found.posts] == [make_post(100).id]
    with pytest.raises(CursorError):
        await store.page(PageQuery(q="\x00"))
    # Untrusted post text with a NUL is stored and found on both backends.
    await store.upsert([make_post(101, text="nul\x00inside #testcamp")])
    assert (await store.get(make_post(101).id)) is not None
    assert [p.id for p in (await store.page(PageQuery(q="inside"))).posts] == [make_post(101).id]


async def test_bad_cursor_is_a_clear_error(store: AnyStore) -> None:
    with pytest.raises(CursorError):
        await store.page(PageQuery(before="not-a-cursor!!"))


async def test_changes_since_replays_in_order(store: AnyStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 6)])
    mark = await store.last_seq()
    await store.upsert([make_post(6)])
    await store.tombstone([make_post(2).id])
    changes = await store.changes_since(mark, 100)
    assert [(c.kind, c.id) for c in changes] == [
        ("updated", make_post(6).id),
        ("deleted", make_post(2).id),
    ]
    assert changes[0].surfaced


async def test_concurrent_readers_while_writing(store: AnyStore) -> None:
    async def writer() -> None:
        for start in range(0, 2000, 100):
            await store.upsert([make_post(n) for n in range(start, start + 100)])

    counts: list[int] = []

    async def reader() -> None:
        for _ in range(40):
            page = await store.page(PageQuery(limit=200))
            counts.append(len(page.posts))
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader(), reader())
    assert await store.count() == 2000
    assert counts and max(counts) <= 200


async def test_many_small_writes_are_batched(store: AnyStore) -> None:
    await asyncio.gather(*(store.upsert([make_post(n)]) for n in range(500)))
    assert await store.count() == 500
    assert len(store.commit_seconds) < 100


# moderation ------------------------------------------------------------------------


async def test_hide_unhide_is_a_replayable_change(store: AnyStore) -> None:
    await store.upsert([make_post(1), make_post(2)])
    mark = await store.last_seq()
    [hidden] = await store.moderate("hide", make_post(1).id, "mod")
    assert hidden.hidden and hidden.surfaced and hidden.seq == mark + 1
    assert await store.get(make_post(1).id) is None
    assert [p.id for p in (await store.page(PageQuery())).posts] == [make_post(2).id]
    # A new copy of a hidden post stays hidden: a moderator's decision is kept.
    edited = make_post(1, text="sneaky edit", provenance=Provenance(edited_at="2026-12-01"))
    [update] = await store.upsert([edited])
    assert update.hidden
    replay = await store.changes_since(mark, 10)
    assert [(c.id, c.hidden) for c in replay] == [(make_post(1).id, True)]
    [shown] = await store.moderate("unhide", make_post(1).id, "mod")
    assert not shown.hidden
    admin = await store.admin_posts("hidden")
    assert admin == []
    with pytest.raises(UnknownPostError):
        await store.moderate("hide", "https://nowhere.example/1", "mod")
    assert [e["action"] for e in await store.audit_log()] == ["unhide", "hide"]


async def test_rules_verdicts_and_pre_moderation(store: AnyStore) -> None:
    verdicts = {make_post(1).id: ("hide", "bot"), make_post(2).id: ("approve", None)}
    changes = await store.upsert([make_post(1), make_post(2), make_post(3)], verdicts)
    assert [(c.hidden, c.approved, c.rule) for c in changes] == [
        (True, False, "bot"),
        (False, True, None),
        (False, False, None),
    ]
    approved = await store.page(PageQuery(approved_only=True))
    assert [p.id for p in approved.posts] == [make_post(2).id]
    pending = await store.admin_posts("pending")
    assert [p["id"] for p, _ in pending] == [make_post(3).id]
    [hidden] = await store.admin_posts("hidden")
    assert hidden[1] == {
        "hidden": True,
        "approved": False,
        "pinned": False,
        "rule": "bot",
        "by": "auto",
    }
    # The author fixed the post: the rule no longer hides the edit.
    fixed = make_post(1, text="fixed", provenance=Provenance(edited_at="2026-12-01"))
    [change] = await store.upsert([fixed])
    assert not change.hidden and change.rule is None


async def test_one_pin_at_a_time(store: AnyStore) -> None:
    await store.upsert([make_post(1), make_post(2)])
    await store.moderate("pin", make_post(1).id, "mod")
    changes = await store.moderate("pin", make_post(2).id, "mod")
    assert [(c.id, c.pinned) for c in changes] == [
        (make_post(1).id, False),
        (make_post(2).id, True),
    ]
    assert [p["id"] for p, _ in await store.admin_posts("pinned")] == [make_post(2).id]


async def test_bans_by_author_and_domain(store: AnyStore) -> None:
    troll = Author(handle="@Troll@bad.example")
    sub = Author(handle="@eve.bad_example.org")
    await store.upsert(
        [make_post(1, author=troll), make_post(2), make_post(3, author=sub), make_post(4)]
    )
    changes = await store.ban("author", "troll@bad.example", "mod")
    assert [c.id for c in changes] == [make_post(1).id]
    domain = await store.ban("domain", ".bad_example.org", "mod")
    assert [c.id for c in domain] == [make_post(3).id]
    # `_` in a domain is a character: it must not match like a LIKE wildcard.
    assert await store.ban("domain", "bad-example.org", "mod") == []
    assert {b["value"] for b in await store.bans()} == {
        "@troll@bad.example",
        "bad_example.org",
        "bad-example.org",
    }
    unbanned = await store.ban("author", "@troll@bad.example", "mod", ban=False)
    assert [(c.id, c.hidden) for c in unbanned] == [(make_post(1).id, False)]
    assert await store.count() == 3


async def test_assign_session_survives_a_new_copy(store: AnyStore) -> None:
    await store.upsert([make_post(1)])
    [change] = await store.assign(make_post(1).id, "keynote", "mod")
    assert change.post is not None and change.post.session == "keynote" and not change.surfaced
    await store.upsert([make_post(1, metrics=Metrics(likes=4))])
    got = await store.get(make_post(1).id)
    assert got is not None and got.session == "keynote"
    assert [p.id for p in (await store.page(PageQuery(session="keynote"))).posts] == [
        make_post(1).id
    ]


async def test_settings_and_audit(store: AnyStore) -> None:
    await store.put_settings({"moderation": "pre", "rules": {"a": [1, "ü"]}}, "mod")
    await store.put_settings({"moderation": "post"}, "mod2")
    assert await store.get_settings() == {"moderation": "post", "rules": {"a": [1, "ü"]}}
    await store.audit("mod", "login", "admin", {"ip": "127.0.0.1"})
    log = await store.audit_log(2)
    assert [(e["actor"], e["action"]) for e in log] == [("mod", "login"), ("mod2", "settings")]
    assert log[0]["detail"] == {"ip": "127.0.0.1"} and log[0]["at"].endswith("Z")


# only a shared database ------------------------------------------------------------


@pytest.fixture
async def pg_dsn() -> str:
    return await create_database(shared_postgres())


async def test_writers_on_several_nodes_share_one_gap_free_sequence(pg_dsn: str) -> None:
    """Two nodes write at once while a third resumes with changes_since(): every change
    it sees is in seq order, and reading on from its last seq never skips one."""
    nodes = [PostgresStore(pg_dsn) for _ in range(3)]
    for node in nodes:
        await node.open()
    ingest, serve, reader = nodes
    await ingest.upsert([make_post(n) for n in range(1, 21)])

    async def ingest_writes() -> None:
        for start in range(100, 400, 10):
            await ingest.upsert([make_post(n) for n in range(start, start + 10)])

    async def moderation() -> None:
        for n in range(1, 21):
            await serve.moderate("hide" if n % 2 else "pin", make_post(n).id, "mod")
            await asyncio.sleep(0)

    seen: list[int] = []
    done = asyncio.Event()

    async def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            changes = await reader.changes_since(cursor, 50)
            seen.extend(c.seq for c in changes)
            if changes:
                cursor = changes[-1].seq
            elif finished:
                return
            await asyncio.sleep(0.001)

    async def writers() -> None:
        await asyncio.gather(ingest_writes(), moderation())
        done.set()

    try:
        await asyncio.gather(writers(), follow())
        final = await reader.changes_since(0, 10_000)
        last = await reader.last_seq()
    finally:
        for node in nodes:
            await node.close()
    seqs = [c.seq for c in final]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert last == seqs[-1]
    # Each row keeps only its newest seq. A follower that read on from its last seq saw
    # every one of them: none committed below a seq it had already passed.
    assert seen == sorted(seen)
    assert set(seqs) <= set(seen)


async def test_nodes_starting_together_migrate_once(pg_dsn: str) -> None:
    stores = [PostgresStore(pg_dsn) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    conn = await asyncpg.connect(pg_dsn)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version")]
    finally:
        await conn.close()
    for s in stores:
        await s.close()
    assert versions == list(range(1, len(PG_MIGRATIONS) + 1))


async def test_newer_schema_is_refused(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    await conn.close()
    with pytest.raises(RuntimeError, match="newer than this program"):
        await PostgresStore(pg_dsn).open()


async def test_server_restart_mid_stream_loses_no_post() -> None:
    """PostgreSQL stops for a moment while posts keep coming: the writes wait and retry,
    every post is stored once, and reads work again afterwards."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        store = PostgresStore(server.dsn(), retry_for=30)
        await store.open()
        stored: list[int] = []

        async def writes() -> None:
            for start in range(0, 300, 10):
                changes = await store.upsert([make_post(n) for n in range(start, start + 10)])
                stored.extend(c.seq for c in changes)
                await asyncio.sleep(0.01)

        async def restart() -> None:
            await asyncio.sleep(0.1)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)

        await asyncio.gather(writes(), restart())
        assert store.retries > 0, "the restart should have interrupted a write"
        assert await store.count() == 300
        assert len(stored) == 300
        assert [c.seq for c in await store.changes_since(0, 1000)] == sorted(stored)
        await store.close()
    finally:
        server.destroy()


async def test_a_failing_admin_action_does_not_take_its_batch_down(store: AnyStore) -> None:
    # Queued together, so the writer applies them in one transaction.
    bad = asyncio.ensure_future(store.moderate("hide", "https://nowhere.example/1", "mod"))
    good = asyncio.ensure_future(store.upsert([make_post(1), make_post(2)]))
    cursor = asyncio.ensure_future(store.save_cursor("src", "42"))
    with pytest.raises(UnknownPostError):
        await bad
    assert [c.kind for c in await good] == ["new", "new"]
    await cursor
    assert await store.count() == 2
    assert await store.load_cursor("src") == "42"
    seqs = [c.seq for c in await store.changes_since(0, 10)]
    assert seqs == sorted(seqs) and len(seqs) == 2
