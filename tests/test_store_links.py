"""The `link_meta` accessors: SQLite through the store, PostgreSQL through the module the
PostgreSQL store wires in (run against a throwaway cluster when PostgreSQL is here)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI

from aggregator.store import SQLiteStore
from aggregator.store import postgres_links as pg

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


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        if IN_CI:
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="bc-links-pg-"))
    user: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "nobody", "nogroup")
        user = {"user": "nobody", "group": "nogroup"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [
            *(str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres"),
            *("--auth=trust", "--no-sync", "--locale=C", "--encoding=UTF8"),
        ],
        check=True,
        capture_output=True,
        cwd=root,
        **user,
    )
    proc = subprocess.Popen(
        [
            *(str(bindir / "postgres"), "-D", str(root / "data"), "-p", str(port)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="),
            *("-c", "fsync=off"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=root,
        **user,
    )
    try:
        for _ in range(300):  # bounded: 30 s
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def pg_conn(postgres: str) -> AsyncIterator[Any]:
    try:
        import asyncpg
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("asyncpg is not installed")
    conn = await asyncpg.connect(postgres)
    await conn.execute("DROP TABLE IF EXISTS link_meta")
    await conn.execute(pg.PG_LINK_META_MIGRATION)
    try:
        yield conn
    finally:
        await conn.close()


async def test_postgres_link_meta_round_trip_and_replace(pg_conn: Any) -> None:
    async with pg_conn.transaction():
        assert await pg.put_rows(ROWS)(pg_conn, None) == []
    check(await pg.read_rows(pg_conn, None), await pg.read_rows(pg_conn, "feed"))
    await pg.put_rows([ROWS[0] | {"status": "error"}])(pg_conn, None)
    rows = await pg.read_rows(pg_conn, None)
    assert rows["https://blog.example/a"]["status"] == "error" and len(rows) == 2
