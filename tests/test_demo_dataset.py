"""The bundled BlueLightCamp dataset is plausible, consistent and reproducible."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from aggregator.demo import event_epoch, load_dataset
from aggregator.demo.generate import DATASET_PATH, build_dataset, dumps_dataset

RESERVED = re.compile(r"(^|\.)example(\.(org|net|com))?$")


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return load_dataset()


def creates(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [it for it in data["items"] if it["op"] == "create"]


def test_generator_is_deterministic_and_matches_committed_file() -> None:
    text = dumps_dataset(build_dataset())
    assert text == dumps_dataset(build_dataset())
    assert DATASET_PATH.read_text(encoding="utf-8") == text, (
        "stale unconference.json: run python -m aggregator.demo.generate"
    )


def test_event_and_sessions(data: dict[str, Any]) -> None:
    event = data["event"]
    assert event["name"] == "BlueLightCamp 2026"
    assert event["hashtags"] == ["bluelightcamp", "blc26"]
    assert event["timezone"] == "Europe/London"
    assert 28_000 <= event["duration_s"] <= 32_000
    assert event_epoch(data).isoformat() == "2026-11-21T09:00:00+00:00"
    sessions = data["sessions"]
    assert 14 <= len(sessions) <= 20
    assert len({s["id"] for s in sessions}) == len(sessions)
    assert len({s["room"] for s in sessions}) == 4
    for s in sessions:
        assert 0 <= s["start_s"] < s["end_s"] <= event["duration_s"]
        assert s["title"] and s["leaders"] and all(ld["name"] for ld in s["leaders"])
        assert s["hashtag"] is None or re.fullmatch(r"blc[A-D]\d", s["hashtag"])
    assert sum(1 for s in sessions if s["hashtag"]) >= 8


def test_sizes_and_variety(data: dict[str, Any]) -> None:
    items = creates(data)
    assert 300 <= len(items) <= 500
    ops = Counter(it["op"] for it in data["items"])
    assert 8 <= ops["edit"] <= 12 and 4 <= ops["delete"] <= 7
    statuses = [it["status"] for it in items]
    accounts = {s["account"]["acct"] for s in statuses}
    hosts = {a.split("@")[1] for a in accounts}
    assert 20 <= len(accounts) <= 30 and 4 <= len(hosts) <= 6
    assert any(s["account"]["bot"] for s in statuses)
    assert any(s["account"]["noindex"] for s in statuses)
    assert sum(1 for s in statuses if s["reblog_uri"]) >= 20
    assert sum(1 for s in statuses if s["in_reply_to_uri"]) >= 30
    assert sum(1 for s in statuses if s["spoiler_text"] and s["sensitive"]) >= 5
    assert sum(1 for s in statuses if s["emojis"]) >= 5
    assert sum(1 for s in statuses if s["card"]) >= 8
    images = [m for s in statuses for m in s["media_attachments"]]
    assert sum(1 for m in images if m["description"]) >= 15
    assert any(m["description"] is None for m in images)  # some people skip alt text
    assert len({s["language"] for s in statuses}) >= 6
    quotes = "".join(s["content"] for s in statuses)
    for mark in ("“", "„", "«", "「", "”"):
        assert mark in quotes
    # mostly during sessions, write-ups mostly after the end
    in_session = [
        it
        for it in items
        if any(s["start_s"] <= it["at"] <= s["end_s"] + 900 for s in data["sessions"])
    ]
    assert len(in_session) > len(items) / 2
    end = data["event"]["duration_s"]
    writeups = [it for it in items if it["status"]["card"]]
    assert sum(1 for it in writeups if it["at"] > end) > len(writeups) / 2
    assert max(it["at"] for it in items) <= end + 5 * 3600


def test_every_create_carries_an_event_hashtag(data: dict[str, Any]) -> None:
    by_uri = {it["status"]["uri"]: it["status"] for it in creates(data)}
    event_tags = {t.casefold() for t in data["event"]["hashtags"]}
    for status in by_uri.values():
        source = by_uri[status["reblog_uri"]] if status["reblog_uri"] else status
        names = {t["name"].casefold() for t in source["tags"]}
        assert names & event_tags, status["uri"]
        if not status["reblog_uri"]:
            for name in names:
                assert f"/tags/{name}".casefold() in status["content"].casefold()
            assert status["content"].startswith("<p>") and status["visibility"] == "public"


def test_references_are_consistent(data: dict[str, Any]) -> None:
    created: dict[str, float] = {}
    for it in data["items"]:
        if it["op"] == "create":
            st = it["status"]
            assert st["uri"] not in created, "duplicate uri"
            assert "id" not in st and "created_at" not in st
            for ref in (st["in_reply_to_uri"], st["reblog_uri"]):
                assert ref is None or created[ref] < it["at"]
            if st["reblog_uri"]:
                assert st["uri"].endswith("/activity")
            created[st["uri"]] = it["at"]
        else:
            assert created[it["uri"]] < it["at"], it
    assert data["items"] == sorted(data["items"], key=lambda it: it["at"])
    expected = data["expected"]
    deleted = set(expected["deleted_uris"])
    originals = [it["status"]["uri"] for it in creates(data) if not it["status"]["reblog_uri"]]
    assert expected["visible_uris"] == [u for u in originals if u not in deleted]
    assert set(expected["edited_uris"]) <= set(created)
    for quote in expected["quotes"]:
        assert quote["speaker"] and quote["uris"]


def test_no_real_looking_domains() -> None:
    text = DATASET_PATH.read_text(encoding="utf-8")
    hosts = set(re.findall(r"https?://([^/\"'\s<>]+)", text))
    hosts |= set(re.findall(r"@[A-Za-z0-9_]+@([A-Za-z0-9.-]+)", text))
    assert hosts
    bad = sorted(h for h in hosts if not RESERVED.search(h))
    assert not bad, bad
