"""Schedule import from every supported format, with clear errors for bad files."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from aggregator.digest.schedule import ScheduleError, parse_schedule

TZ = ZoneInfo("Europe/London")

PRETALX = {
    "schedule": {
        "version": "1.0",
        "conference": {
            "acronym": "blc26",
            "title": "BlueLightCamp 2026",
            "start": "2026-11-21",
            "end": "2026-11-21",
            "time_zone_name": "Europe/London",
            "days": [
                {
                    "index": 1,
                    "date": "2026-11-21",
                    "rooms": {
                        "Lighthouse": [
                            {
                                "guid": "6f1c1c1e-1111-4c1b-9a55-000000000001",
                                "id": 101,
                                "date": "2026-11-21T10:00:00+00:00",
                                "start": "10:00",
                                "duration": "00:45",
                                "room": "Lighthouse",
                                "title": "Accessible maps for everyone",
                                "subtitle": "#blcA1",
                                "track": "Maps",
                                "url": "https://pretalx.example/blc26/talk/AAA/",
                                "persons": [{"code": "X1", "public_name": "Ifeoma Okonkwo-Hale"}],
                            }
                        ],
                        "Harbour": [
                            {
                                "guid": "6f1c1c1e-1111-4c1b-9a55-000000000002",
                                "date": "2026-11-21T10:00:00+00:00",
                                "duration": "01:00",
                                "room": "Harbour",
                                "title": "Running a tiny Fediverse server",
                                "persons": [{"name": "Mika Virtavuori"}],
                            }
                        ],
                    },
                }
            ],
        },
    }
}

FRAB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<schedule>
  <conference><title>BlueLightCamp 2026</title></conference>
  <day index="1" date="2026-11-21">
    <room name="Lantern">
      <event guid="e-1" id="7">
        <date>2026-11-21T11:00:00</date>
        <start>11:00</start>
        <duration>00:30</duration>
        <room>Lantern</room>
        <title>Community archives and oral history</title>
        <subtitle>#blcA4</subtitle>
        <track>Archives</track>
        <persons>
          <person id="1">Lotte van Dammer</person>
          <person id="2">Rosa Quintanilla-Eve</person>
        </persons>
      </event>
    </room>
  </day>
</schedule>
"""

SESSIONIZE = {
    "sessions": [
        {
            "id": "501",
            "title": "Low-tech solar websites",
            "description": "Hashtag #blcB2",
            "startsAt": "2026-11-21T13:30:00",
            "endsAt": "2026-11-21T14:15:00",
            "speakers": ["sp-1"],
            "roomId": 3,
        }
    ],
    "speakers": [{"id": "sp-1", "fullName": "Lotte van Dammer"}],
    "rooms": [{"id": 3, "name": "Harbour"}],
}

