"""The digest's link metadata in SQLite (table `link_meta`, migration 3)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from aggregator.store.base import Change


def _us(iso: str | None) -> int:
    if not iso:
        return 0
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1e6)


def put_rows(rows: list[dict[str, Any]]) -> Any:
    def op(conn: sqlite3.Connection, _seq: Any) -> list[Change]:
        conn.executemany(
            "INSERT INTO link_meta (url, final, source, status, fetched_us, data) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET final = excluded.final, "
            "source = excluded.source, status = excluded.status, "
            "fetched_us = excluded.fetched_us, data = excluded.data",
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


def read_rows(conn: sqlite3.Connection, source: str | None) -> dict[str, dict[str, Any]]:
    if source is None:
        cur = conn.execute("SELECT url, data FROM link_meta ORDER BY fetched_us")
    else:
        cur = conn.execute(
            "SELECT url, data FROM link_meta WHERE source = ? ORDER BY fetched_us", (source,)
        )
    return {str(url): json.loads(data) for url, data in cur.fetchall()}
