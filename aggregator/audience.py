"""Who may see a post: the projector, the remote view, or a moderator. Pure.

Post-moderation shows everything not hidden. Pre-moderation shows the projector only
what a moderator approved; the remote view too, unless the organiser lets it show the
unmoderated stream. Moderators see everything, with its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aggregator.store.base import Change

Audience = Literal["wall", "remote", "admin"]
AUDIENCES: tuple[Audience, ...] = ("wall", "remote", "admin")


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Literal["post", "pre"] = "post"
    remote_shows_unmoderated: bool = False
    paused: bool = False  # the projector keeps what it shows until unpaused

    def needs_approval(self, audience: Audience) -> bool:
        if self.mode != "pre" or audience == "admin":
            return False
        return not (audience == "remote" and self.remote_shows_unmoderated)


def visible(change: Change, audience: Audience, policy: Policy) -> bool:
    if change.kind == "deleted" or change.post is None:
        return False
    if audience == "admin":
        return True
    if change.hidden:
        return False
    return change.approved or not policy.needs_approval(audience)
