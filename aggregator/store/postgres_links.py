"""The digest's link metadata in PostgreSQL (see `sqlite_links`), ready for the
PostgreSQL store: append `PG_LINK_META_MIGRATION` to `PG_MIGRATIONS` (version 3, like
SQLite's) and give `PostgresStore` the two methods of `store.base.Store`:

    async def put_link_meta(self, rows):
        if rows:
            await self.write(postgres_links.put_rows(rows))

    async def link_meta(self, source=None):
        return await self.read(lambda c: postgres_links.read_rows(c, source))

`conn` is an asyncpg connection (typed loosely so this module stands alone).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aggregator.store.base import Change
from aggregator.store.sqlite_links import _us

PG_LINK_META_MIGRATION = """
    CREATE TABLE link_meta (
        url TEXT PRIMARY KEY,
        final TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        fetched_us BIGINT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX link_meta_source ON link_meta (source, fetched_us);
"""

UPSERT = (
    "INSERT INTO link_meta (url, final, source, status, fetched_us, data) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (url) DO UPDATE SET final = excluded.final, "
    "source = excluded.source, status = excluded.status, "
    "fetched_us = excluded.fetched_us, data = excluded.data"
)


def put_rows(rows: list[dict[str, Any]]) -> Callable[[Any, Any], Awaitable[list[Change]]]:
    async def op(conn: Any, _seqs: Any) -> list[Change]:
        await conn.executemany(
            UPSERT,
            [
                (
                    row["url"],
                    row.get("final") or row["url"],
                    row["source"],
                    row["status"],
                    _us(row.get("fetched_at")),
                    json.dumps(row, ensure_ascii=False),
                )
                for row in rows
            ],
        )
        return []

    return op


async def read_rows(conn: Any, source: str | None) -> dict[str, dict[str, Any]]:
    if source is None:
        records = await conn.fetch("SELECT url, data FROM link_meta ORDER BY fetched_us")
    else:
        records = await conn.fetch(
            "SELECT url, data FROM link_meta WHERE source = $1 ORDER BY fetched_us", source
        )
    return {str(r["url"]): json.loads(r["data"]) for r in records}
