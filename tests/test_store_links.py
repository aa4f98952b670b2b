"""The `link_meta` accessors through both stores: SQLite, and PostgreSQL on a throwaway
cluster (tests/servers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servers import create_database, shared_postgres

from aggregator.store import SQLiteStore
from aggregator.store.postgres import PostgresStore

ROWS: list[dict[str, Any]] = [
    {
        "url": "https://blog.example/a",
        "final": "https://blog.example/a/",
        "source": "page",
        "status": "ok",
        "fetched_at": "2026-11-22T10:00:00Z",
        "meta": {"title": "A", "author": "Ann"},
    },
    {
        "url": "https://feed.example/b",
        "source": "feed",
        "status": "ok",
        "fetched_at": "2026-11-22T11:00:00Z",
        "meta": {"title": "B"},
    },
]


def check(everything: dict[str, Any], feeds: dict[str, Any]) -> None:
    assert list(everything) == ["https://blog.example/a", "https://feed.example/b"]
    assert everything["https://blog.example/a"]["meta"]["author"] == "Ann"
    assert list(feeds) == ["https://feed.example/b"]


async def test_sqlite_link_meta_round_trip_and_replace(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    await store.put_link_meta(ROWS)
    check(await store.link_meta(), await store.link_meta("feed"))
    await store.put_link_meta([ROWS[0] | {"status": "error", "meta": None}])
    assert (await store.link_meta())["https://blog.example/a"]["status"] == "error"
    await store.close()
    reopened = SQLiteStore(tmp_path / "s.db")  # persistent: the next day's run sees it
    await reopened.open()
    assert len(await reopened.link_meta()) == 2
    await reopened.close()


async def test_postgres_link_meta_round_trip_and_replace() -> None:
    store = PostgresStore(await create_database(shared_postgres()))
    await store.open()
    try:
        await store.put_link_meta(ROWS)
        check(await store.link_meta(), await store.link_meta("feed"))
        await store.put_link_meta([ROWS[0] | {"status": "error"}])
        rows = await store.link_meta()
        assert rows["https://blog.example/a"]["status"] == "error" and len(rows) == 2
    finally:
        await store.close()
