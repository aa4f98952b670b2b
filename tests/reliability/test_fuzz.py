"""Bad input, generated: hypothesis over the normalisers, the Jetstream source's frame
handler, the schedule importers, the config loader and every HTTP route.

Each may refuse an input, but only in its documented way (NormaliseError, ScheduleError,
ConfigError naming the key, a 4xx with a message): never another exception, never a 500.
Example counts are bounded so the whole file runs in well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import string
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import SCHEMA, ConfigError, env_name, load_config
from aggregator.digest.schedule import ScheduleError, parse_schedule
from aggregator.match import HashtagMatcher
from aggregator.normalise import NormaliseError
from aggregator.normalise.bluesky import normalise_bluesky_post
from aggregator.normalise.mastodon import normalise_mastodon_status
from aggregator.pipeline import RawItem, new_inbox
from aggregator.sim.bluesky_data import did_for, post_record
from aggregator.sim.jetstream import NSID, tid
from aggregator.sources.jetstream import ErrorFrameError, JetstreamSource

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["", "https://x.example/a", "did:plc:abc", "2026-11-21T10:00:00Z", "#tag"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "uri",
                    "url",
                    "content",
                    "text",
                    "account",
                    "reblog",
                    "created_at",
                    "createdAt",
                    "facets",
                    "embed",
                    "tags",
                    "langs",
                    "media_attachments",
                    "card",
                    "emojis",
                    "reply",
                    "index",
                    "byteStart",
                    "byteEnd",
                    "features",
                    "$type",
                    "images",
                    "external",
                    "record",
                    "labels",
                    "values",
                    "val",
                    "acct",
                    "username",
                    "display_name",
                    "avatar",
                    "bot",
                    "spoiler_text",
                    "sensitive",
                    "in_reply_to_id",
                    "mentions",
                    "edited_at",
                    "did",
                    "tag",
                    "uri",
                    "ref",
                    "$link",
                    "cid",
                    "alt",
                    "thumb",
                    "image",
                    "description",
                    "title",
                ]
            )
            | TEXT,
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)

MASTODON_STATUS = {
    "id": "1",
    "uri": "https://social.example/users/a/statuses/1",
    "url": "https://social.example/@a/1",
    "created_at": "2026-11-21T10:00:00.000Z",
    "content": "<p>hello <a href='https://social.example/tags/blc26'>#blc26</a></p>",
    "account": {"id": "9", "acct": "a", "username": "a", "url": "https://social.example/@a"},
    "tags": [{"name": "blc26"}],
    "media_attachments": [{"type": "image", "url": "https://m.example/1.jpg"}],
}


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """`base` with random keys (nested too) replaced by random JSON values."""
    value: Any = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 4))):
        node = value
        path = draw(st.lists(st.sampled_from(sorted(_keys(base))), min_size=1, max_size=3))
        for key in path[:-1]:
            nxt = node.get(key) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                break
            node = nxt
        if isinstance(node, dict):
            node[path[-1]] = draw(JSON)
    return value


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@FAST
@given(st.one_of(JSON, mutated(MASTODON_STATUS)))
def test_mastodon_normaliser_raises_only_normalise_error(status: Any) -> None:
    try:
        post = normalise_mastodon_status(status, server="https://social.example")
    except NormaliseError as exc:
        assert str(exc)
        return
    assert post.id and post.platform == "mastodon"
    json.dumps(post.to_json())


BLUESKY_RECORD = post_record([("text", "hello "), ("tag", "blc26")], "2026-11-21T10:00:00.000Z")


@FAST
@given(st.one_of(JSON, mutated(BLUESKY_RECORD)), TEXT)
def test_bluesky_normaliser_raises_only_normalise_error(record: Any, rkey: str) -> None:
    try:
        post = normalise_bluesky_post(record, did=did_for("fuzz"), rkey=rkey or "3k")
    except NormaliseError as exc:
        assert str(exc)
        return
    json.dumps(post.to_json())


def commit_frame(record: Any) -> dict[str, Any]:
    return {
        "$type": "message",
        "payload": {
            "$type": f"{NSID}#commit",
            "seq": 1_000_001,
            "time": "2026-11-21T10:00:00.000000Z",
            "did": did_for("fuzz"),
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": tid(1_700_000_000_000_000),
            "cid": "bafyfuzz",
            "record": record,
        },
    }


FRAMES = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    mutated(commit_frame(BLUESKY_RECORD)).map(lambda v: json.dumps(v).encode()),
    mutated(BLUESKY_RECORD).map(lambda r: json.dumps(commit_frame(r)).encode()),
)


@FAST
@given(st.lists(FRAMES, min_size=1, max_size=5))
def test_jetstream_frame_handler_skips_bad_frames(frames: list[bytes]) -> None:
    async def handle() -> None:
        inbox = new_inbox()
        source = JetstreamSource(
            "ws://127.0.0.1:9",
            HashtagMatcher(["blc26"]),
            inbox,
            store=None,  # type: ignore[arg-type]
        )
        for raw in frames:
            try:
                await source._decode(raw)
            except ErrorFrameError as exc:
                # The one exception: an error frame ends the connection, by design.
                assert b'"error"' in raw and str(exc)
        source._position()  # the checkpoint path reads the last undecoded frame
        while not inbox.empty():
            item = inbox.get_nowait()
            if isinstance(item, RawItem):
                context = item.context
                try:
                    normalise_bluesky_post(
                        item.payload, did=context["did"], rkey=context["rkey"], cid=context["cid"]
                    )
                except NormaliseError:
                    pass

    asyncio.run(handle())


SCHEDULE_SAMPLES = {
    "s.json": json.dumps(
        {
            "schedule": {
                "conference": {
                    "title": "T",
                    "days": [
                        {
                            "date": "2026-11-21",
                            "rooms": {
                                "A": [
                                    {
                                        "guid": "1",
                                        "title": "Talk",
                                        "date": "2026-11-21T10:00:00+00:00",
                                        "duration": "00:30",
                                        "room": "A",
                                        "persons": [{"public_name": "Ann"}],
                                    }
                                ]
                            },
                        }
                    ],
                }
            }
        }
    ),
    "s.csv": "title,room,start,end,leaders\nTalk,A,2026-11-21 10:00,2026-11-21 10:30,Ann\n",
    "s.ics": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Talk\r\n"
        "DTSTART:20261121T100000Z\r\nDTEND:20261121T103000Z\r\nLOCATION:A\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
    "s.xml": (
        "<schedule><day date='2026-11-21'><room name='A'><event guid='1'>"
        "<title>Talk</title><date>2026-11-21T10:00:00+00:00</date><start>10:00</start>"
        "<duration>00:30</duration><room>A</room></event></room></day></schedule>"
    ),
}


@st.composite
def schedule_text(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SCHEDULE_SAMPLES)))
    text = SCHEDULE_SAMPLES[name]
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return name, draw(st.text(max_size=300))
    if choice == 1 and name == "s.json":
        return name, json.dumps(draw(mutated(json.loads(text))))
    # Splice random characters into a valid file.
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 10))
        text = text[:at] + draw(st.text(string.printable, max_size=8)) + text[at + cut :]
    return name, text


@FAST
@given(schedule_text())
def test_schedule_importers_raise_only_schedule_error(sample: tuple[str, str]) -> None:
    name, text = sample
    try:
        sessions = parse_schedule(text, filename=name, tz=ZoneInfo("Europe/London"))
    except ScheduleError as exc:
        assert str(exc)
        return
    for session in sessions:
        json.dumps(session.to_json())


# --- the config loader ------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    TEXT,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["https://ok.example", "wss://ok.example", "ftp://x", "sqlite:///x.db", ""]),
)
TOML_VALUES = st.one_of(
    TOML_SCALARS,
    st.lists(TOML_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), TOML_SCALARS, max_size=2),
)
PLAIN_KEYS = [
    (s, k) for s, keys in SCHEMA.items() for k, spec in keys.items() if spec.kind != "secret"
]


@FAST
@given(st.sampled_from(PLAIN_KEYS), TOML_VALUES)
def test_config_values_give_config_error_naming_the_key(
    tmp_path_factory: pytest.TempPathFactory, where: tuple[str, str], value: Any
) -> None:
    section, key = where
    path = tmp_path_factory.mktemp("cfg") / "event.toml"
    path.write_text(f"[{section}]\n{key} = {toml_value(value)}\n", encoding="utf-8")
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert f"{section}.{key}" in str(exc) or "invalid TOML" in str(exc), str(exc)


@FAST
@given(st.sampled_from([*PLAIN_KEYS, ("web", "admin_token")]), TEXT)
def test_config_env_overrides_give_config_error_naming_the_key(
    where: tuple[str, str], value: str
) -> None:
    section, key = where
    name = env_name(section, key)
    try:
        load_config(None, env={name: value.replace("\x00", "")})
    except ConfigError as exc:
        message = str(exc)
        assert f"{section}.{key}" in message or name in message, message


# --- every HTTP route -------------------------------------------------------------------

ADMIN = "fuzz-admin-token"
PARAMS = ["before", "after", "limit", "platform", "session", "q", "shuffle", "format", "id"]
# Values that broke things before (a NUL in q=) or are classic trouble, then anything.
NASTY = st.sampled_from(["\x00", "a\x00b", "'", '"', "%", "\\", "-1", "9" * 40, "nan", " "])
QUERY = st.dictionaries(st.sampled_from(PARAMS) | TEXT.filter(bool), NASTY | TEXT, max_size=4)
BODY = st.one_of(
    st.binary(max_size=100),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "action": st.sampled_from(
                [
                    "hide",
                    "unhide",
                    "approve",
                    "reject",
                    "pin",
                    "unpin",
                    "ban",
                    "unban",
                    "announce",
                    "assign",
                    "nope",
                ]
            )
            | SCALARS,
            "post": SCALARS,
            "author": SCALARS,
            "text": SCALARS,
            "session": SCALARS,
            "moderation": st.sampled_from(["post", "pre", "x"]) | SCALARS,
        },
    ).map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    from web.app import create_app

    config = load_config(env={"BACKCHANNEL_WEB_ADMIN_TOKEN": ADMIN}).with_overrides(
        event={"name": "Fuzz Camp", "hashtags": ["fuzzcamp"]},
        storage={"url": f"sqlite:///{tmp_path}/fuzz.db"},
        bluesky={"mode": "off"},
    )
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as c:
        yield c


def routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    found = []
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        # A path parameter ({id}) gets a plausible value, so the route is reached.
        path = re.sub(r"\{[^}]+\}", "x1", path)
        if route.method == "HEAD" or path in ("/static", "/ws"):
            continue
        found.append((route.method, path))
    return sorted(set(found))


async def test_every_route_answers_bad_input_with_a_4xx_never_a_500(
    client: TestClient[Any, Any],
) -> None:
    table = routes(client)
    assert ("GET", "/api/posts") in table and ("POST", "/api/admin/actions") in table
    results: dict[tuple[str, str, str], int] = {}

    def fuzz(route: tuple[str, str]) -> None:
        @settings(max_examples=25, deadline=None)
        @given(QUERY, BODY, st.sampled_from(["none", "token", "bad"]))
        def one(query: dict[str, str], body: bytes, auth: str) -> None:
            check(route, query, body, auth)

        one()

    def check(route: tuple[str, str], query: dict[str, str], body: bytes, auth: str) -> None:
        method, path = route
        headers = {"Content-Type": "application/json"}
        if auth == "token":
            headers["Authorization"] = f"Bearer {ADMIN}"
        elif auth == "bad":
            headers["Authorization"] = "Bearer wrong"
        future = asyncio.run_coroutine_threadsafe(
            _request(client, method, path, query, body, headers), loop
        )
        status, text = future.result(timeout=30)
        results[(method, path, auth)] = status
        assert status < 500, (method, path, query, body, status, text[:300])
        if status >= 400:
            assert text.strip(), f"{method} {path} -> {status} with an empty body"
        if path.startswith("/api/admin") and auth != "token":
            assert status in (401, 403, 429), (method, path, status)  # 429: too many bad tokens

    loop = asyncio.get_running_loop()
    for route in table:
        await asyncio.to_thread(fuzz, route)
    # Every route was reached, with and without the admin token.
    assert {(m, p) for m, p, _ in results} == set(table)


async def _request(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    headers: dict[str, str],
) -> tuple[int, str]:
    data = body if method in ("POST", "PUT") else None
    async with client.request(
        method, path, params=query, data=data, headers=headers, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(errors="replace")


BARE = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)


@FAST
@given(
    st.sampled_from([*SCHEMA, "nope"]) | BARE,
    st.one_of(
        TOML_VALUES,
        st.dictionaries(st.sampled_from(["name", "port", "x"]) | BARE, TOML_VALUES, max_size=3),
    ),
)
def test_config_sections_of_any_shape_give_config_error_naming_them(
    tmp_path_factory: pytest.TempPathFactory, section: str, body: Any
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "event.toml"
    path.write_text(f"{section} = {toml_value(body)}\n", encoding="utf-8")
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert section in str(exc) or "invalid TOML" in str(exc), str(exc)
