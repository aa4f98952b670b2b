"""Assign a post to at most one session. Pure: posts and sessions in, a session id out.

A session hashtag decides. Otherwise each session running when the post was written
(plus a lag after its end: people keep posting on the way out) is scored on the room or
a leader being named and on fuzzy similarity to its title and leaders. A post is
assigned only when its best session clearly beats every parallel one; when nothing
tells parallel sessions apart it goes to "general" (None). Precision over recall: a post
in the wrong session misleads a blogger more than a post in "general".
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from rapidfuzz import fuzz

from aggregator.digest.schedule import Session
from aggregator.match import normalise_tag
from aggregator.model import Post

LAG = timedelta(minutes=20)
EARLY = timedelta(minutes=5)
MARGIN = 1.5  # how much the best must beat the runner-up by
TITLE_STRONG = 85  # rapidfuzz partial_ratio at which a title counts as quoted


@dataclass(frozen=True)
class Candidate:
    session: Session
    score: float
    reasons: tuple[str, ...]


@functools.lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    # Cached: session titles, rooms, leader and speaker names are folded for every post.
    if text.isascii():
        return text.lower()  # NFKC, NFKD and the accent strip change nothing in ASCII
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@functools.lru_cache(maxsize=4096)
def _word_pattern(needle: str) -> tuple[str, re.Pattern[str]] | None:
    folded = _fold(needle).strip()
    if len(folded) < 3:
        return None
    return folded, re.compile(rf"(?<!\w){re.escape(folded)}(?!\w)")


def _mentions(haystack: str, needle: str) -> bool:
    found = _word_pattern(needle)
    if found is None:
        return False
    word, pattern = found
    # A substring test first: most posts name no room or leader, and `in` is far
    # cheaper than the word-boundary regex.
    return word in haystack and pattern.search(haystack) is not None


def score_sessions(
    post: Post, sessions: Sequence[Session], lag: timedelta = LAG
) -> list[Candidate]:
    """Sessions running around the post's time, best first, with why."""
    when = post.created_dt
    text = _fold(
        " ".join([post.text, post.spoiler_text, *(link.title or "" for link in post.links)])
    )
    out = []
    for session in sessions:
        if not session.start - EARLY <= when <= session.end + lag:
            continue
        score, reasons = 0.0, []
        if when > session.end:
            score -= 0.5  # afterthoughts: still likely, less than the session in progress
            reasons.append("after")
        if session.room and _mentions(text, session.room):
            score += 2.0
            reasons.append("room")
        for leader in session.leaders:
            name = leader.split("@")[0] if leader.startswith("@") else leader
            if _mentions(text, leader) or _mentions(text, name):
                score += 2.0
                reasons.append("leader")
                break
        similarity = fuzz.partial_ratio(_fold(session.title), text) if len(text) > 8 else 0
        if similarity >= TITLE_STRONG:
            score += 2.0
            reasons.append("title")
        elif similarity >= 70:
            score += 0.75
            reasons.append("title~")
        out.append(Candidate(session, score, tuple(reasons)))
    return sorted(out, key=lambda c: c.score, reverse=True)


def assign(
    post: Post,
    sessions: Sequence[Session],
    overrides: Mapping[str, str | None] | None = None,
    lag: timedelta = LAG,
) -> str | None:
    if overrides is not None and post.id in overrides:
        return overrides[post.id]  # the organiser's decision wins
    tags = {normalise_tag(t) for t in post.tags}
    tagged = [s for s in sessions if s.hashtag and s.hashtag in tags]
    if len(tagged) == 1:
        return tagged[0].id
    candidates = score_sessions(post, sessions, lag)
    if not candidates:
        return None
    best = candidates[0]
    if len(candidates) == 1:
        # Nothing in parallel (a plenary): time alone is enough, unless it is only the lag.
        return best.session.id if "after" not in best.reasons or best.score > 0 else None
    runner_up = candidates[1]
    if best.score > 0 and best.score - runner_up.score >= MARGIN:
        return best.session.id
    return None
