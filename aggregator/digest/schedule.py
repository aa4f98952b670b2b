"""Schedule import: pretalx/frab JSON, frab XML, iCalendar, Sessionize JSON and CSV.

Pure: text in, sessions out (the caller reads the file). Times without an offset are in
the event's time zone. A bad file raises ScheduleError naming the line or field.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from aggregator.match import normalise_tag


class ScheduleError(ValueError):
    """A schedule that cannot be read; the message says where."""


@dataclass(frozen=True)
class Session:
    id: str
    title: str
    room: str
    start: datetime  # aware
    end: datetime  # aware
    leaders: tuple[str, ...] = ()
    hashtag: str | None = None  # normalised, without '#'
    url: str | None = None
    track: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "room": self.room,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "leaders": list(self.leaders),
            "hashtag": self.hashtag,
            "url": self.url,
            "track": self.track,
        }


def parse_schedule(text: str, *, filename: str, tz: ZoneInfo) -> list[Session]:
    """Pick the format from the file name (and, for .json, from its shape)."""
    try:
        return _parse_schedule(text, filename, tz)
    except ScheduleError:
        raise
    except (csv.Error, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # A shape the format readers did not foresee (null lists, broken iCalendar values,
        # stray carriage returns): still one clear error, never a crash.
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise ScheduleError(f"{filename}: malformed schedule ({detail})") from None


def _parse_schedule(text: str, filename: str, tz: ZoneInfo) -> list[Session]:
    name = filename.lower()
    if name.endswith(".ics"):
        sessions = parse_ical(text, tz)
    elif name.endswith(".xml"):
        sessions = parse_frab_xml(text, tz)
    elif name.endswith(".csv"):
        sessions = parse_csv(text, tz)
    elif name.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScheduleError(f"{filename}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
        if isinstance(data, dict) and "schedule" in data:
            sessions = parse_pretalx(data, tz)
        elif isinstance(data, dict) and "sessions" in data:
            sessions = parse_sessionize(data, tz)
        else:
            raise ScheduleError(
                f"{filename}: neither pretalx/frab ('schedule') nor Sessionize ('sessions') JSON"
            )
    else:
        raise ScheduleError(f"{filename}: unknown schedule format (use .json, .xml, .ics, .csv)")
    return sorted(sessions, key=lambda s: (s.start, s.room, s.id))


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _datetime(value: Any, where: str, tz: ZoneInfo) -> datetime:
    if isinstance(value, str):
        try:
            return _local(datetime.fromisoformat(value.strip().replace("Z", "+00:00")), tz)
        except ValueError:
            pass
    raise ScheduleError(f"{where}: expected a date-time like 2026-11-21T10:00, got {value!r}")


def _duration(value: Any, where: str) -> timedelta:
    match = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{2})", str(value).strip())
    if not match:
        raise ScheduleError(f"{where}: expected a duration like 00:45, got {value!r}")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    # frab writes "01:00:30" as days:hours:minutes only for multi-day events
    return timedelta(days=days, hours=hours, minutes=minutes)


def _hashtag(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, str):
            found = re.search(r"#([\w-]+)", value)
            if found:
                return normalise_tag(found.group(1))
    return None


def parse_pretalx(data: dict[str, Any], tz: ZoneInfo) -> list[Session]:
    try:
        days = data["schedule"]["conference"]["days"]
    except (KeyError, TypeError):
        raise ScheduleError("schedule.conference.days: missing") from None
    sessions = []
    for d, day in enumerate(days):
        rooms = day.get("rooms") if isinstance(day, dict) else None
        if not isinstance(rooms, dict):
            raise ScheduleError(f"schedule.conference.days[{d}].rooms: expected an object")
        for room, events in rooms.items():
            for e, event in enumerate(events or []):
                where = f"days[{d}].rooms[{room!r}][{e}]"
                if not isinstance(event, dict):
                    raise ScheduleError(f"{where}: expected an object")
                start = _datetime(event.get("date"), f"{where}.date", tz)
                end = start + _duration(event.get("duration", "00:00"), f"{where}.duration")
                persons = tuple(
                    str(p.get("public_name") or p.get("name") or "").strip()
                    for p in event.get("persons") or ()
                    if isinstance(p, dict)
                )
                title = str(event.get("title") or "").strip()
                if not title:
                    raise ScheduleError(f"{where}.title: missing")
                sessions.append(
                    Session(
                        id=str(event.get("guid") or event.get("id") or f"{d}-{room}-{e}"),
                        title=title,
                        room=str(event.get("room") or room),
                        start=start,
                        end=end,
                        leaders=tuple(p for p in persons if p),
                        hashtag=_hashtag(event.get("subtitle"), event.get("abstract")),
                        url=event.get("url") or None,
                        track=event.get("track") or None,
                    )
                )
    return sessions


def parse_frab_xml(text: str, tz: ZoneInfo) -> list[Session]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = exc.position
        raise ScheduleError(f"line {line}, column {col}: invalid XML") from None
    sessions = []
    for e, event in enumerate(root.iter("event")):
        where = f"event {event.get('guid') or event.get('id') or e + 1}"

        def text_of(tag: str, event: ET.Element = event) -> str:
            node = event.find(tag)
            return (node.text or "").strip() if node is not None else ""

        start = _datetime(text_of("date"), f"{where}: <date>", tz)
        end = start + _duration(text_of("duration") or "00:00", f"{where}: <duration>")
        title = text_of("title")
        if not title:
            raise ScheduleError(f"{where}: <title> missing")
        persons = tuple((p.text or "").strip() for p in event.iter("person") if p.text)
        sessions.append(
            Session(
                id=event.get("guid") or event.get("id") or str(e),
                title=title,
                room=text_of("room"),
                start=start,
                end=end,
                leaders=persons,
                hashtag=_hashtag(text_of("subtitle"), text_of("abstract")),
                url=text_of("url") or None,
                track=text_of("track") or None,
            )
        )
    if not sessions:
        raise ScheduleError("no <event> elements found")
    return sessions


def parse_sessionize(data: dict[str, Any], tz: ZoneInfo) -> list[Session]:
    rooms = {
        r.get("id"): str(r.get("name") or "")
        for r in data.get("rooms") or ()
        if isinstance(r, dict)
    }
    speakers = {
        s.get("id"): str(s.get("fullName") or "")
        for s in data.get("speakers") or ()
        if isinstance(s, dict)
    }
    sessions = []
    for i, item in enumerate(data.get("sessions") or ()):
        where = f"sessions[{i}]"
        if not isinstance(item, dict):
            raise ScheduleError(f"{where}: expected an object")
        if item.get("isServiceSession") and not item.get("title"):
            continue
        start = _datetime(item.get("startsAt"), f"{where}.startsAt", tz)
        end = _datetime(item.get("endsAt"), f"{where}.endsAt", tz)
        title = str(item.get("title") or "").strip()
        if not title:
            raise ScheduleError(f"{where}.title: missing")
        leaders = tuple(speakers.get(s, "") for s in item.get("speakers") or ())
        sessions.append(
            Session(
                id=str(item.get("id") or i),
                title=title,
                room=rooms.get(item.get("roomId"), str(item.get("room") or "")),
                start=start,
                end=end,
                leaders=tuple(x for x in leaders if x),
                hashtag=_hashtag(item.get("description")),
            )
        )
    return sessions


CSV_COLUMNS = ("start", "end", "room", "title", "leaders", "hashtag")


def parse_csv(text: str, tz: ZoneInfo) -> list[Session]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS[:4] if c not in (reader.fieldnames or ())]
    if missing:
        raise ScheduleError(
            f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}"
        )
    sessions = []
    for row in reader:
        line = reader.line_num
        start = _datetime(row.get("start"), f"line {line}, start", tz)
        end = _datetime(row.get("end"), f"line {line}, end", tz)
        if end <= start:
            raise ScheduleError(f"line {line}, end: must be after start")
        title = (row.get("title") or "").strip()
        if not title:
            raise ScheduleError(f"line {line}, title: missing")
        leaders = tuple(x.strip() for x in (row.get("leaders") or "").split(";") if x.strip())
        tag = (row.get("hashtag") or "").strip()
        sessions.append(
            Session(
                id=f"s{line - 1}",
                title=title,
                room=(row.get("room") or "").strip(),
                start=start,
                end=end,
                leaders=leaders,
                hashtag=normalise_tag(tag) or None,
            )
        )
    return sessions


def parse_ical(text: str, tz: ZoneInfo) -> list[Session]:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ScheduleError(f"invalid iCalendar: {exc}") from None
    sessions = []
    for n, event in enumerate(calendar.walk("VEVENT")):
        uid = str(event.get("UID") or n)
        where = f"VEVENT {uid}"
        start = _ical_time(event.get("DTSTART"), f"{where}: DTSTART", tz)
        if event.get("DTEND") is not None:
            end = _ical_time(event.get("DTEND"), f"{where}: DTEND", tz)
        elif event.get("DURATION") is not None:
            end = start + event.decoded("DURATION")
        else:
            end = start
        title = str(event.get("SUMMARY") or "").strip()
        if not title:
            raise ScheduleError(f"{where}: SUMMARY missing")
        categories = _ical_list(event.get("CATEGORIES"))
        organiser = event.get("ORGANIZER")
        leaders = (
            [str(organiser.params.get("CN"))]
            if organiser is not None and organiser.params.get("CN")
            else []
        )
        leaders += [
            str(a.params.get("CN")) for a in _as_list(event.get("ATTENDEE")) if a.params.get("CN")
        ]
        sessions.append(
            Session(
                id=uid,
                title=title,
                room=str(event.get("LOCATION") or "").strip(),
                start=start,
                end=end,
                leaders=tuple(leaders),
                hashtag=_hashtag(
                    *[f"#{c.lstrip('#')}" for c in categories if c.startswith("#")],
                    str(event.get("DESCRIPTION") or ""),
                ),
                url=str(event.get("URL")) if event.get("URL") else None,
            )
        )
    if not sessions:
        raise ScheduleError("no VEVENT found")
    return sessions


def _ical_time(prop: Any, where: str, tz: ZoneInfo) -> datetime:
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return _local(value, tz)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=tz)
    raise ScheduleError(f"{where}: missing or not a date-time")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _ical_list(value: Any) -> Iterable[str]:
    for item in _as_list(value):
        cats = getattr(item, "cats", None)
        if cats is not None:
            yield from (str(c) for c in cats)
        else:
            yield str(item)
