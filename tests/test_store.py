"""The SQLite store: dedupe, edits, deletes, restart, cursors, paging, concurrent reads."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from factories import make_post

from aggregator.model import Author, Metrics, Provenance
from aggregator.store import CursorError, PageQuery, SQLiteStore


@pytest.fixture
async def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "t.db")
    await s.open()
    yield s
    await s.close()


async def test_insert_then_duplicate_is_noop(store: SQLiteStore) -> None:
    changes = await store.upsert([make_post(1), make_post(2)])
    assert [c.kind for c in changes] == ["new", "new"]
    assert await store.upsert([make_post(1)]) == []
    assert await store.count() == 2


async def test_edit_updates_and_stale_copy_does_not_revert(store: SQLiteStore) -> None:
    await store.upsert([make_post(1)])
    edited = make_post(
        1,
        text="edited",
        html="<p>edited</p>",
        provenance=Provenance(source="mastodon:social.example", edited_at="2026-11-21T10:00:00Z"),
    )
    changes = await store.upsert([edited])
    assert [c.kind for c in changes] == ["updated"]
    # A server that has not seen the edit yet still serves the old text.
    assert await store.upsert([make_post(1)]) == []
    got = await store.get(make_post(1).id)
    assert got is not None and got.text == "edited"


async def test_home_server_counts_win(store: SQLiteStore) -> None:
    home = Provenance(source="mastodon:social.example", home=True)
    away = Provenance(source="mastodon:other.example", home=False)
    await store.upsert([make_post(1, metrics=Metrics(likes=5), provenance=home)])
    assert await store.upsert([make_post(1, metrics=Metrics(likes=1), provenance=away)]) == []
    changes = await store.upsert([make_post(1, metrics=Metrics(likes=9), provenance=home)])
    assert changes[0].post is not None and changes[0].post.metrics.likes == 9


async def test_delete_tombstones_and_is_never_resurrected(store: SQLiteStore) -> None:
    await store.upsert([make_post(1), make_post(2)])
    changes = await store.tombstone([make_post(1).id])
    assert [(c.kind, c.id) for c in changes] == [("deleted", make_post(1).id)]
    assert await store.get(make_post(1).id) is None
    assert await store.upsert([make_post(1)]) == []
    assert await store.tombstone([make_post(1).id]) == []  # a second delete is a no-op
    page = await store.page(PageQuery())
    assert [p.id for p in page.posts] == [make_post(2).id]


async def test_delete_before_seen_stays_deleted(store: SQLiteStore) -> None:
    await store.tombstone([make_post(7).id])
    assert await store.upsert([make_post(7)]) == []


async def test_delete_by_local_id(store: SQLiteStore) -> None:
    await store.upsert([make_post(3)])
    changes = await store.tombstone_local("mastodon:social.example", ["3"])
    assert [c.id for c in changes] == [make_post(3).id]
    assert await store.tombstone_local("mastodon:social.example", ["999"]) == []


async def test_restart_on_same_file_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    first = SQLiteStore(path)
    await first.open()
    await first.upsert([make_post(n) for n in range(1, 51)])
    await first.save_cursor("mastodon:social.example", "50")
    last = await first.last_seq()
    await first.close()
    second = SQLiteStore(path)
    await second.open()
    assert await second.count() == 50
    assert await second.load_cursor("mastodon:social.example") == "50"
    assert await second.upsert([make_post(10)]) == []
    changes = await second.upsert([make_post(51)])
    assert changes[0].seq == last + 1  # the change sequence continues, never reused
    await second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_cursor_is_saved_after_the_posts_it_covers(store: SQLiteStore) -> None:
    posts = asyncio.create_task(store.upsert([make_post(n) for n in range(100)]))
    cursor = asyncio.create_task(store.save_cursor("src", "99"))
    await asyncio.gather(posts, cursor)
    assert await store.load_cursor("src") == "99"
    assert await store.count() == 100


async def test_paging_newest_first_without_gaps(store: SQLiteStore) -> None:
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


async def test_after_returns_what_is_newer(store: SQLiteStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 11)])
    first = await store.page(PageQuery(limit=5))
    assert first.newer is not None
    await store.upsert([make_post(n) for n in range(11, 14)])
    newer = await store.page(PageQuery(after=first.newer, limit=50))
    assert [p.id for p in newer.posts] == [make_post(n).id for n in (13, 12, 11)]


async def test_filters_and_search(store: SQLiteStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 10)])
    await store.upsert(
        [
            make_post(
                100, text="Accessibility in emergency apps", author=Author(handle="@bob@x.example")
            )
        ]
    )
    media = await store.page(PageQuery(has_media=True))
    assert {p.id for p in media.posts} == {make_post(n).id for n in (3, 6, 9)}
    found = await store.page(PageQuery(q="accessibility"))
    assert [p.id for p in found.posts] == [make_post(100).id]
    assert (await store.page(PageQuery(platform="bluesky"))).posts == []
    # FTS syntax in user input is data, not a query language.
    assert (await store.page(PageQuery(q='" OR * NEAR('))).posts == []


async def test_search_with_nul_characters_is_data_not_a_crash(store: SQLiteStore) -> None:
    # Found by the reliability fuzzer: a NUL ended the quoted FTS5 term early ("unterminated
    # string"), a 500 on /api/posts?q= and on /.
    await store.upsert([make_post(100, text="Accessibility in emergency apps")])
    found = await store.page(PageQuery(q="accessibility\x00emergency"))
    assert [p.id for p in found.posts] == [make_post(100).id]
    with pytest.raises(CursorError):
        await store.page(PageQuery(q="\x00"))


async def test_bad_cursor_is_a_clear_error(store: SQLiteStore) -> None:
    with pytest.raises(CursorError):
        await store.page(PageQuery(before="not-a-cursor!!"))


async def test_changes_since_replays_in_order(store: SQLiteStore) -> None:
    await store.upsert([make_post(n) for n in range(1, 6)])
    mark = await store.last_seq()
    await store.upsert([make_post(6)])
    await store.tombstone([make_post(2).id])
    changes = await store.changes_since(mark, 100)
    assert [(c.kind, c.id) for c in changes] == [
        ("updated", make_post(6).id),
        ("deleted", make_post(2).id),
    ]
    assert changes[0].surfaced  # a resuming client is told the latest state


async def test_concurrent_readers_while_writing(store: SQLiteStore) -> None:
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


async def test_many_small_writes_are_batched(store: SQLiteStore) -> None:
    await asyncio.gather(*(store.upsert([make_post(n)]) for n in range(500)))
    assert await store.count() == 500
    # 500 single-post writes queued together must not cost 500 commits.
    assert len(store.commit_seconds) < 100
