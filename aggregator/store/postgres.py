"""PostgreSQL store (asyncpg): the SQLite store's behaviour, shared by several nodes.

Same shape as `SQLiteStore`: writes are queued and one writer task per process drains
them into one transaction, so a source's cursor is never saved ahead of its posts.
What is new is that other processes write too (every serve node records moderation), so:

- every write transaction first takes one transaction-level advisory lock, then draws
  its change numbers from the `change_seq` SEQUENCE. Writers are therefore serialised and
  `seq` order is commit order: a reader that sees seq N has seen everything below N, which
  is what makes `changes_since()` (websocket resume) gap-free on any node. Writes are a
  few per second at most, so the lock costs nothing that matters.
- a batch that fails on a lost connection (server restart, failover) is retried until
  `retry_for` runs out: a blip slows the pipeline down instead of losing posts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from aggregator.model import Post
from aggregator.store import postgres_admin as admin
from aggregator.store import postgres_links
from aggregator.store.base import Change, Page, PageQuery, Verdict
from aggregator.store.pg_migrations import PG_MIGRATIONS
from aggregator.store.postgres_writes import (
    PgConn,
    SeqAllocator,
    apply_upsert,
    lookup_local,
    page_from_rows,
    page_sql,
    post_from_row,
    tombstone_ids,
)

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 1000
MAX_PAGE = 200
# Both keys of the advisory locks: one for migrations, one for every write transaction.
MIGRATION_LOCK = 0x6263_6D69  # "bcmi"
WRITE_LOCK = 0x6263_7772  # "bcwr"

# A write run inside the writer's transaction (moderation, admin).
WriteFn = Callable[[PgConn, SeqAllocator], Awaitable[list[Change]]]

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TransactionRollbackError,  # serialisation failure, deadlock: safe to retry
    asyncpg.InterfaceError,  # "connection is closed"
    # A connection lost mid-query leaves asyncpg's protocol mid-operation, and the
    # transaction's rollback then fails with this instead of a connection error.
    asyncpg.InternalClientError,
)
NOT_TRANSIENT = (asyncpg.DataError, asyncpg.ClientConfigurationError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) and not isinstance(exc, NOT_TRANSIENT)


def redact(dsn: str) -> str:
    """The DSN without its password, for log lines."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


@dataclass
class _Op:
    kind: str  # "upsert" | "tombstone" | "tombstone_local" | "cursor" | "call"
    args: Any
    future: asyncio.Future[list[Change]] = field(repr=False)
    rows: int = 1


class StoreClosedError(RuntimeError):
    pass


