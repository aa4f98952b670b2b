"""Versioned PostgreSQL schema migrations. Append only: never edit one that has shipped.

They mirror `migrations.MIGRATIONS` version for version (1: posts, cursors, local ids and
search; 2: moderation), so a schema version means the same thing in both backends. What
differs is only the dialect: a SEQUENCE hands out the change sequence to every node that
writes, and search is a `tsvector` column with a GIN index instead of an FTS5 table.
"""

from __future__ import annotations

from aggregator.store.postgres_links import PG_LINK_META_MIGRATION

PG_MIGRATIONS: list[str] = [
    # 1: posts with a change sequence, source cursors, local-id aliases, full-text search.
    """
    CREATE SEQUENCE change_seq AS BIGINT;
    CREATE TABLE posts (
        pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        seq BIGINT NOT NULL,
        platform TEXT NOT NULL,
        created_us BIGINT NOT NULL,
        author TEXT NOT NULL,
        session TEXT,
        has_media BOOLEAN NOT NULL DEFAULT FALSE,
        data TEXT NOT NULL,
        provenance TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        likes INTEGER NOT NULL DEFAULT 0,
        reposts INTEGER NOT NULL DEFAULT 0,
        replies INTEGER NOT NULL DEFAULT 0,
        home BOOLEAN NOT NULL DEFAULT TRUE,
        edited_at TEXT,
        deleted BOOLEAN NOT NULL DEFAULT FALSE,
        hidden BOOLEAN NOT NULL DEFAULT FALSE,
        first_seen_us BIGINT NOT NULL,
        search TSVECTOR
    );
    CREATE UNIQUE INDEX posts_seq ON posts (seq);
    CREATE INDEX posts_created ON posts (created_us DESC, pk DESC);
    CREATE INDEX posts_platform_created ON posts (platform, created_us DESC, pk DESC);
    CREATE INDEX posts_search ON posts USING GIN (search);
    CREATE TABLE cursors (
        source TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_us BIGINT NOT NULL
    );
    CREATE TABLE local_ids (
        source TEXT NOT NULL,
        local_id TEXT NOT NULL,
        post_id TEXT NOT NULL,
        PRIMARY KEY (source, local_id)
    );
    """,
    # 2: moderation: approval, pins, which rule decided, bans, audit log, settings.
    """
    ALTER TABLE posts ADD COLUMN approved BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE posts ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE posts ADD COLUMN rule TEXT;
    ALTER TABLE posts ADD COLUMN moderated_by TEXT;
    CREATE INDEX posts_author ON posts (lower(author));
    CREATE TABLE bans (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        at_us BIGINT NOT NULL,
        actor TEXT NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at_us BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: the digest's link metadata (unfurled pages, feed entries, Webmentions).
    PG_LINK_META_MIGRATION,
]

# Where the applied version is kept (SQLite uses PRAGMA user_version).
VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
