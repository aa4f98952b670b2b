"""Moderation and admin operations of the SQLite store.

Every action runs in the writer's transaction together with its audit-log row, bumps
the post's change sequence (so a reconnecting screen replays it) and returns a
`surfaced` change, which each audience turns into "show" or "retract".
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from aggregator.store.base import Change

ACTIONS = ("hide", "unhide", "approve", "reject", "pin", "unpin")
SeqFn = Callable[[], int]


class UnknownPostError(LookupError):
    pass


def normalise_handle(handle: str) -> str:
    handle = handle.strip().casefold()
    return handle if handle.startswith(("@", "did:")) else f"@{handle}"


def _audit(conn: sqlite3.Connection, actor: str, action: str, target: str, detail: Any) -> None:
    conn.execute(
        "INSERT INTO audit (at_us, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (int(time.time() * 1e6), actor, action, target, json.dumps(detail, ensure_ascii=False)),
    )


def _state_change(conn: sqlite3.Connection, pk: int, seq: int) -> Change:
    from aggregator.store.sqlite import _post_from_row

    row = conn.execute(
        "SELECT id, data, provenance, hidden, approved, pinned, rule, deleted FROM posts "
        "WHERE pk = ?",
        (pk,),
    ).fetchone()
    if row[7]:
        return Change("deleted", row[0], seq, None)
    post = _post_from_row(row[1], row[2])
    return Change(
        "updated",
        row[0],
        seq,
        post,
        bool(row[3]),
        bool(row[4]),
        bool(row[5]),
        row[6],
        surfaced=True,
    )


def moderate_op(action: str, post_id: str, actor: str) -> Callable[..., list[Change]]:
    if action not in ACTIONS:
        raise ValueError(f"action: unknown {action!r}")

    def run(conn: sqlite3.Connection, next_seq: SeqFn) -> list[Change]:
        row = conn.execute(
            "SELECT pk FROM posts WHERE id = ? AND deleted = 0", (post_id,)
        ).fetchone()
        if row is None:
            raise UnknownPostError(f"post: no such post {post_id[:200]!r}")
        pk = row[0]
        changes: list[Change] = []
        if action == "pin":
            # One pinned post at a time: a wall has one place for it.
            for (other,) in conn.execute(
                "SELECT pk FROM posts WHERE pinned = 1 AND pk != ?", (pk,)
            ).fetchall():
                seq = next_seq()
                conn.execute("UPDATE posts SET pinned = 0, seq = ? WHERE pk = ?", (seq, other))
                changes.append(_state_change(conn, other, seq))
        sets = {
            "hide": "hidden = 1, rule = NULL",
            "unhide": "hidden = 0, rule = NULL",
            "approve": "approved = 1, hidden = 0, rule = NULL",
            "reject": "approved = 0, hidden = 1, rule = NULL",
            "pin": "pinned = 1",
            "unpin": "pinned = 0",
        }[action]
        seq = next_seq()
        conn.execute(
            f"UPDATE posts SET {sets}, moderated_by = ?, seq = ? WHERE pk = ?", (actor, seq, pk)
        )
        _audit(conn, actor, action, post_id, {})
        changes.append(_state_change(conn, pk, seq))
        return changes

    return run


def _ban_where(kind: str) -> str:
    if kind == "author":
        return "lower(author) = ?"
    # A domain ban covers the domain's accounts on Mastodon (@user@domain) and Bluesky
    # handles under it (@name.domain), subdomains included.
    return (
        "(lower(author) LIKE '%@' || ? OR lower(author) LIKE '%.' || ? OR lower(author) = '@' || ?)"
    )


def ban_op(kind: str, value: str, actor: str, *, ban: bool) -> Callable[..., list[Change]]:
    if kind not in ("author", "domain"):
        raise ValueError(f"kind: expected author or domain, got {kind!r}")
    value = normalise_handle(value) if kind == "author" else value.strip().casefold().strip(".@")
    if not value or len(value) > 300:
        raise ValueError(f"{kind}: missing or too long")
    marker = f"ban:{kind}:{value}"

    def run(conn: sqlite3.Connection, next_seq: SeqFn) -> list[Change]:
        params: tuple[str, ...] = (value,) if kind == "author" else (value, value, value)
        if ban:
            conn.execute(
                "INSERT OR REPLACE INTO bans (kind, value, at_us, actor) VALUES (?, ?, ?, ?)",
                (kind, value, int(time.time() * 1e6), actor),
            )
            rows = conn.execute(
                f"SELECT pk FROM posts WHERE deleted = 0 AND hidden = 0 AND {_ban_where(kind)}",
                params,
            ).fetchall()
            sets = "hidden = 1, moderated_by = ?, rule = ?"
            args: tuple[Any, ...] = (marker, marker)
        else:
            conn.execute("DELETE FROM bans WHERE kind = ? AND value = ?", (kind, value))
            rows = conn.execute(
                "SELECT pk FROM posts WHERE deleted = 0 AND moderated_by = ?", (marker,)
            ).fetchall()
            sets = "hidden = 0, moderated_by = NULL, rule = NULL"
            args = ()
        changes = []
        for (pk,) in rows:
            seq = next_seq()
            conn.execute(f"UPDATE posts SET {sets}, seq = ? WHERE pk = ?", (*args, seq, pk))
            changes.append(_state_change(conn, pk, seq))
        _audit(conn, actor, "ban" if ban else "unban", f"{kind}:{value}", {"posts": len(rows)})
        return changes

    return run


def assign_op(post_id: str, session: str | None, actor: str) -> Callable[..., list[Change]]:
    def run(conn: sqlite3.Connection, next_seq: SeqFn) -> list[Change]:
        row = conn.execute(
            "SELECT pk, data FROM posts WHERE id = ? AND deleted = 0", (post_id,)
        ).fetchone()
        if row is None:
            raise UnknownPostError(f"post: no such post {post_id[:200]!r}")
        data = json.loads(row[1])
        data["session"] = session
        seq = next_seq()
        # moderated_by marks the assignment as the organiser's: re-assignment keeps it.
        conn.execute(
            "UPDATE posts SET data = ?, session = ?, seq = ? WHERE pk = ?",
            (json.dumps(data, ensure_ascii=False), session, seq, row[0]),
        )
        _audit(conn, actor, "assign", post_id, {"session": session})
        change = _state_change(conn, row[0], seq)
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


def audit_op(actor: str, action: str, target: str, detail: Any) -> Callable[..., list[Change]]:
    def run(conn: sqlite3.Connection, next_seq: SeqFn) -> list[Change]:
        _audit(conn, actor, action, target, detail)
        return []

    return run


def settings_op(values: dict[str, Any], actor: str) -> Callable[..., list[Change]]:
    def run(conn: sqlite3.Connection, next_seq: SeqFn) -> list[Change]:
        for key, value in values.items():
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, ensure_ascii=False)),
            )
        _audit(conn, actor, "settings", ",".join(sorted(values)), values)
        return []

    return run


def read_settings(conn: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM settings")}


def read_bans(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT kind, value, at_us, actor FROM bans ORDER BY at_us DESC")
    return [{"kind": k, "value": v, "at": _iso(at), "by": a} for k, v, at, a in rows]


def read_audit(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT at_us, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
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


def read_admin_posts(
    conn: sqlite3.Connection, which: str, limit: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    from aggregator.store.sqlite import _post_from_row

    where = {
        "queue": "deleted = 0",
        "pending": "deleted = 0 AND approved = 0 AND hidden = 0",
        "hidden": "deleted = 0 AND hidden = 1",
        "pinned": "deleted = 0 AND pinned = 1",
    }[which]
    order = "approved ASC, created_us DESC" if which == "queue" else "created_us DESC"
    rows = conn.execute(
        f"SELECT data, provenance, hidden, approved, pinned, rule, moderated_by FROM posts "
        f"WHERE {where} ORDER BY {order} LIMIT ?",
        (limit,),
    ).fetchall()
    out = []
    for data, prov, hidden, approved, pinned, rule, by in rows:
        post = _post_from_row(data, prov).to_json()
        state = {
            "hidden": bool(hidden),
            "approved": bool(approved),
            "pinned": bool(pinned),
            "rule": rule,
            "by": by,
        }
        out.append((post, state))
    return out


def _iso(at_us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_us / 1e6))