class PostgresStore:
    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], float] = time.time,
        pool_size: int = 10,
        retry_for: float = 30.0,
    ) -> None:
        self.dsn = dsn
        self._clock = clock
        self._pool_size = pool_size
        self.retry_for = retry_for
        self._pool: asyncpg.Pool | None = None
        self._queue: asyncio.Queue[_Op | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._closed = False
        self.commit_seconds: list[float] = []  # recent commit durations, for metrics
        self.commit_listeners: list[Callable[[float], None]] = []  # e.g. a histogram
        self.commits = 0
        self.retries = 0  # batches retried after a lost connection

    # lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self._pool_size, command_timeout=60
        )
        async with self._pool.acquire() as conn:
            await self._migrate(conn)
        self._writer_task = asyncio.create_task(self._writer(), name="store-writer")

    async def _migrate(self, conn: PgConn) -> None:
        # Several nodes may start at once: one migrates, the others wait and see it done.
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            version = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            if version > len(PG_MIGRATIONS):
                raise RuntimeError(
                    f"{redact(self.dsn)}: schema version {version} is newer than this program "
                    f"({len(PG_MIGRATIONS)}); upgrade backchannel"
                )
            for number, script in enumerate(PG_MIGRATIONS[version:], start=version + 1):
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
                log.info("store: migrated %s to schema version %d", redact(self.dsn), number)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer_task is not None:
            await self._queue.put(None)
            await self._writer_task
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None or self._closed:
            raise StoreClosedError("store is closed")
        return self._pool

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

    async def tombstone(self, ids: list[str]) -> list[Change]:
        return await self._submit("tombstone", list(ids), rows=max(1, len(ids)))

    async def tombstone_local(self, source: str, local_ids: list[str]) -> list[Change]:
        return await self._submit("tombstone_local", (source, list(local_ids)))

    async def save_cursor(self, source: str, value: str) -> None:
        await self._submit("cursor", (source, value))

    async def write(self, fn: WriteFn) -> list[Change]:
        """Run `fn(conn, seqs)` in the writer's transaction (moderation, admin)."""
        return await self._submit("call", fn)

    async def _writer(self) -> None:
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
                results = await self._apply_with_retry(batch)
            except Exception as exc:  # a failed batch must not kill the writer
                log.error("store: write batch of %d ops failed: %s", len(batch), exc)
                for op in batch:
                    if not op.future.done():
                        op.future.set_exception(exc)
                continue
            self.commits += 1
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

    async def _apply_with_retry(self, batch: list[_Op]) -> list[list[Change] | Exception]:
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                return await self._apply(batch)
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() + delay > deadline:
                    raise
                self.retries += 1
                log.warning("store: %s; retrying the write in %.1fs", _describe(exc), delay)
                await self._expire()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _expire(self) -> None:
        # Pooled connections to a restarted server are all dead: replace them.
        if self._pool is not None:
            await self._pool.expire_connections()

    async def _apply(self, batch: list[_Op]) -> list[list[Change] | Exception]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            seqs = SeqAllocator(conn)
            results: list[list[Change] | Exception] = []
            for op in batch:
                # Each op in its own savepoint: one failing admin action fails alone.
                try:
                    async with conn.transaction():
                        results.append(await self._apply_one(conn, op, seqs))
                except Exception as exc:
                    if is_transient(exc):
                        raise  # the connection is gone: retry the whole batch
                    results.append(exc)
            await seqs.finish()
            return results

    async def _apply_one(self, conn: PgConn, op: _Op, seqs: SeqAllocator) -> list[Change]:
        now_us = int(self._clock() * 1e6)
        if op.kind == "upsert":
            posts, verdicts = op.args
            return await apply_upsert(conn, seqs, posts, verdicts, now_us)
        if op.kind == "call":
            result: list[Change] = await op.args(conn, seqs)
            return result
        if op.kind == "tombstone":
            return await tombstone_ids(conn, seqs, op.args, now_us)
        if op.kind == "tombstone_local":
            source, local_ids = op.args
            ids = await lookup_local(conn, source, local_ids)
            return await tombstone_ids(conn, seqs, ids, now_us)
        if op.kind == "cursor":
            source, value = op.args
            await conn.execute(
                "INSERT INTO cursors (source, value, updated_us) VALUES ($1, $2, $3) "
                "ON CONFLICT (source) DO UPDATE SET value = excluded.value, "
                "updated_us = excluded.updated_us",
                source,
                value,
                now_us,
            )
            return []
        raise AssertionError(op.kind)

    # the digest's link metadata (see postgres_links) ------------------------------------

    async def put_link_meta(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.write(postgres_links.put_rows(rows))

    async def link_meta(self, source: str | None = None) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = await self.read(
            lambda c: postgres_links.read_rows(c, source)
        )
        return result

    # moderation and admin (see postgres_admin) ----------------------------------------

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
        result: dict[str, Any] = await self.read(admin.read_settings)
        return result

    async def bans(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.read(admin.read_bans)
        return result

    async def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.read(lambda c: admin.read_audit(c, limit))
        return result

    async def admin_posts(
        self, which: str, limit: int = 200
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        result: list[tuple[dict[str, Any], dict[str, Any]]] = await self.read(
            lambda c: admin.read_admin_posts(c, which, limit)
        )
        return result

    # reads -----------------------------------------------------------------------

    async def read(self, fn: Callable[[PgConn], Awaitable[Any]]) -> Any:
        """Run `fn(conn)` on a pooled connection; one retry after a lost connection."""
        for attempt in (1, 2):
            try:
                async with self.pool.acquire() as conn:
                    return await fn(conn)
            except Exception as exc:
                if attempt == 2 or not is_transient(exc):
                    raise
                await self._expire()
        raise AssertionError("unreachable")

    async def load_cursor(self, source: str) -> str | None:
        value = await self.read(
            lambda c: c.fetchval("SELECT value FROM cursors WHERE source = $1", source)
        )
        return None if value is None else str(value)

    async def recent_local_ids(self, source: str, limit: int) -> list[str]:
        rows = await self.read(
            lambda c: c.fetch(
                "SELECT l.local_id FROM local_ids l JOIN posts p ON p.id = l.post_id "
                "WHERE l.source = $1 AND NOT p.deleted ORDER BY p.created_us DESC LIMIT $2",
                source,
                limit,
            )
        )
        return [str(r[0]) for r in rows]

    async def get(self, post_id: str) -> Post | None:
        row = await self.read(
            lambda c: c.fetchrow(
                "SELECT data, provenance FROM posts WHERE id = $1 AND NOT deleted AND NOT hidden",
                post_id,
            )
        )
        return None if row is None else post_from_row(row[0], row[1])

    async def page(self, query: PageQuery) -> Page:
        limit = max(1, min(query.limit, MAX_PAGE))
        sql, params, ascending = page_sql(query, limit)
        rows = await self.read(lambda c: c.fetch(sql, *params))
        return page_from_rows(rows, query, limit, ascending)

    async def changes_since(self, seq: int, limit: int) -> list[Change]:
        rows = await self.read(
            lambda c: c.fetch(
                "SELECT id, seq, deleted, hidden, data, provenance, approved, pinned, rule "
                "FROM posts WHERE seq > $1 ORDER BY seq LIMIT $2",
                seq,
                limit,
            )
        )
        out: list[Change] = []
        for post_id, row_seq, deleted, hidden, data, prov, approved, pinned, rule in rows:
            if deleted:
                out.append(Change("deleted", post_id, row_seq, None))
                continue
            # The row's latest state: show it, or retract it if it is now hidden.
            post = post_from_row(data, prov)
            out.append(
                Change("updated", post_id, row_seq, post, hidden, approved, pinned, rule, True)
            )
        return out

    async def last_seq(self) -> int:
        value = await self.read(lambda c: c.fetchval("SELECT COALESCE(MAX(seq), 0) FROM posts"))
        return int(value)

    async def count(self) -> int:
        value = await self.read(
            lambda c: c.fetchval("SELECT COUNT(*) FROM posts WHERE NOT deleted AND NOT hidden")
        )
        return int(value)

    async def ping(self) -> None:
        """Raise unless the server answers (readiness)."""
        await self.read(lambda c: c.fetchval("SELECT 1"))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
