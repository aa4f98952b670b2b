"""Versioned schema migrations. Append only: never edit a migration that has shipped."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: posts with a change sequence, source cursors, local-id aliases, full-text search.
    """
    CREATE TABLE posts (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        seq INTEGER NOT NULL,
        platform TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        author TEXT NOT NULL,
        session TEXT,
        has_media INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL,
        provenance TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        likes INTEGER NOT NULL DEFAULT 0,
        reposts INTEGER NOT NULL DEFAULT 0,
        replies INTEGER NOT NULL DEFAULT 0,
        home INTEGER NOT NULL DEFAULT 1,
        edited_at TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        hidden INTEGER NOT NULL DEFAULT 0,
        first_seen_us INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX posts_seq ON posts (seq);
    CREATE INDEX posts_created ON posts (created_us DESC, pk DESC);
    CREATE INDEX posts_platform_created ON posts (platform, created_us DESC, pk DESC);
    CREATE TABLE cursors (
        source TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_us INTEGER NOT NULL
    );
    CREATE TABLE local_ids (
        source TEXT NOT NULL,
        local_id TEXT NOT NULL,
        post_id TEXT NOT NULL,
        PRIMARY KEY (source, local_id)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE posts_fts USING fts5 (body, tokenize = 'unicode61 remove_diacritics 2');
    """,
    # 2: moderation: approval, pins, which rule decided, bans, audit log, settings.
    """
    ALTER TABLE posts ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE posts ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE posts ADD COLUMN rule TEXT;
    ALTER TABLE posts ADD COLUMN moderated_by TEXT;
    CREATE INDEX posts_author ON posts (author);
    CREATE TABLE bans (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        actor TEXT NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_us INTEGER NOT NULL,
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
    # 3: what the digest learnt about links (unfurled pages, feed entries, Webmentions).
    """
    CREATE TABLE link_meta (
        url TEXT PRIMARY KEY,
        final TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        fetched_us INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX link_meta_source ON link_meta (source, fetched_us);
    """,
]


def target_version() -> int:
    return len(MIGRATIONS)
