"""SQLite store: WAL mode, one writer task that owns the write connection and batches
commits, reads on their own connections in a small thread pool (datasette's pattern).

Writes are queued; the writer drains whatever is waiting (up to `MAX_BATCH_ROWS`) into
one transaction, so a quiet stream commits at once and a busy one commits in batches.
A source's cursor goes through the same queue after the posts it covers, so a saved
cursor is never ahead of the posts that are durable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from aggregator.dedupe import Decision, StoredState, decide, fingerprint
from aggregator.model import Post, Provenance, parse_timestamp
from aggregator.store import sqlite_admin as admin
from aggregator.store import sqlite_links as links
from aggregator.store.base import (
    Change,
    CursorError,
    Page,
    PageQuery,
    Verdict,
    decode_page_cursor,
    encode_page_cursor,
)
from aggregator.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 1000

# A write run inside the writer's transaction: (connection, seq allocator) -> changes.
WriteFn = Callable[[sqlite3.Connection, Callable[[], int]], list[Change]]
MAX_PAGE = 200


@dataclass
class _Op:
    kind: str  # "upsert" | "tombstone" | "tombstone_local" | "cursor"
    args: Any
    future: asyncio.Future[list[Change]] = field(repr=False)
    rows: int = 1


class StoreClosedError(RuntimeError):
    pass


class SQLiteStore:
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._queue: asyncio.Queue[_Op | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-write")
        self._read_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="store-read")
        self._local = threading.local()
        self._write_conn: sqlite3.Connection | None = None
        self._seq = 0
        self._closed = False
        self.commit_seconds: list[float] = []  # recent commit durations, for metrics
        self.commit_listeners: list[Callable[[float], None]] = []  # e.g. a histogram

    # lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._write_pool, self._open_writer)
        self._writer_task = asyncio.create_task(self._writer(), name="store-writer")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _open_writer(self) -> None:
        conn = self._connect()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path}: schema version {version} is newer than this program "
                f"({len(MIGRATIONS)}); upgrade backchannel"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits first; wrap in an explicit transaction so a failed
            # migration leaves the previous version intact.
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
            log.info("store: migrated %s to schema version %d", self.path, number)
        self._seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM posts").fetchone()[0]
        self._write_conn = conn

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer_task is not None:
            await self._queue.put(None)
            await self._writer_task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._write_pool, self._close_writer)
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)

    def _close_writer(self) -> None:
        if self._write_conn is not None:
            self._write_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._write_conn.close()
            self._write_conn = None

    # writes ----------------------------------------------------------------------

    async def _submit(self, kind: str, args: Any, rows: int = 1) -> list[Change]:
        if self._closed:
            raise StoreClosedError("store is closed")
        future: asyncio.Future[list[Change]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Op(kind, args, future, rows))
        return await future

    async def upsert(
        self, posts: list[Post], verdicts: Mapping[str, Verdict] | None = None
    ) -> list[Change]:
        if not posts:
            return []
        return await self._submit("upsert", (list(posts), verdicts or {}), rows=len(posts))

    async def write(self, fn: WriteFn) -> list[Change]:
        """Run `fn(conn, next_seq)` in the writer's transaction (moderation, admin)."""
        return await self._submit("call", fn)

    async def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return await self._read(fn)

    # moderation and admin (see sqlite_admin) ------------------------------------------

    async def moderate(self, action: str, post_id: str, actor: str) -> list[Change]:
        return await self.write(admin.moderate_op(action, post_id, actor))

    async def ban(self, kind: str, value: str, actor: str, *, ban: bool = True) -> list[Change]:
        return await self.write(admin.ban_op(kind, value, actor, ban=ban))

    async def assign(self, post_id: str, session: str | None, actor: str) -> list[Change]:
        return await self.write(admin.assign_op(post_id, session, actor))

    async def audit(self, actor: str, action: str, target: str, detail: Any) -> None:
        await self.write(admin.audit_op(actor, action, target, detail))

    async def put_settings(self, values: dict[str, Any], actor: str) -> None:
        await self.write(admin.settings_op(values, actor))

    async def get_settings(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._read(admin.read_settings)
        return result

    async def bans(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(admin.read_bans)
        return result

    async def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(lambda c: admin.read_audit(c, limit))
        return result

    async def admin_posts(
        self, which: str, limit: int = 200
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        result: list[tuple[dict[str, Any], dict[str, Any]]] = await self._read(
            lambda c: admin.read_admin_posts(c, which, limit)
        )
        return result

    async def put_link_meta(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.write(links.put_rows(rows))

    async def link_meta(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = await self._read(lambda c: links.read_rows(c, source))
        return result

    async def tombstone(self, ids: list[str]) -> list[Change]:
        return await self._submit("tombstone", list(ids), rows=max(1, len(ids)))

    async def tombstone_local(self, source: str, local_ids: list[str]) -> list[Change]:
        return await self._submit("tombstone_local", (source, list(local_ids)))

    async def save_cursor(self, source: str, value: str) -> None:
        await self._submit("cursor", (source, value))

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            rows = first.rows
            while rows < MAX_BATCH_ROWS and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
                rows += item.rows
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._write_pool, self._apply, batch)
            except Exception as exc:  # a failed batch must not kill the writer
                log.exception("store: write batch of %d ops failed", len(batch))
                for op in batch:
                    if not op.future.done():
                        op.future.set_exception(exc)
                continue
            took = time.perf_counter() - started
            self.commit_seconds = [*self.commit_seconds[-99:], took]
            for listener in self.commit_listeners:
                listener(took)
            for op, result in zip(batch, results, strict=True):
                if op.future.done():
                    continue
                if isinstance(result, Exception):
                    op.future.set_exception(result)
                else:
                    op.future.set_result(result)

    def _apply(self, batch: Sequence[_Op]) -> list[list[Change] | Exception]:
        conn = self._write_conn
        assert conn is not None
        seq_before = self._seq
        conn.execute("BEGIN IMMEDIATE")
        try:
            results: list[list[Change] | Exception] = []
            for op in batch:
                # Each op in its own savepoint: an admin action on an unknown post fails
                # alone instead of taking the posts batched with it down too.
                before = self._seq
                conn.execute("SAVEPOINT op")
                try:
                    results.append(self._apply_one(conn, op))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    self._seq = before
                    results.append(exc)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._seq = seq_before
            raise
        return results

    def _apply_one(self, conn: sqlite3.Connection, op: _Op) -> list[Change]:
        if op.kind == "upsert":
            return self._upsert(conn, *op.args)
        if op.kind == "call":
            result: list[Change] = op.args(conn, self._next_seq)
            return result
        if op.kind == "tombstone":
            return self._tombstone(conn, op.args)
        if op.kind == "tombstone_local":
            source, local_ids = op.args
            ids = _lookup_local(conn, source, local_ids)
            return self._tombstone(conn, ids)
        if op.kind == "cursor":
            source, value = op.args
            conn.execute(
                "INSERT INTO cursors (source, value, updated_us) VALUES (?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET value = excluded.value, "
                "updated_us = excluded.updated_us",
                (source, value, int(self._clock() * 1e6)),
            )
            return []
        raise AssertionError(op.kind)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _upsert(
        self, conn: sqlite3.Connection, posts: list[Post], verdicts: Mapping[str, Verdict]
    ) -> list[Change]:
        changes: list[Change] = []
        now_us = int(self._clock() * 1e6)
        for post in posts:
            row = conn.execute(
                "SELECT fingerprint, likes, reposts, replies, home, edited_at, deleted, session, "
                "hidden, approved, pinned, rule, moderated_by FROM posts WHERE id = ?",
                (post.id,),
            ).fetchone()
            existing = None
            if row is not None:
                existing = StoredState(
                    fingerprint=row[0],
                    metrics=(row[1], row[2], row[3]),
                    home=bool(row[4]),
                    edited_at=row[5],
                    deleted=bool(row[6]),
                )
            fp = fingerprint(post)
            decision = decide(existing, post, fp)
            prov = post.provenance
            if prov.local_id and prov.source:
                conn.execute(
                    "INSERT OR IGNORE INTO local_ids (source, local_id, post_id) VALUES (?, ?, ?)",
                    (prov.source, prov.local_id, post.id),
                )
            if decision is Decision.SKIP:
                continue
            if row is not None and post.session is None and row[7] is not None:
                post = post.with_changes(session=row[7])  # keep an assignment we made
            action, rule = verdicts.get(post.id, ("show", None))
            seq = self._next_seq()
            values = _row_values(post, fp)
            if decision is Decision.INSERT:
                hidden, approved = action == "hide", action == "approve"
                cur = conn.execute(
                    "INSERT INTO posts (id, seq, platform, created_us, author, session, "
                    "has_media, data, provenance, fingerprint, likes, reposts, replies, home, "
                    "edited_at, first_seen_us, hidden, approved, rule, moderated_by) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        post.id,
                        seq,
                        *values,
                        now_us,
                        int(hidden),
                        int(approved),
                        rule,
                        "auto" if rule else None,
                    ),
                )
                conn.execute(
                    "INSERT INTO posts_fts (rowid, body) VALUES (?, ?)",
                    (cur.lastrowid, _search_body(post)),
                )
                changes.append(Change("new", post.id, seq, post, hidden, approved, False, rule))
                continue
            hidden, approved, pinned = bool(row[8]), bool(row[9]), bool(row[10])
            old_rule, moderated_by = row[11], row[12]
            # An edit is judged again, but never overrides a moderator's own decision.
            if moderated_by in (None, "auto"):
                if action == "hide":
                    hidden, old_rule, moderated_by = True, rule, "auto"
                elif hidden and moderated_by == "auto":
                    hidden, old_rule, moderated_by = False, None, None
            pk = conn.execute(
                "UPDATE posts SET seq=?, platform=?, created_us=?, author=?, session=?, "
                "has_media=?, data=?, provenance=?, fingerprint=?, likes=?, reposts=?, "
                "replies=?, home=?, edited_at=?, hidden=?, rule=?, moderated_by=? "
                "WHERE id=? RETURNING pk",
                (seq, *values, int(hidden), old_rule, moderated_by, post.id),
            ).fetchone()[0]
            conn.execute("DELETE FROM posts_fts WHERE rowid = ?", (pk,))
            conn.execute(
                "INSERT INTO posts_fts (rowid, body) VALUES (?, ?)", (pk, _search_body(post))
            )
            changes.append(
                Change("updated", post.id, seq, post, hidden, approved, pinned, old_rule)
            )
        return changes

    def _tombstone(self, conn: sqlite3.Connection, ids: Iterable[str]) -> list[Change]:
        changes: list[Change] = []
        for post_id in ids:
            row = conn.execute(
                "SELECT pk, deleted, data FROM posts WHERE id = ?", (post_id,)
            ).fetchone()
            seq = self._next_seq()
            if row is None:
                # Remember the delete so a later copy from a lagging server stays deleted.
                conn.execute(
                    "INSERT INTO posts (id, seq, platform, created_us, author, data, provenance,"
                    " fingerprint, deleted, first_seen_us) VALUES (?,?,?,?,?,?,?,?,1,?)",
                    (post_id, seq, "unknown", 0, "", "{}", "{}", "", int(self._clock() * 1e6)),
                )
                continue
            if row[1]:
                self._seq -= 1
                continue
            # The author deleted it: keep only what identifies the tombstone.
            old = json.loads(row[2])
            stub = {k: old.get(k) for k in ("id", "platform", "created_at")}
            conn.execute(
                "UPDATE posts SET seq=?, deleted=1, data=?, fingerprint='' WHERE pk=?",
                (seq, json.dumps(stub), row[0]),
            )
            conn.execute("DELETE FROM posts_fts WHERE rowid = ?", (row[0],))
            changes.append(Change("deleted", post_id, seq, None))
        return changes

    # reads -----------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise StoreClosedError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, lambda: fn(self._reader()))

    async def load_cursor(self, source: str) -> str | None:
        def q(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM cursors WHERE source = ?", (source,)).fetchone()
            return None if row is None else str(row[0])

        result: str | None = await self._read(q)
        return result

    async def recent_local_ids(self, source: str, limit: int) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT l.local_id FROM local_ids l JOIN posts p ON p.id = l.post_id "
                "WHERE l.source = ? AND p.deleted = 0 ORDER BY p.created_us DESC LIMIT ?",
                (source, limit),
            ).fetchall()
            return [str(r[0]) for r in rows]

        result: list[str] = await self._read(q)
        return result

    async def get(self, post_id: str) -> Post | None:
        def q(conn: sqlite3.Connection) -> Post | None:
            row = conn.execute(
                "SELECT data, provenance FROM posts WHERE id = ? AND deleted = 0 AND hidden = 0",
                (post_id,),
            ).fetchone()
            return None if row is None else _post_from_row(row[0], row[1])

        result: Post | None = await self._read(q)
        return result

    async def page(self, query: PageQuery) -> Page:
        limit = max(1, min(query.limit, MAX_PAGE))
        where = ["deleted = 0", "hidden = 0"]
        params: list[Any] = []
        if query.before:
            created, pk = decode_page_cursor(query.before)
            where.append("(created_us < ? OR (created_us = ? AND pk < ?))")
            params += [created, created, pk]
        if query.after:
            created, pk = decode_page_cursor(query.after)
            where.append("(created_us > ? OR (created_us = ? AND pk > ?))")
            params += [created, created, pk]
        if query.platform:
            where.append("platform = ?")
            params.append(query.platform)
        if query.session:
            where.append("session = ?")
            params.append(query.session)
        if query.approved_only:
            where.append("approved = 1")
        if query.has_media is not None:
            where.append("has_media = ?")
            params.append(int(query.has_media))
        if query.q:
            where.append("pk IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)")
            params.append(_fts_query(query.q))
        # With `after`, take the posts just after the cursor (oldest first) so nothing in
        # between is skipped, then present them newest first like every page.
        order = "ASC" if query.after and not query.before else "DESC"
        sql = (
            f"SELECT data, provenance, created_us, pk FROM posts WHERE {' AND '.join(where)} "
            f"ORDER BY created_us {order}, pk {order} LIMIT ?"
        )
        params.append(limit + 1)

        def q(conn: sqlite3.Connection) -> Page:
            rows = conn.execute(sql, params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            if order == "ASC":
                rows.reverse()
            posts = [_post_from_row(r[0], r[1]) for r in rows]
            # `newer` lets a client ask for what arrived after this page (`after=`).
            newer = encode_page_cursor(rows[0][2], rows[0][3]) if rows else query.after
            if order == "ASC":
                return Page(posts, None, newer)
            nxt = encode_page_cursor(rows[-1][2], rows[-1][3]) if rows and more else None
            return Page(posts, nxt, newer)

        try:
            page: Page = await self._read(q)
        except sqlite3.OperationalError as exc:
            if query.q and "fts5" in str(exc).lower():
                raise CursorError(f"q: cannot search for {query.q[:40]!r}") from None
            raise
        return page

    async def changes_since(self, seq: int, limit: int) -> list[Change]:
        def q(conn: sqlite3.Connection) -> list[Change]:
            rows = conn.execute(
                "SELECT id, seq, deleted, hidden, data, provenance, approved, pinned, rule "
                "FROM posts WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            out: list[Change] = []
            for post_id, row_seq, deleted, hidden, data, prov, approved, pinned, rule in rows:
                if deleted:
                    out.append(Change("deleted", post_id, row_seq, None))
                else:
                    post = _post_from_row(data, prov)
                    # The row's latest state: show it, or retract it if it is now hidden.
                    out.append(
                        Change(
                            "updated",
                            post_id,
                            row_seq,
                            post,
                            bool(hidden),
                            bool(approved),
                            bool(pinned),
                            rule,
                            surfaced=True,
                        )
                    )
            return out

        result: list[Change] = await self._read(q)
        return result

    async def last_seq(self) -> int:
        result: int = await self._read(
            lambda c: c.execute("SELECT COALESCE(MAX(seq), 0) FROM posts").fetchone()[0]
        )
        return result

    async def count(self) -> int:
        result: int = await self._read(
            lambda c: c.execute(
                "SELECT COUNT(*) FROM posts WHERE deleted = 0 AND hidden = 0"
            ).fetchone()[0]
        )
        return result


def _lookup_local(conn: sqlite3.Connection, source: str, local_ids: list[str]) -> list[str]:
    out = []
    for local_id in local_ids:
        row = conn.execute(
            "SELECT post_id FROM local_ids WHERE source = ? AND local_id = ?", (source, local_id)
        ).fetchone()
        if row is not None:
            out.append(str(row[0]))
    return out


def _row_values(post: Post, fp: str) -> tuple[Any, ...]:
    created = parse_timestamp(post.created_at)
    created_us = int(created.timestamp() * 1e6) if created else 0
    prov = post.provenance
    return (
        post.platform,
        created_us,
        post.author.handle,
        post.session,
        int(bool(post.media)),
        json.dumps(post.to_json(), ensure_ascii=False),
        json.dumps(_provenance_json(prov), ensure_ascii=False),
        fp,
        post.metrics.likes,
        post.metrics.reposts,
        post.metrics.replies,
        int(prov.home),
        prov.edited_at,
    )


def _provenance_json(prov: Provenance) -> dict[str, Any]:
    return {
        "source": prov.source,
        "local_id": prov.local_id,
        "home": prov.home,
        "edited_at": prov.edited_at,
        "bot": prov.bot,
        "discoverable": prov.discoverable,
        "noindex": prov.noindex,
        "boosted_by": prov.boosted_by,
        "author_id": prov.author_id,
    }


def _post_from_row(data: str, provenance: str) -> Post:
    # orjson: reading every stored post back (the digest, paging) is mostly JSON parsing.
    prov = orjson.loads(provenance)
    return Post.from_json(orjson.loads(data), Provenance(**prov) if prov else Provenance())


def _search_body(post: Post) -> str:
    parts = [post.text, post.author.name, post.author.handle, post.spoiler_text]
    parts += [m.alt for m in post.media]
    parts += [link.title or "" for link in post.links]
    return "\n".join(p for p in parts if p)


def _fts_query(text: str) -> str:
    # Quote every term so user input is never parsed as FTS5 syntax; a NUL would end a
    # quoted term early ("unterminated string"), so it separates terms like a space.
    text = text.replace("\x00", " ")
    terms = [t.replace('"', '""') for t in text.split() if t.strip()][:16]
    if not terms:
        raise CursorError("q: empty search")
    return " ".join(f'"{t}"' for t in terms)
