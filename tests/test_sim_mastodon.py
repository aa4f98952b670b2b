"""The Mastodon simulator speaks the REST wire: paging, Link headers, limits, faults."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from aggregator.demo import event_epoch, load_dataset
from aggregator.sim.clock import SimClock
from aggregator.sim.mastodon import MastodonSimulator, ServerSettings, federated_view

END = 50_000.0  # after every item in the dataset
TAG = "/api/v1/timelines/tag"
ROOT = Path(__file__).resolve().parents[1]


class FakeWall:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def dataset() -> dict[str, Any]:
    return load_dataset()


@pytest.fixture
def epoch(dataset: dict[str, Any]) -> datetime:
    return event_epoch(dataset)


@pytest.fixture
def clock(epoch: datetime) -> SimClock:
    return SimClock.manual(epoch, END)


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_sim(
    dataset: dict[str, Any], clock: SimClock, wall: FakeWall
) -> AsyncIterator[Callable[..., Any]]:
    sims: list[MastodonSimulator] = []

    async def factory(*servers: ServerSettings) -> tuple[MastodonSimulator, list[str]]:
        sim = MastodonSimulator.from_dataset(
            dataset, clock=clock, servers=list(servers) or None, wall_time=wall
        )
        sims.append(sim)
        return sim, await sim.start()

    yield factory
    for sim in sims:
        await sim.stop()


async def get(
    http: aiohttp.ClientSession, url: str, **kw: Any
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    async with http.get(url, **kw) as r:
        body = await r.json(content_type=None)
        return r.status, body, r.headers


def links(headers: Any) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', headers.get("Link", ""))}


def qs(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def tagged(dataset: dict[str, Any], tag: str) -> set[str]:
    """Uris of created statuses (boosts via their original) carrying `tag`, ever."""
    creates = {it["status"]["uri"]: it["status"] for it in dataset["items"] if it["op"] == "create"}
    out = set()
    for uri, st in creates.items():
        source = creates[st["reblog_uri"]] if st["reblog_uri"] else st
        if any(t["name"].casefold() == tag for t in source["tags"]):
            out.add(uri)
    for it in dataset["items"]:
        if it["op"] == "edit" and any(t["name"].casefold() == tag for t in it.get("tags", [])):
            out.add(it["uri"])
    return out


# ------------------------------------------------------------------------------- paging


async def test_min_id_paging_walks_every_status_exactly_once(
    make_sim: Any, http: aiohttp.ClientSession, dataset: dict[str, Any]
) -> None:
    sim, (base,) = await make_sim()
    seen: list[str] = []
    url = f"{base}{TAG}/blc26?limit=40&min_id=0"
    pages = 0
    while True:
        status, body, headers = await get(http, url)
        assert status == 200
        if not body:
            assert "Link" not in headers  # Mastodon sends no Link for an empty page
            break
        ids = [int(s["id"]) for s in body]
        assert ids == sorted(ids, reverse=True)  # newest first, even when paging forward
        assert not seen or ids[-1] > int(seen[-1])  # page is right after the previous one
        seen.extend(str(i) for i in reversed(ids))
        url = links(headers)["prev"]
        assert qs(url)["min_id"] == [body[0]["id"]] and qs(url)["limit"] == ["40"]
        pages += 1
    assert pages > 3
    assert len(seen) == len(set(seen))
    uris = {sim.timeline().by_uid[int(i)].uri for i in seen}
    deleted = set(dataset["expected"]["deleted_uris"])
    deleted |= {
        it["status"]["uri"]
        for it in dataset["items"]
        if it["op"] == "create" and it["status"]["reblog_uri"] in deleted
    }
    assert uris == tagged(dataset, "blc26") - deleted


async def test_max_id_and_since_id(make_sim: Any, http: aiohttp.ClientSession) -> None:
    _, (base,) = await make_sim()
    _, everything, _ = await get(http, f"{base}{TAG}/bluelightcamp?limit=40")
    ids = [s["id"] for s in everything]
    assert len(ids) == 40
    # max_id: strictly older than, newest first
    _, page, _ = await get(http, f"{base}{TAG}/bluelightcamp?limit=5&max_id={ids[9]}")
    assert [s["id"] for s in page] == ids[10:15]
    # since_id: the newest ones newer than the bound
    _, page, _ = await get(http, f"{base}{TAG}/bluelightcamp?limit=5&since_id={ids[30]}")
    assert [s["id"] for s in page] == ids[:5]
    # min_id: the ones immediately after the bound, still newest first
    _, page, _ = await get(http, f"{base}{TAG}/bluelightcamp?limit=5&min_id={ids[30]}")
    assert [s["id"] for s in page] == ids[25:30]
    # min_id and max_id together: a gap
    _, page, _ = await get(
        http, f"{base}{TAG}/bluelightcamp?limit=40&min_id={ids[20]}&max_id={ids[10]}"
    )
    assert [s["id"] for s in page] == ids[11:20]
    # default and maximum limit
    _, page, _ = await get(http, f"{base}{TAG}/bluelightcamp")
    assert len(page) == 20
    _, page, _ = await get(http, f"{base}{TAG}/bluelightcamp?limit=400")
    assert len(page) == 40


async def test_link_headers_point_to_the_adjacent_pages(
    make_sim: Any, http: aiohttp.ClientSession
) -> None:
    _, (base,) = await make_sim()
    _, first, headers = await get(http, f"{base}{TAG}/blc26?limit=10&any[]=bluelightcamp")
    rel = links(headers)
    assert set(rel) == {"next", "prev"}
    assert rel["next"] == f"{base}{TAG}/blc26?limit=10&max_id={first[-1]['id']}"
    assert rel["prev"] == f"{base}{TAG}/blc26?limit=10&min_id={first[0]['id']}"
    # like Mastodon, any[]/all[]/none[] are not carried into the links
    assert "any" not in rel["next"]
    _, second, headers2 = await get(http, rel["next"])
    assert len(second) == 10
    assert int(second[0]["id"]) < int(first[-1]["id"])
    # prev of the second page leads back to (the blc26-only part of) the first
    _, back, _ = await get(http, links(headers2)["prev"])
    assert {s["id"] for s in back} <= {s["id"] for s in first}
    # nothing newer than the newest: empty page, no Link header
    status, empty, headers3 = await get(http, rel["prev"])
    assert status == 200 and empty == [] and "Link" not in headers3


async def test_filters(make_sim: Any, http: aiohttp.ClientSession) -> None:
    _, (base,) = await make_sim()
    _, upper, _ = await get(http, f"{base}{TAG}/BLC26?limit=40")
    _, lower, _ = await get(http, f"{base}{TAG}/blc26?limit=40")
    _, hashed, _ = await get(http, f"{base}{TAG}/%23Blc26?limit=40")
    assert upper == lower == hashed != []
    _, media, _ = await get(http, f"{base}{TAG}/blc26?limit=40&only_media=true")
    assert media and all(s["media_attachments"] for s in media)
    _, local, _ = await get(http, f"{base}{TAG}/blc26?limit=40&local=1")
    assert local and all("@" not in s["account"]["acct"] for s in local)
    _, remote, _ = await get(http, f"{base}{TAG}/blc26?limit=40&remote=true")
    assert remote and all("@" in s["account"]["acct"] for s in remote)
    _, both, _ = await get(http, f"{base}{TAG}/blc26?limit=40&all[]=bluelightcamp")
    assert both
    for s in both:
        names = {t["name"] for t in (s["reblog"] or s)["tags"]}
        assert {"blc26", "bluelightcamp"} <= names
    _, without, _ = await get(http, f"{base}{TAG}/blc26?limit=40&none[]=bluelightcamp")
    for s in without:
        assert "bluelightcamp" not in {t["name"] for t in (s["reblog"] or s)["tags"]}
    _, session, _ = await get(http, f"{base}{TAG}/blcb2?limit=40")
    assert session and all(
        "blcb2" in {t["name"] for t in (s["reblog"] or s)["tags"]} for s in session
    )
    status, unknown, headers = await get(http, f"{base}{TAG}/nosuchtag")
    assert status == 200 and unknown == [] and "Link" not in headers


# ------------------------------------------------------------------------------- entities


async def test_same_post_has_different_local_ids_on_two_servers(
    make_sim: Any, http: aiohttp.ClientSession
) -> None:
    _, (a, b) = await make_sim(ServerSettings(), ServerSettings(host="mastodon.example"))
    _, page_a, _ = await get(http, f"{a}{TAG}/blc26?limit=40")
    _, page_b, _ = await get(http, f"{b}{TAG}/blc26?limit=40")
    by_uri_b = {s["uri"]: s for s in page_b}
    common = [s for s in page_a if s["uri"] in by_uri_b]
    assert len(common) > 30
    for s in common:
        other = by_uri_b[s["uri"]]
        assert s["id"] != other["id"]
        assert s["created_at"] == other["created_at"]
        assert s["account"]["url"] == other["account"]["url"]
        assert s["account"]["id"] != other["account"]["id"]
        # acct is relative to the server you ask
        host = s["account"]["url"].split("/")[2]
        assert ("@" not in s["account"]["acct"]) == (host == "social.bluelight.example")
        assert ("@" not in other["account"]["acct"]) == (host == "mastodon.example")
        status, single, _ = await get(http, f"{b}/api/v1/statuses/{other['id']}")
        assert status == 200 and single["uri"] == s["uri"]


async def test_status_entity_shape(
    make_sim: Any, http: aiohttp.ClientSession, dataset: dict[str, Any], epoch: datetime
) -> None:
    sim, (base,) = await make_sim()
    items = [it for it in dataset["items"] if it["op"] == "create"]
    reply = next(it for it in items if it["status"]["in_reply_to_uri"])
    _, status, _ = await get(http, f"{base}/api/v1/statuses/{sim.local_id(reply['status']['uri'])}")
    assert status["in_reply_to_id"] == sim.local_id(reply["status"]["in_reply_to_uri"])
    assert status["in_reply_to_account_id"]
    created = datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))
    assert (created - epoch).total_seconds() == reply["at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", status["created_at"])
    assert abs((int(status["id"]) >> 16) - created.timestamp() * 1000) < 1000
    boost = next(it for it in items if it["status"]["reblog_uri"])
    _, b, _ = await get(http, f"{base}/api/v1/statuses/{sim.local_id(boost['status']['uri'])}")
    assert b["uri"].endswith("/activity") and b["content"] == ""
    assert b["reblog"]["uri"] == boost["status"]["reblog_uri"]
    assert b["reblog"]["id"] == sim.local_id(boost["status"]["reblog_uri"])
    noindex = next(it for it in items if it["status"]["account"]["noindex"])
    _, n, _ = await get(http, f"{base}/api/v1/statuses/{sim.local_id(noindex['status']['uri'])}")
    assert "noindex" not in n["account"]  # only serialised for the server's own accounts
    local = next(
        it for it in items if it["status"]["account"]["acct"].endswith("@social.bluelight.example")
    )
    _, loc, _ = await get(http, f"{base}/api/v1/statuses/{sim.local_id(local['status']['uri'])}")
    assert loc["account"]["noindex"] is False
    media = next(
        it
        for it in items
        if it["status"]["media_attachments"]
        and not it["status"]["account"]["acct"].endswith("@social.bluelight.example")
    )
    _, m, _ = await get(http, f"{base}/api/v1/statuses/{sim.local_id(media['status']['uri'])}")
    attachment = m["media_attachments"][0]
    assert attachment["remote_url"] == media["status"]["media_attachments"][0]["url"]
    assert attachment["url"].startswith("https://media.social.bluelight.example/cache/")
    status404, err, _ = await get(http, f"{base}/api/v1/statuses/12345")
    assert status404 == 404 and err == {"error": "Record not found"}


async def test_boosts_can_be_kept_out_of_tag_timelines(
    make_sim: Any, http: aiohttp.ClientSession
) -> None:
    _, (with_boosts, without) = await make_sim(
        ServerSettings(), ServerSettings(host="social.bluelight.example", include_boosts=False)
    )

    async def walk(base: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url = f"{base}{TAG}/blc26?limit=40"
        while url:
            _, page, headers = await get(http, url)
            out += page
            url = links(headers).get("next", "")
        return out

    assert any(s["reblog"] for s in await walk(with_boosts))
    assert not any(s["reblog"] for s in await walk(without))


# ------------------------------------------------------------------------------- time


async def test_edits_and_deletes_follow_the_clock(
    make_sim: Any, http: aiohttp.ClientSession, dataset: dict[str, Any], clock: SimClock
) -> None:
    sim, (base,) = await make_sim()
    edit = next(it for it in dataset["items"] if it["op"] == "edit" and "tags" in it)
    url = f"{base}/api/v1/statuses/{sim.local_id(edit['uri'])}"
    clock.set_offset(edit["at"] - 1)
    _, before, _ = await get(http, url)
    assert before["edited_at"] is None and before["content"] != edit["content"]
    clock.advance(1)
    _, after, _ = await get(http, url)
    assert after["content"] == edit["content"]
    assert after["edited_at"].endswith(".000Z") and after["edited_at"] > after["created_at"]
    assert {t["name"] for t in after["tags"]} == {t["name"] for t in edit["tags"]}

    delete = next(it for it in dataset["items"] if it["op"] == "delete")
    url = f"{base}/api/v1/statuses/{sim.local_id(delete['uri'])}"
    clock.set_offset(delete["at"] - 1)
    assert (await get(http, url))[0] == 200
    assert delete["uri"] in sim.expected_visible_uris()
    clock.set_offset(delete["at"])
    assert (await get(http, url))[0] == 404
    assert delete["uri"] not in sim.expected_visible_uris()

    # nothing from the future
    clock.set_offset(0)
    _, page, _ = await get(http, f"{base}{TAG}/blc26?limit=40")
    assert page and all(s["created_at"] <= "2026-11-21T09:00:00.000Z" for s in page)


async def test_expected_visible_uris_match_dataset(
    make_sim: Any, dataset: dict[str, Any], clock: SimClock
) -> None:
    sim, _ = await make_sim(
        ServerSettings(), ServerSettings(host="fedi.example.org", sees=federated_view("x"))
    )
    assert sim.expected_visible_uris() == set(dataset["expected"]["visible_uris"])
    assert sim.expected_visible_uris(1) < sim.expected_visible_uris(0)
    clock.set_offset(-10_000)
    assert sim.expected_visible_uris() == set()


async def test_remote_delay_lands_behind_the_cursor(
    make_sim: Any, http: aiohttp.ClientSession, clock: SimClock
) -> None:
    _, (base,) = await make_sim(ServerSettings(remote_delay_s=600))
    clock.set_offset(8_000)
    _, page, _ = await get(http, f"{base}{TAG}/blc26?limit=40")
    newest = int(page[0]["id"])
    clock.advance(600)
    _, later, _ = await get(http, f"{base}{TAG}/blc26?limit=40&since_id=0")
    late = [s for s in later if int(s["id"]) < newest and s["id"] not in {p["id"] for p in page}]
    assert late and all("@" in s["account"]["acct"] for s in late)


# ------------------------------------------------------------------------------- limits


async def test_rate_limit_counts_down_then_429_then_resets(
    make_sim: Any, http: aiohttp.ClientSession, wall: FakeWall
) -> None:
    wall.now = 1_800_000_010.5  # 10.5 s into a 60 s window
    sim, (base,) = await make_sim(ServerSettings(rate_limit=5, rate_period_s=60))
    url = f"{base}{TAG}/blc26?limit=1"
    remaining = []
    for _ in range(5):
        status, _, headers = await get(http, url)
        assert status == 200 and headers["X-RateLimit-Limit"] == "5"
        remaining.append(int(headers["X-RateLimit-Remaining"]))
        reset = datetime.fromisoformat(headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
        assert reset.timestamp() == 1_800_000_060.0  # next multiple of the period
    assert remaining == [4, 3, 2, 1, 0]
    status, body, headers = await get(http, url)
    assert status == 429 and body == {"error": "Too many requests"}
    assert headers["X-RateLimit-Remaining"] == "0" and headers["Retry-After"] == "50"
    # other servers and other tokens have their own budgets
    status, _, _ = await get(http, url, headers={"Authorization": "Bearer sim-token"})
    assert status == 200
    wall.now += 50
    status, _, headers = await get(http, url)
    assert status == 200 and headers["X-RateLimit-Remaining"] == "4"
    assert sim.request_count() == 8
    assert [r.status for r in sim.requests()][-3:] == [429, 200, 200]


async def test_token_required(make_sim: Any, http: aiohttp.ClientSession) -> None:
    _, (base,) = await make_sim(ServerSettings(require_token=True, tokens=frozenset({"t0k"})))
    status, body, headers = await get(http, f"{base}{TAG}/blc26")
    assert status == 401 and body == {"error": "This API requires an authenticated user"}
    assert "X-RateLimit-Remaining" in headers
    status, body, _ = await get(http, f"{base}{TAG}/blc26", headers={"Authorization": "Bearer x"})
    assert status == 401 and body == {"error": "The access token is invalid"}
    status, body, _ = await get(http, f"{base}{TAG}/blc26", headers={"Authorization": "Bearer t0k"})
    assert status == 200 and body and body[0]["favourited"] is False
    status, body, _ = await get(http, f"{base}{TAG}/blc26?access_token=t0k")
    assert status == 200
    status, v2, _ = await get(http, f"{base}/api/v2/instance")
    assert status == 200
    assert v2["configuration"]["timelines_access"]["hashtag_feeds"] == {
        "local": "authenticated",
        "remote": "authenticated",
    }


async def test_instance_endpoints(make_sim: Any, http: aiohttp.ClientSession) -> None:
    _, (base,) = await make_sim(ServerSettings(host="mastodon.example"))
    status, v2, headers = await get(http, f"{base}/api/v2/instance")
    assert status == 200 and v2["domain"] == "mastodon.example" and v2["version"] == "4.5.0"
    assert v2["configuration"]["urls"]["streaming"] == "ws://" + base.split("//")[1]
    assert v2["configuration"]["timelines_access"]["hashtag_feeds"]["remote"] == "public"
    assert "X-RateLimit-Reset" in headers
    status, v1, _ = await get(http, f"{base}/api/v1/instance")
    assert status == 200 and v1["uri"] == "mastodon.example" and v1["version"] == "4.5.0"


async def test_page_cache(
    make_sim: Any, http: aiohttp.ClientSession, clock: SimClock, wall: FakeWall
) -> None:
    _, (base,) = await make_sim(ServerSettings(page_cache_s=15))
    clock.set_offset(3600)
    url = f"{base}{TAG}/blc26?limit=5"
    _, first, _ = await get(http, url)
    clock.set_offset(20_000)
    wall.now += 10
    _, cached, _ = await get(http, url)
    assert cached == first
    _, authed, _ = await get(http, url, headers={"Authorization": "Bearer sim-token"})
    assert authed[0]["id"] != first[0]["id"]  # authenticated requests bypass the cache
    wall.now += 6
    _, fresh, _ = await get(http, url)
    assert fresh[0]["id"] == authed[0]["id"]


# ------------------------------------------------------------------------------- faults


async def test_faults(make_sim: Any, http: aiohttp.ClientSession) -> None:
    sim, (a, b) = await make_sim(ServerSettings(), ServerSettings(host="mastodon.example"))
    url = f"{TAG}/blc26?limit=2"
    sim.fail_next(2, status=503, server=0)
    assert (await get_status(http, b + url)) == 200  # other server unaffected
    assert (await get_status(http, a + url)) == 503
    assert (await get_status(http, a + url)) == 503
    assert (await get_status(http, a + url)) == 200

    sim.drop_next(1)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(a + url) as r:
            await r.read()
    assert (await get_status(http, a + url)) == 200

    sim.garbage_next(1, server=1)
    async with http.get(b + url) as r:
        assert r.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await r.read())

    sim.slow_next(1, 0.3)
    started = time.monotonic()
    assert (await get_status(http, a + url)) == 200
    assert time.monotonic() - started >= 0.3

    assert [r.fault for r in sim.requests(0)] == ["fail", "fail", None, "drop", None, "slow"]
    assert [r.fault for r in sim.requests(1)] == [None, "garbage"]
    assert sim.request_count(0) == 6 and sim.request_count(1) == 2
    assert sim.request_count(0, TAG) == 6 and sim.request_count(0, "/api/v2") == 0
    sim.reset_counts()
    assert sim.request_count(0) == 0


async def get_status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as r:
        await r.read()
        return r.status


# ------------------------------------------------------------------------------- clock + CLI


def test_sim_clock() -> None:
    t = [100.0]
    epoch = datetime.fromisoformat("2026-11-21T09:00:00+00:00")
    clock = SimClock(epoch, speed=60, start_offset=-30, time_fn=lambda: t[0])
    assert clock.offset() == -30
    t[0] += 1.5
    assert clock.offset() == 60
    assert clock.now().isoformat() == "2026-11-21T09:01:00+00:00"
    assert clock.advance(40) == 100
    assert clock.real_seconds_until(160) == 1.0
    clock.set_speed(0)
    t[0] += 100
    assert clock.offset() == 100 and clock.real_seconds_until(200) is None
    manual = SimClock.manual(epoch, 5)
    assert manual.offset() == 5 and manual.advance(5) == 10


@pytest.fixture
def cli() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator.sim.mastodon",
            "--port",
            "0",
            "--speed",
            "60",
            "--servers",
            "2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    yield proc
    proc.terminate()
    assert proc.wait(timeout=10) == 0


async def test_cli_serves_until_killed(
    cli: subprocess.Popen[str], http: aiohttp.ClientSession
) -> None:
    assert cli.stdout is not None
    loop = asyncio.get_running_loop()
    urls = [(await loop.run_in_executor(None, cli.stdout.readline)).strip() for _ in range(2)]
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+", u) for u in urls)
    _, v2, _ = await get(http, f"{urls[1]}/api/v2/instance")
    assert v2["domain"] == "mastodon.example"
    status, page, _ = await get(http, f"{urls[0]}{TAG}/bluelightcamp")
    assert status == 200 and page


# ------------------------------------------------------------------------------- streaming


async def read_events(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    """Every text frame that arrives within `seconds`, parsed where it parses."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        try:
            out.append(json.loads(msg.data))
        except ValueError:
            out.append({"malformed": msg.data})
    return out


