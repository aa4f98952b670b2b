"""DigestBuilder: the story of the event from its stored posts. Pure: plain data in and
out, the time passed in.

Consent first: posts by bots and by accounts that opted out of search engines are left
out (hidden and deleted posts never reach here: the store does not return them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aggregator.digest.assign import assign
from aggregator.digest.classify import EventTerms
from aggregator.digest.quotes import Speaker, find_quotes, group_quotes
from aggregator.digest.schedule import Session
from aggregator.digest.writeups import about_session, link_docs
from aggregator.model import Post, format_timestamp


@dataclass(frozen=True)
class EventInfo:
    name: str
    hashtags: tuple[str, ...]
    start: datetime | None = None
    end: datetime | None = None
    servers: tuple[str, ...] = ()


@dataclass
class Digest:
    data: dict[str, Any]  # the digest.json document
    posts: dict[str, Post] = field(default_factory=dict)


def consented(post: Post) -> bool:
    prov = post.provenance
    return not (prov.bot or prov.noindex or prov.discoverable is False)


def engagement(post: Post) -> int:
    m = post.metrics
    return m.likes + 2 * m.reposts + m.replies


def build_digest(
    event: EventInfo,
    sessions: Sequence[Session],
    posts: Sequence[Post],
    *,
    now: datetime,
    overrides: Mapping[str, str | None] | None = None,
    link_meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> Digest:
    """`link_meta`: what unfurling, feeds and Webmentions learnt about links, by URL
    (see aggregator.digest.writeups); without it write-ups come from platform previews."""
    kept = sorted((p for p in posts if consented(p)), key=lambda p: (p.created_at, p.id))
    by_id = {p.id: p for p in kept}
    speakers = _speakers(sessions)
    titles = [s.title for s in sessions]
    known = {s.id for s in sessions}
    assigned: dict[str, str | None] = {p.id: _placed(p, sessions, known, overrides) for p in kept}
    hits = [h for p in kept for h in find_quotes(p, speakers, titles)]
    confident, candidates = group_quotes(hits, {p.id: engagement(p) for p in kept})
    terms = EventTerms.of(event.name, event.hashtags, event.start)
    server_hosts = [urlsplit(s).hostname or "" for s in event.servers]
    writeups, links = link_docs(kept, terms, link_meta or {}, skip_hosts=server_hosts)
    by_session: dict[str | None, list[str]] = {}
    for pid, sid in assigned.items():
        by_session.setdefault(sid, []).append(pid)
    session_docs = []
    for session in sessions:
        ids = by_session.get(session.id, [])
        id_set = set(ids)
        session_docs.append(
            {
                "id": session.id,
                "title": session.title,
                "room": session.room,
                "start": session.start.isoformat(),
                "end": session.end.isoformat(),
                "leaders": [x for x in session.leaders if not x.startswith("@")],
                "leader_handles": [x for x in session.leaders if x.startswith("@")],
                "posts": ids,
                "best": sorted(ids, key=lambda i: -engagement(by_id[i]))[:3],
                "quotes": [q.to_json() for q in confident if id_set & set(q.posts)][:5],
                "writeups": [
                    w
                    for w in writeups
                    if id_set & set(w["posts"])
                    or (not w["posts"] and about_session(w, session.title, session.hashtag))
                ],
            }
        )
    authors = Counter(p.author.handle for p in kept)
    data = {
        "event": {
            "name": event.name,
            "hashtags": list(event.hashtags),
            "start": event.start.isoformat() if event.start else None,
            "end": event.end.isoformat() if event.end else None,
            "servers": list(event.servers),
            "generated": format_timestamp(now),
        },
        "stats": {
            "posts": len(kept),
            "people": len(authors),
            "platforms": dict(Counter(p.platform for p in kept)),
            "writeups": len(writeups),
            "quotes": len(confident),
            "activity": _activity(kept),
            "top_contributors": [{"handle": h, "posts": n} for h, n in authors.most_common(10)],
        },
        "sessions": session_docs,
        "quotes": [q.to_json() for q in confident],
        "quote_candidates": [q.to_json() for q in candidates],
        "writeups": writeups,
        "links": links,
        "general": by_session.get(None, []),
        "posts": [_with_session(p.to_json(), assigned[p.id]) for p in kept],
    }
    return Digest(data, by_id)


GENERAL = "general"  # an organiser's "belongs to no session", stored as the post's session


def _placed(
    post: Post,
    sessions: Sequence[Session],
    known: set[str],
    overrides: Mapping[str, str | None] | None,
) -> str | None:
    """The organiser's assignment when there is one, else the automatic one."""
    if post.session == GENERAL:
        return None
    if post.session:
        # A session deleted from the grid since: its posts go back to "general".
        return post.session if post.session in known else None
    return assign(post, sessions, overrides)


def _with_session(post: dict[str, Any], session: str | None) -> dict[str, Any]:
    post["session"] = session
    return post


def _speakers(sessions: Sequence[Session]) -> list[Speaker]:
    seen: dict[str, Speaker] = {}
    for session in sessions:
        for leader in session.leaders:
            if not leader.startswith("@"):
                handles = tuple(x for x in session.leaders if x.startswith("@"))
                seen.setdefault(leader, Speaker(leader, handles if len(handles) == 1 else ()))
    return list(seen.values())


def _activity(posts: Sequence[Post]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for post in posts:
        hour = post.created_dt.replace(minute=0, second=0, microsecond=0)
        counts[format_timestamp(hour)] += 1
    if not counts:
        return []
    start = min(counts)
    hours = []
    moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
    last = max(counts)
    while format_timestamp(moment) <= last:
        key = format_timestamp(moment)
        hours.append({"hour": key, "posts": counts.get(key, 0)})
        moment += timedelta(hours=1)
    return hours