CSV = """start,end,room,title,leaders,hashtag
2026-11-21T09:00,2026-11-21T09:45,Lighthouse,Welcome & pitching,Maren Vogtland;Kwame Asantewaa,
2026-11-21T14:30,2026-11-21T15:15,Attic,Offline-first apps,Camille Rouvière,#blcC3
"""

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//backchannel tests//EN
BEGIN:VEVENT
UID:ics-1@blc.example
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/London:20261121T153000
DTEND;TZID=Europe/London:20261121T161500
SUMMARY:Radio for emergencies
LOCATION:Lantern
ORGANIZER;CN=Jonas Brandtner:mailto:jonas@blc.example
CATEGORIES:#blcD1
URL:https://blc.example/sessions/d1
END:VEVENT
BEGIN:VEVENT
UID:ics-2@blc.example
DTSTAMP:20261101T000000Z
DTSTART:20261121T163000Z
DURATION:PT45M
SUMMARY:Closing circle
LOCATION:Lighthouse
END:VEVENT
END:VCALENDAR
"""


def test_pretalx_json() -> None:
    sessions = parse_schedule(json.dumps(PRETALX), filename="schedule.json", tz=TZ)
    assert [s.room for s in sessions] == ["Harbour", "Lighthouse"]
    maps = sessions[1]
    assert maps.title == "Accessible maps for everyone"
    assert maps.leaders == ("Ifeoma Okonkwo-Hale",)
    assert maps.hashtag == "blca1" and maps.track == "Maps"
    assert (maps.end - maps.start).total_seconds() == 45 * 60
    assert sessions[0].leaders == ("Mika Virtavuori",)


def test_frab_xml_local_times_are_in_the_event_zone() -> None:
    [session] = parse_schedule(FRAB_XML, filename="schedule.xml", tz=TZ)
    assert session.start == datetime(2026, 11, 21, 11, 0, tzinfo=TZ)
    assert session.leaders == ("Lotte van Dammer", "Rosa Quintanilla-Eve")
    assert session.hashtag == "blca4" and session.room == "Lantern"


def test_sessionize_json() -> None:
    [session] = parse_schedule(json.dumps(SESSIONIZE), filename="sessionize.json", tz=TZ)
    assert session.room == "Harbour" and session.leaders == ("Lotte van Dammer",)
    assert session.hashtag == "blcb2"
    assert session.start == datetime(2026, 11, 21, 13, 30, tzinfo=TZ)


def test_csv() -> None:
    sessions = parse_schedule(CSV, filename="grid.csv", tz=TZ)
    assert sessions[0].leaders == ("Maren Vogtland", "Kwame Asantewaa")
    assert sessions[0].hashtag is None and sessions[1].hashtag == "blcc3"


def test_icalendar() -> None:
    sessions = parse_schedule(ICS, filename="blc.ics", tz=TZ)
    radio, closing = sessions
    assert radio.title == "Radio for emergencies" and radio.leaders == ("Jonas Brandtner",)
    assert radio.hashtag == "blcd1" and radio.url == "https://blc.example/sessions/d1"
    assert (closing.end - closing.start).total_seconds() == 45 * 60


@pytest.mark.parametrize(
    ("text", "filename", "message"),
    [
        ('{"schedule": {', "s.json", "line 1: invalid JSON"),
        ('{"talks": []}', "s.json", "neither pretalx"),
        ('{"schedule": {"conference": {}}}', "s.json", "schedule.conference.days"),
        ("<schedule><event><title>x</title></event>", "s.xml", "invalid XML"),
        (
            "<schedule><event guid='g'><date>soon</date><title>x</title></event></schedule>",
            "s.xml",
            "event g: <date>",
        ),
        ("start,end,title\n", "s.csv", "missing column(s) room"),
        (
            "start,end,room,title\n2026-11-21T10:00,2026-11-21T09:00,A,x\n",
            "s.csv",
            "line 2, end: must be after start",
        ),
        ("start,end,room,title\n2026-11-21T10:00,later,A,x\n", "s.csv", "line 2, end"),
        ("BEGIN:VCALENDAR\nEND:VCALENDAR\n", "s.ics", "no VEVENT"),
        ("whatever", "s.pdf", "unknown schedule format"),
    ],
)
def test_bad_files_name_the_place(text: str, filename: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(text, filename=filename, tz=TZ)


@pytest.mark.parametrize(
    ("text", "filename"),
    [
        ('{"schedule": {"conference": {"title": "T", "days": null}}}', "s.json"),
        (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Talk\r\n"
            "DTSTART:020261121T100000Z\r\nDTEND:20261121T103000Z\r\nEND:VEVENT\r\n"
            "END:VCALENDAR\r\n",
            "s.ics",
        ),
        ("title,room,start,end\n\rTalk,A,2026-11-21 10:00,2026-11-21 10:30\n", "s.csv"),
        ("\rtitle,room,start,end\nTalk,A,2026-11-21 10:00,2026-11-21 10:30\n", "s.csv"),
    ],
)
def test_malformed_files_raise_schedule_error_not_a_crash(text: str, filename: str) -> None:
    # Found by the reliability fuzzer: these escaped as TypeError, csv.Error and
    # icalendar's BrokenCalendarProperty (a 500 on /api/sessions, a traceback in the CLI).
    with pytest.raises(ScheduleError, match=filename):
        parse_schedule(text, filename=filename, tz=TZ)
