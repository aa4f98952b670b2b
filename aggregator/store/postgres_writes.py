"""The SQL of the PostgreSQL store: upserts, tombstones, the change sequence, paging.

Everything here runs on a connection the caller holds inside the writer's transaction
(with the write lock taken), or builds a query for the read path. The decision what a
copy of a post means is `aggregator.dedupe.decide`, the same pure function SQLite uses.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from aggregator.dedupe import Decision, StoredState, decide, fingerprint
from aggregator.model import Post, parse_timestamp
from aggregator.store.base import (
    Change,
    CursorError,
    Page,
    PageQuery,
    Verdict,
    decode_page_cursor,
    encode_page_cursor,
)
from aggregator.store.sqlite import _post_from_row, _provenance_json, _search_body

post_from_row = _post_from_row

# A connection of its own or one lent by the pool: both run the same queries.
PgConn = asyncpg.Connection | PoolConnectionProxy


class SeqAllocator:
    """Hands out change numbers from `change_seq` for one write transaction.

    Only the first number costs a round trip: the write lock guarantees nobody else draws
    from the sequence until we commit, so the rest are counted locally and the sequence
    is moved past them once at the end.
    """

    def __init__(self, conn: PgConn) -> None:
        self._conn = conn
        self._first: int | None = None
        self._last = 0

    async def next(self) -> int:
        if self._first is None:
            self._first = int(await self._conn.fetchval("SELECT nextval('change_seq')"))
            self._last = self._first
        else:
            self._last += 1
        return self._last

    async def finish(self) -> None:
        if self._first is not None and self._last > self._first:
            await self._conn.execute("SELECT setval('change_seq', $1)", self._last)


def fold(text: str) -> str:
    """Case- and accent-insensitive text for the search column and for queries (what
    SQLite's `remove_diacritics` does), without needing the `unaccent` extension."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@dataclass
class _State:
    fingerprint: str
    metrics: tuple[int, int, int]
    home: bool
    edited_at: str | None
    deleted: bool
    session: str | None
    hidden: bool
    approved: bool
    pinned: bool
    rule: str | None
    moderated_by: str | None


_STATE_SQL = (
    "SELECT id, fingerprint, likes, reposts, replies, home, edited_at, deleted, session, "
    "hidden, approved, pinned, rule, moderated_by FROM posts WHERE id = ANY($1::text[])"
)
_INSERT_SQL = (
    "INSERT INTO posts (id, seq, platform, created_us, author, session, has_media, data, "
    "provenance, fingerprint, likes, reposts, replies, home, edited_at, first_seen_us, hidden, "
    "approved, rule, moderated_by, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
    "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, to_tsvector('simple', $21))"
)
_UPDATE_SQL = (
    "UPDATE posts SET seq = $1, platform = $2, created_us = $3, author = $4, session = $5, "
    "has_media = $6, data = $7, provenance = $8, fingerprint = $9, likes = $10, reposts = $11, "
    "replies = $12, home = $13, edited_at = $14, hidden = $15, rule = $16, moderated_by = $17, "
    "search = to_tsvector('simple', $18) WHERE id = $19"
)


def _row_values(post: Post, fp: str) -> tuple[Any, ...]:
    created = parse_timestamp(post.created_at)
    prov = post.provenance
    return (
        post.platform,
        int(created.timestamp() * 1e6) if created else 0,
        post.author.handle,
        post.session,
        bool(post.media),
        json.dumps(post.to_json(), ensure_ascii=False),
        json.dumps(_provenance_json(prov), ensure_ascii=False),
        fp,
        post.metrics.likes,
        post.metrics.reposts,
        post.metrics.replies,
        prov.home,
        prov.edited_at,
    )


async def apply_upsert(
    conn: PgConn,
    seqs: SeqAllocator,
    posts: Sequence[Post],
    verdicts: Mapping[str, Verdict],
    now_us: int,
) -> list[Change]:
    """Insert new posts, update changed ones: one read and three bulk writes per batch."""
    rows = await conn.fetch(_STATE_SQL, list({p.id for p in posts}))
    states = {r["id"]: _State(r[1], (r[2], r[3], r[4]), *r[5:]) for r in rows}
    local_rows: list[tuple[str, str, str]] = []
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    changes: list[Change] = []
    for post in posts:
        st = states.get(post.id)
        existing = None
        if st is not None:
            existing = StoredState(st.fingerprint, st.metrics, st.home, st.edited_at, st.deleted)
        fp = fingerprint(post)
        decision = decide(existing, post, fp)
        prov = post.provenance
        if prov.local_id and prov.source:
            local_rows.append((prov.source, prov.local_id, post.id))
        if decision is Decision.SKIP:
            continue
        if st is not None and post.session is None and st.session is not None:
            post = post.with_changes(session=st.session)  # keep an assignment we made
        action, rule = verdicts.get(post.id, ("show", None))
        seq = await seqs.next()
        values = _row_values(post, fp)
        # PostgreSQL text cannot hold NUL; a post may (untrusted input).
        search = fold(_search_body(post)).replace("\x00", " ")
        m = post.metrics
        if decision is Decision.INSERT or st is None:
            hidden, approved = action == "hide", action == "approve"
            by = "auto" if rule else None
            inserts.append((post.id, seq, *values, now_us, hidden, approved, rule, by, search))
            states[post.id] = _State(
                fp,
                (m.likes, m.reposts, m.replies),
                prov.home,
                prov.edited_at,
                False,
                post.session,
                hidden,
                approved,
                False,
                rule,
                by,
            )
            changes.append(Change("new", post.id, seq, post, hidden, approved, False, rule))
            continue
        # An edit is judged again, but never overrides a moderator's own decision.
        if st.moderated_by in (None, "auto"):
            if action == "hide":
                st.hidden, st.rule, st.moderated_by = True, rule, "auto"
            elif st.hidden and st.moderated_by == "auto":
                st.hidden, st.rule, st.moderated_by = False, None, None
        updates.append((seq, *values, st.hidden, st.rule, st.moderated_by, search, post.id))
        st.fingerprint, st.metrics, st.home = fp, (m.likes, m.reposts, m.replies), prov.home
        st.edited_at, st.session = prov.edited_at, post.session
        changes.append(
            Change("updated", post.id, seq, post, st.hidden, st.approved, st.pinned, st.rule)
        )
    if local_rows:
        await conn.executemany(
            "INSERT INTO local_ids (source, local_id, post_id) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            local_rows,
        )
    if inserts:
        await conn.executemany(_INSERT_SQL, inserts)
    if updates:
        await conn.executemany(_UPDATE_SQL, updates)
    return changes


async def tombstone_ids(
    conn: PgConn, seqs: SeqAllocator, ids: Sequence[str], now_us: int
) -> list[Change]:
    changes: list[Change] = []
    for post_id in ids:
        row = await conn.fetchrow("SELECT pk, deleted, data FROM posts WHERE id = $1", post_id)
        if row is None:
            # Remember the delete so a later copy from a lagging server stays deleted.
            await conn.execute(
                "INSERT INTO posts (id, seq, platform, created_us, author, data, provenance, "
                "fingerprint, deleted, first_seen_us) "
                "VALUES ($1, $2, 'unknown', 0, '', '{}', '{}', '', TRUE, $3)",
                post_id,
                await seqs.next(),
                now_us,
            )
            continue
        if row["deleted"]:
            continue
        seq = await seqs.next()
        # The author deleted it: keep only what identifies the tombstone.
        old = json.loads(row["data"])
        stub = {k: old.get(k) for k in ("id", "platform", "created_at")}
        await conn.execute(
            "UPDATE posts SET seq = $1, deleted = TRUE, data = $2, fingerprint = '', "
            "search = NULL WHERE pk = $3",
            seq,
            json.dumps(stub),
            row["pk"],
        )
        changes.append(Change("deleted", post_id, seq, None))
    return changes


async def lookup_local(conn: PgConn, source: str, local_ids: list[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT local_id, post_id FROM local_ids WHERE source = $1 AND local_id = ANY($2)",
        source,
        local_ids,
    )
    found = {r[0]: str(r[1]) for r in rows}
    return [found[local] for local in local_ids if local in found]


def page_sql(query: PageQuery, limit: int) -> tuple[str, list[Any], bool]:
    """The SELECT for one page of `/api/posts`; returns (sql, params, ascending)."""
    where = ["NOT deleted", "NOT hidden"]
    params: list[Any] = []

    def arg(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if query.before:
        created, pk = decode_page_cursor(query.before)
        where.append(f"(created_us, pk) < ({arg(created)}, {arg(pk)})")
    if query.after:
        created, pk = decode_page_cursor(query.after)
        where.append(f"(created_us, pk) > ({arg(created)}, {arg(pk)})")
    if query.platform:
        where.append(f"platform = {arg(query.platform)}")
    if query.session:
        where.append(f"session = {arg(query.session)}")
    if query.approved_only:
        where.append("approved")
    if query.has_media is not None:
        where.append(f"has_media = {arg(query.has_media)}")
    if query.q:
        terms = fold(query.q.replace("\x00", " ")).split()[:16]
        if not terms:
            raise CursorError("q: empty search")
        # plainto_tsquery never parses user input as query syntax.
        where.append(f"search @@ plainto_tsquery('simple', {arg(' '.join(terms))})")
    # With `after`, take the posts just after the cursor (oldest first) so nothing in
    # between is skipped, then present them newest first like every page.
    ascending = bool(query.after and not query.before)
    order = "ASC" if ascending else "DESC"
    sql = (
        f"SELECT data, provenance, created_us, pk FROM posts WHERE {' AND '.join(where)} "
        f"ORDER BY created_us {order}, pk {order} LIMIT {arg(limit + 1)}"
    )
    return sql, params, ascending


def page_from_rows(
    rows: Sequence[asyncpg.Record], query: PageQuery, limit: int, ascending: bool
) -> Page:
    more = len(rows) > limit
    kept = list(rows[:limit])
    if ascending:
        kept.reverse()
    posts = [post_from_row(r[0], r[1]) for r in kept]
    # `newer` lets a client ask for what arrived after this page (`after=`).
    newer = encode_page_cursor(kept[0][2], kept[0][3]) if kept else query.after
    if ascending:
        return Page(posts, None, newer)
    nxt = encode_page_cursor(kept[-1][2], kept[-1][3]) if kept and more else None
    return Page(posts, nxt, newer)
