"""Moderation and admin operations of the PostgreSQL store (see `sqlite_admin`).

Every action runs in the writer's transaction together with its audit-log row, takes a
new change number (so a screen resuming on any node replays it) and returns a `surfaced`
change, which each audience turns into "show" or "retract".
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aggregator.store.base import Change
from aggregator.store.postgres_writes import PgConn, SeqAllocator, post_from_row
from aggregator.store.sqlite_admin import ACTIONS, UnknownPostError, _iso, normalise_handle

Op = Callable[[PgConn, SeqAllocator], Awaitable[list[Change]]]

_SETS = {
    "hide": "hidden = TRUE, rule = NULL",
    "unhide": "hidden = FALSE, rule = NULL",
    "approve": "approved = TRUE, hidden = FALSE, rule = NULL",
    "reject": "approved = FALSE, hidden = TRUE, rule = NULL",
    "pin": "pinned = TRUE",
    "unpin": "pinned = FALSE",
}


async def _audit(conn: PgConn, actor: str, action: str, target: str, detail: Any) -> None:
    await conn.execute(
        "INSERT INTO audit (at_us, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        int(time.time() * 1e6),
        actor,
        action,
        target,
        json.dumps(detail, ensure_ascii=False),
    )


async def _state_change(conn: PgConn, pk: int, seq: int) -> Change:
    row = await conn.fetchrow(
        "SELECT id, data, provenance, hidden, approved, pinned, rule, deleted FROM posts "
        "WHERE pk = $1",
        pk,
    )
    assert row is not None
    if row["deleted"]:
        return Change("deleted", row["id"], seq, None)
    post = post_from_row(row["data"], row["provenance"])
    return Change("updated", row["id"], seq, post, row[3], row[4], row[5], row[6], surfaced=True)


def moderate_op(action: str, post_id: str, actor: str) -> Op:
    if action not in ACTIONS:
        raise ValueError(f"action: unknown {action!r}")

    async def run(conn: PgConn, seqs: SeqAllocator) -> list[Change]:
        pk = await conn.fetchval(
            "SELECT pk FROM posts WHERE id = $1 AND NOT deleted FOR UPDATE", post_id
        )
        if pk is None:
            raise UnknownPostError(f"post: no such post {post_id[:200]!r}")
        changes: list[Change] = []
        if action == "pin":
            # One pinned post at a time: a wall has one place for it.
            others = await conn.fetch("SELECT pk FROM posts WHERE pinned AND pk <> $1", pk)
            for (other,) in others:
                seq = await seqs.next()
                await conn.execute(
                    "UPDATE posts SET pinned = FALSE, seq = $1 WHERE pk = $2", seq, other
                )
                changes.append(await _state_change(conn, other, seq))
        seq = await seqs.next()
        await conn.execute(
            f"UPDATE posts SET {_SETS[action]}, moderated_by = $1, seq = $2 WHERE pk = $3",
            actor,
            seq,
            pk,
        )
        await _audit(conn, actor, action, post_id, {})
        changes.append(await _state_change(conn, pk, seq))
        return changes

    return run


def _ban_where(kind: str) -> str:
    if kind == "author":
        return "lower(author) = $1"
    # A domain ban covers the domain's accounts on Mastodon (@user@domain) and Bluesky
    # handles under it (@name.domain), subdomains included. No LIKE: a domain's `_` is
    # a character, not a wildcard.
    return (
        "(right(lower(author), length($1) + 1) IN ('@' || $1, '.' || $1) "
        "OR lower(author) = '@' || $1)"
    )


def ban_op(kind: str, value: str, actor: str, *, ban: bool) -> Op:
    if kind not in ("author", "domain"):
        raise ValueError(f"kind: expected author or domain, got {kind!r}")
    value = normalise_handle(value) if kind == "author" else value.strip().casefold().strip(".@")
    if not value or len(value) > 300:
        raise ValueError(f"{kind}: missing or too long")
    marker = f"ban:{kind}:{value}"

    async def run(conn: PgConn, seqs: SeqAllocator) -> list[Change]:
        if ban:
            await conn.execute(
                "INSERT INTO bans (kind, value, at_us, actor) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (kind, value) DO UPDATE SET at_us = excluded.at_us, "
                "actor = excluded.actor",
                kind,
                value,
                int(time.time() * 1e6),
                actor,
            )
            rows = await conn.fetch(
                f"SELECT pk FROM posts WHERE NOT deleted AND NOT hidden AND {_ban_where(kind)} "
                "ORDER BY pk",
                value,
            )
            update = "UPDATE posts SET hidden = TRUE, moderated_by = $3, rule = $3, seq = $1 "
            extra: tuple[str, ...] = (marker,)
        else:
            await conn.execute("DELETE FROM bans WHERE kind = $1 AND value = $2", kind, value)
            rows = await conn.fetch(
                "SELECT pk FROM posts WHERE NOT deleted AND moderated_by = $1 ORDER BY pk",
                marker,
            )
            update = "UPDATE posts SET hidden = FALSE, moderated_by = NULL, rule = NULL, seq = $1 "
            extra = ()
        changes = []
        for (pk,) in rows:
            seq = await seqs.next()
            await conn.execute(update + "WHERE pk = $2", seq, pk, *extra)
            changes.append(await _state_change(conn, pk, seq))
        await _audit(
            conn, actor, "ban" if ban else "unban", f"{kind}:{value}", {"posts": len(rows)}
        )
        return changes

    return run


def assign_op(post_id: str, session: str | None, actor: str) -> Op:
    async def run(conn: PgConn, seqs: SeqAllocator) -> list[Change]:
        row = await conn.fetchrow(
            "SELECT pk, data FROM posts WHERE id = $1 AND NOT deleted FOR UPDATE", post_id
        )
        if row is None:
            raise UnknownPostError(f"post: no such post {post_id[:200]!r}")
        data = json.loads(row["data"])
        data["session"] = session
        seq = await seqs.next()
        await conn.execute(
            "UPDATE posts SET data = $1, session = $2, seq = $3 WHERE pk = $4",
            json.dumps(data, ensure_ascii=False),
            session,
            seq,
            row["pk"],
        )
        await _audit(conn, actor, "assign", post_id, {"session": session})
        change = await _state_change(conn, row["pk"], seq)
        # An assignment is an update of the card, not a change of who may see it.
        return [
            Change(
                "updated",
                change.id,
                seq,
                change.post,
                change.hidden,
                change.approved,
                change.pinned,
                change.rule,
            )
        ]

    return run


def audit_op(actor: str, action: str, target: str, detail: Any) -> Op:
    async def run(conn: PgConn, seqs: SeqAllocator) -> list[Change]:
        await _audit(conn, actor, action, target, detail)
        return []

    return run


def settings_op(values: dict[str, Any], actor: str) -> Op:
    async def run(conn: PgConn, seqs: SeqAllocator) -> list[Change]:
        await conn.executemany(
            "INSERT INTO settings (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
        )
        await _audit(conn, actor, "settings", ",".join(sorted(values)), values)
        return []

    return run


async def read_settings(conn: PgConn) -> dict[str, Any]:
    return {r[0]: json.loads(r[1]) for r in await conn.fetch("SELECT key, value FROM settings")}


async def read_bans(conn: PgConn) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT kind, value, at_us, actor FROM bans ORDER BY at_us DESC")
    return [{"kind": k, "value": v, "at": _iso(at), "by": a} for k, v, at, a in rows]


async def read_audit(conn: PgConn, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT at_us, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT $1", limit
    )
    return [
        {
            "at": _iso(at),
            "actor": actor,
            "action": action,
            "target": target,
            "detail": json.loads(detail),
        }
        for at, actor, action, target, detail in rows
    ]


async def read_admin_posts(
    conn: PgConn, which: str, limit: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    where = {
        "queue": "NOT deleted",
        "pending": "NOT deleted AND NOT approved AND NOT hidden",
        "hidden": "NOT deleted AND hidden",
        "pinned": "NOT deleted AND pinned",
    }[which]
    order = "approved ASC, created_us DESC" if which == "queue" else "created_us DESC"
    rows = await conn.fetch(
        f"SELECT data, provenance, hidden, approved, pinned, rule, moderated_by FROM posts "
        f"WHERE {where} ORDER BY {order} LIMIT $1",
        limit,
    )
    out = []
    for data, prov, hidden, approved, pinned, rule, by in rows:
        post = post_from_row(data, prov).to_json()
        state = {"hidden": hidden, "approved": approved, "pinned": pinned, "rule": rule, "by": by}
        out.append((post, state))
    return out
