"""Decide what a newly seen copy of a post means for the stored one. Pure: no I/O.

The same post reaches us many times: from several Mastodon servers, from a poll and a
stream, again after a restart. Only a real change (an edit, a hydrated author, fresher
engagement counts from the post's home server) may produce an update; anything else is a
no-op, and a deleted post is never brought back by a copy that a lagging server still has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum

from aggregator.model import Post


class Decision(Enum):
    INSERT = "insert"
    UPDATE = "update"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the store knows of a post, enough to decide without loading it whole."""

    fingerprint: str
    metrics: tuple[int, int, int]
    home: bool
    edited_at: str | None
    deleted: bool


def fingerprint(post: Post) -> str:
    """A digest of everything that makes a post look different on a wall, minus counts."""
    shape = post.to_json()
    del shape["metrics"]
    del shape["session"]
    blob = json.dumps(shape, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def state_of(post: Post, deleted: bool = False) -> StoredState:
    m = post.metrics
    return StoredState(
        fingerprint=fingerprint(post),
        metrics=(m.likes, m.reposts, m.replies),
        home=post.provenance.home,
        edited_at=post.provenance.edited_at,
        deleted=deleted,
    )


def decide(
    existing: StoredState | None, incoming: Post, incoming_fp: str | None = None
) -> Decision:
    if existing is None:
        return Decision.INSERT
    if existing.deleted:
        return Decision.SKIP
    prov = incoming.provenance
    new_edit, old_edit = prov.edited_at or "", existing.edited_at or ""
    # An older copy (a server that has not seen the edit yet) must not undo an edit,
    # and a newer edit always wins, wherever it comes from.
    if new_edit < old_edit:
        return Decision.SKIP
    if new_edit > old_edit:
        return Decision.UPDATE
    # Same version. The home server's copy is the authority: it carries the true counts,
    # its own media URLs and consent flags (`noindex`) that remote servers do not serialise.
    if prov.home and not existing.home:
        return Decision.UPDATE
    if existing.home and not prov.home:
        return Decision.SKIP
    fp = incoming_fp if incoming_fp is not None else fingerprint(incoming)
    if fp != existing.fingerprint:
        # Same authority, same version, different look: a link card or media processed
        # after the post was created.
        return Decision.UPDATE
    m = incoming.metrics
    if (m.likes, m.reposts, m.replies) == existing.metrics:
        return Decision.SKIP
    if not prov.home and any(
        new < old
        for new, old in zip((m.likes, m.reposts, m.replies), existing.metrics, strict=True)
    ):
        # Two non-home servers disagree; take only growth so walls do not flicker.
        return Decision.SKIP
    return Decision.UPDATE