def stream_url(base: str) -> str:
    return base + "/api/v1/streaming"


AUTH = {"Authorization": "Bearer sim-token"}


async def test_stream_needs_a_token(make_sim: Any, http: aiohttp.ClientSession) -> None:
    _, (base, refusing, off) = await make_sim(
        ServerSettings(),
        ServerSettings(host="b.example", stream_tokens=frozenset()),
        ServerSettings(host="c.example", streaming=False),
    )
    for url, headers, status in (
        (base, {}, 401),
        (base, {"Authorization": "Bearer wrong"}, 401),
        (refusing, AUTH, 401),  # a token the REST API takes but the stream does not
        (off, AUTH, 404),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(stream_url(url), headers=headers)
        assert refused.value.status == status
    status, v2, _ = await get(http, f"{off}/api/v2/instance")
    assert v2["configuration"]["urls"]["streaming"] is None


async def test_stream_pushes_updates_edits_and_deletes_as_the_clock_releases_them(
    make_sim: Any, http: aiohttp.ClientSession, dataset: dict[str, Any], clock: SimClock
) -> None:
    sim, (base,) = await make_sim()
    clock.set_offset(1300)
    async with http.ws_connect(stream_url(base), headers=AUTH) as ws:
        await ws.send_json({"type": "subscribe", "stream": "hashtag", "tag": "BlueLightCamp"})
        await ws.send_json({"type": "subscribe", "stream": "hashtag", "tag": "blc26"})
        await ws.send_str("not json")  # answered with an error, the stream goes on
        assert (await read_events(ws, 0.2)) == [{"error": "Error parsing JSON"}]
        await asyncio.sleep(0.1)
        events: list[dict[str, Any]] = []
        for offset in range(1350, 2101, 50):  # a delete (1411), edits (1663, 2016, 2063)
            clock.set_offset(offset)
            events += await read_events(ws, 0.07)
        events += await read_events(ws, 0.2)
    kinds = Counter(e["event"] for e in events)
    assert kinds["update"] > 10 and kinds["status.update"] >= 2 and kinds["delete"] == 1
    for event in events:
        assert event["stream"][0] == "hashtag" and event["stream"][1] in ("bluelightcamp", "blc26")
        assert isinstance(event["payload"], str)  # a JSON string, like Mastodon's
    created = {
        it["status"]["uri"]: float(it["at"]) for it in dataset["items"] if it["op"] == "create"
    }
    for event in events:
        if event["event"] == "update":
            status = json.loads(event["payload"])
            assert 1300 < created[status["uri"]] <= 2100  # only what is new: no replay
            assert status["id"] == sim.local_id(status["uri"])
    delete = next(e for e in events if e["event"] == "delete")
    deleted = next(it["uri"] for it in dataset["items"] if it["op"] == "delete")
    assert delete["payload"] == sim.local_id(deleted)  # the server-local id, nothing else
    edited = [json.loads(e["payload"]) for e in events if e["event"] == "status.update"]
    assert all(s["edited_at"] for s in edited)


async def test_stream_faults(make_sim: Any, http: aiohttp.ClientSession, clock: SimClock) -> None:
    sim, (base, other) = await make_sim(
        ServerSettings(stream_heartbeat_s=0.2), ServerSettings(host="b.example")
    )
    clock.set_offset(3000)
    async with http.ws_connect(stream_url(base), headers=AUTH, autoping=False) as ws:
        await ws.send_json({"type": "subscribe", "stream": "hashtag", "tag": "blc26"})
        msg = await ws.receive(timeout=1)  # the server's heartbeat
        assert msg.type == aiohttp.WSMsgType.PING
        await ws.pong(msg.data)
        sim.stream_garbage_next(1)
        await sim.stream_send('{"event": "nonsense"')
        clock.set_offset(3600)
        frames: list[str] = []
        while len(frames) < 3:
            msg = await ws.receive(timeout=1)
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            else:
                frames.append(msg.data)
        assert frames[0] == '{"event": "nonsense"'
        with pytest.raises(ValueError):
            json.loads(json.loads(frames[1])["payload"])  # a malformed frame before an event
        assert json.loads(frames[2])["event"] == "update"
    assert sim.stream_connections() == 1
    # Cut in the middle of a frame: the client sees the connection fail, not a message.
    async with http.ws_connect(stream_url(other), headers=AUTH) as ws:
        await sim.drop_streams(1, mid_frame=True)
        msg = await ws.receive(timeout=1)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    # A stalled stream sends nothing (and reads nothing), then carries on.
    async with http.ws_connect(stream_url(other), headers=AUTH) as ws:
        await ws.send_json({"type": "subscribe", "stream": "hashtag", "tag": "blc26"})
        await asyncio.sleep(0.1)
        sim.stall_streams(0.5, server=1)
        clock.set_offset(5000)
        assert await read_events(ws, 0.3) == []
        assert await read_events(ws, 0.6)
    sim.streams_unavailable(1, server=1)
    with pytest.raises(aiohttp.WSServerHandshakeError) as down:
        await http.ws_connect(stream_url(other), headers=AUTH)
    assert down.value.status == 503
    async with http.ws_connect(stream_url(other), headers=AUTH):
        assert sim.open_streams(1) == 1


async def test_limiter_counts_failed_requests_and_headers_can_be_off(
    make_sim: Any, http: aiohttp.ClientSession
) -> None:
    sim, (base, bare) = await make_sim(
        ServerSettings(rate_limit=3), ServerSettings(host="b.example", rate_headers=False)
    )
    sim.fail_next(2, 500, server=0)
    statuses = []
    for _ in range(4):
        async with http.get(f"{base}{TAG}/blc26") as resp:
            statuses.append(resp.status)
    assert statuses == [500, 500, 200, 429]
    status, _, headers = await get(http, f"{bare}{TAG}/blc26")
    assert status == 200 and "X-RateLimit-Remaining" not in headers
    status, _, _ = await get(http, f"{bare}/api/v2/instance")
    assert status == 200
