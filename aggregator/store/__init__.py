"""Storage backends behind one interface, chosen by `storage.url`."""

from __future__ import annotations

from aggregator.config import ConfigError
from aggregator.store.base import Change, CursorError, Page, PageQuery, Store
from aggregator.store.sqlite import SQLiteStore

__all__ = ["Change", "CursorError", "Page", "PageQuery", "SQLiteStore", "Store", "open_store"]


def open_store(url: str) -> Store:
    """Build (not yet open) the store for a `storage.url`."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ConfigError("storage.url: sqlite:/// needs a file path")
        return SQLiteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from aggregator.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(
        f"storage.url: expected sqlite:///path or postgresql://…, got {url.split(':')[0]}"
    )
