"""Sessions edited on the day (pure): unconferences build their grid in the room.

Organisers add, change and remove sessions in the admin page; the edits are kept as a
list of plain dicts in the store's settings (`sessions`), so they reach every node with
the settings and survive restarts, and they are laid over the imported schedule by id:
an edit replaces the imported session of the same id, `{"id", "deleted": true}` hides
one, anything else is a new session. Times arrive as local wall-clock times of the
event's time zone (what a person types into the grid) or as ISO 8601 with an offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.digest.schedule import Session
from aggregator.match import normalise_tag

MAX_TEXT = 300
MAX_LEADERS = 20
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"{key}: expected text of at most {MAX_TEXT} characters")
    value = " ".join(value.split())
    if required and not value:
        raise ValueError(f"{key}: required")
    return value


def _time(data: Mapping[str, Any], key: str, tz: ZoneInfo) -> datetime:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{key}: required, e.g. 2026-11-21T10:30")
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{key}: not a date and time: {raw[:40]!r}") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def session_from_json(data: object, tz: ZoneInfo, *, session_id: str) -> Session:
    """A validated session from an admin form; ValueError names the field."""
    if not isinstance(data, Mapping):
        raise ValueError("body: expected a JSON object")
    if not _ID.fullmatch(session_id):
        raise ValueError("id: letters, digits and . _ : - only, at most 64")
    start, end = _time(data, "start", tz), _time(data, "end", tz)
    if end <= start:
        raise ValueError("end: must be after start")
    leaders = data.get("leaders", [])
    if isinstance(leaders, str):
        leaders = [x for x in (part.strip() for part in leaders.split(",")) if x]
    if not isinstance(leaders, list) or len(leaders) > MAX_LEADERS:
        raise ValueError(f"leaders: expected a list of at most {MAX_LEADERS} names")
    names = tuple(_text({"leaders": x}, "leaders", required=True) for x in leaders)
    hashtag = _text(data, "hashtag")
    tag = normalise_tag(hashtag) if hashtag else None
    if hashtag and (not tag or not re.fullmatch(r"\w+", tag)):
        raise ValueError("hashtag: one word, e.g. #blcA1")
    return Session(
        id=session_id,
        title=_text(data, "title", required=True),
        room=_text(data, "room"),
        start=start,
        end=end,
        leaders=names,
        hashtag=tag,
        url=_text(data, "url") or None,
        track=_text(data, "track") or None,
    )


def merge_sessions(imported: Iterable[Session], edits: object, tz: ZoneInfo) -> list[Session]:
    """The schedule as organisers see it now, ordered by start time then room."""
    by_id = {s.id: s for s in imported}
    for edit in edits if isinstance(edits, list) else []:
        if not isinstance(edit, Mapping) or not isinstance(edit.get("id"), str):
            continue
        if edit.get("deleted"):
            by_id.pop(edit["id"], None)
            continue
        try:
            by_id[edit["id"]] = session_from_json(edit, tz, session_id=edit["id"])
        except ValueError:
            continue  # stored by an older version and no longer valid: ignore it
    return sorted(by_id.values(), key=lambda s: (s.start, s.room, s.title))


def apply_edit(edits: object, session_id: str, value: Session | None) -> list[dict[str, Any]]:
    """The stored edit list with `session_id` replaced (or marked deleted when None)."""
    kept = [
        dict(e)
        for e in (edits if isinstance(edits, list) else [])
        if isinstance(e, Mapping) and e.get("id") != session_id
    ]
    if value is None:
        kept.append({"id": session_id, "deleted": True})
    else:
        kept.append({**value.to_json(), "source": "admin"})
    return kept
