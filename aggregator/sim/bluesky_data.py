"""Synthetic Bluesky data: the event's Bluesky share for the demo, and network-like load.

`bluesky_share(dataset)` invents a few Bluesky accounts and their posts for the bundled
unconference (same sessions, times and hashtags as the Mastodon share): tag facets (some
after emoji), posts tagged only through the `tags` array, images, link cards, replies,
quotes, edits, deletes and one handle change. `start_bluesky_sims(clock)` serves it from
a Jetstream and an AppView simulator on the demo's `SimClock`, with background traffic
that does not match, so the demo exercises the filter too. `LoadGenerator` makes
network-like traffic at a chosen rate for tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.sim.appview import AppViewSimulator, SimProfile
from aggregator.sim.clock import SimClock
from aggregator.sim.jetstream import JetstreamSimulator, fake_cid, tid

TAG_FEATURE = "app.bsky.richtext.facet#tag"
LINK_FEATURE = "app.bsky.richtext.facet#link"
POST = "app.bsky.feed.post"
WORDS = (
    "the a session talk room coffee slides great idea open source community data privacy "
    "accessibility keynote question panel speaker notes map volunteer radio network "
    "protocol bluesky fediverse camp lunch hallway track demo workshop today weather"
).split()
FOREIGN = ("今日はいい天気ですね", "café ☕ und Grüße", "🎉🎉 fiesta", "Ça va très bien", "😀 ok")
NEAR_MISSES = ("bluelightcamping", "camp", "blc", "blc2026", "bluelight", "blc26x")

Segment = tuple[str, str]  # ("text", s) | ("tag", name) | ("link", url)


def did_for(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return "did:plc:" + "".join("abcdefghijklmnopqrstuvwxyz234567"[b % 32] for b in digest[:24])


def post_record(
    segments: Sequence[Segment], created_at: str, *, tags: Sequence[str] = (), lang: str = "en"
) -> dict[str, Any]:
    """An app.bsky.feed.post record whose facets carry correct UTF-8 byte offsets."""
    text, facets, offset = "", [], 0
    for kind, value in segments:
        shown = f"#{value}" if kind == "tag" else value
        size = len(shown.encode())
        if kind == "tag":
            facets.append(_facet(offset, size, {"$type": TAG_FEATURE, "tag": value}))
        elif kind == "link":
            shown = value.split("://", 1)[-1]
            size = len(shown.encode())
            facets.append(_facet(offset, size, {"$type": LINK_FEATURE, "uri": value}))
        text += shown
        offset += size
    record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": created_at, "langs": [lang]}
    if facets:
        record["facets"] = facets
    if tags:
        record["tags"] = list(tags)
    return record


def _facet(start: int, size: int, feature: dict[str, str]) -> dict[str, Any]:
    return {"index": {"byteStart": start, "byteEnd": start + size}, "features": [feature]}


@dataclass
class ScriptItem:
    at: float  # seconds after the event start
    op: str  # create | update | delete | identity
    did: str
    rkey: str = ""
    record: dict[str, Any] | None = None
    handle: str | None = None


@dataclass
class BlueskyShare:
    profiles: list[SimProfile]
    script: list[ScriptItem]

    def uris(self, op: str = "create") -> list[str]:
        return [f"at://{i.did}/{POST}/{i.rkey}" for i in self.script if i.op == op]


ACCOUNTS = (
    ("bluelightcamp.bsky.example", "BlueLightCamp"),
    ("juniper.bsky.example", "Juniper Okafor 🌿"),
    ("hal.bsky.example", "Hal Mbeki"),
    ("sofie.bsky.example", "Sofie Lindqvist"),
    ("ren.tanaka.example", "任 Ren Tanaka"),
    ("marguerite.bsky.example", "Marguerite Duval"),
    ("ollie.bsky.example", "Ollie Brandt"),
    ("aisha.bsky.example", "Aisha Karimi"),
    ("noor.bsky.example", "Noor"),
    ("teodor.bsky.example", "Teodor Vasile"),
)
SESSION_LINES = (
    "Packed room for “{title}” in {room}. Standing room only!",
    "Great point in {title}: start with the people who use it, not the tech.",
    "Notes from {title} are going into the shared pad, come add yours.",
    "Loving the energy at {title} 🙌",
    "Question from the floor at {title}: who maintains this in five years?",
    "{title}: three takeaways. Keep it small, write it down, share it.",
    "Slides for {title} will be online later today.",
    "Joined {title} late and still learnt loads.",
)
GENERAL_LINES = (
    (-3000, "On the train to BlueLightCamp, who else is coming?"),
    (-600, "Badges picked up, coffee in hand. Ready!"),
    (1500, "The session board is filling up fast 📋"),
    (5400, "Coffee queue is the real hallway track ☕"),
    (10800, "Lunch is vegan curry and it is excellent 🍛"),
    (16200, "Afternoon slump defeated by the cake table."),
    (27600, "Thank you all, what a day 💙"),
    (32400, "Wrote up my notes from today, link below."),
)


def bluesky_share(dataset: dict[str, Any], seed: int = 26) -> BlueskyShare:
    """The Bluesky side of the bundled unconference; deterministic for a given seed."""
    rng = random.Random(seed)
    event = dataset["event"]
    main_tags = [str(t) for t in event["hashtags"]]
    epoch = datetime.fromisoformat(str(event["start"]))
    people = [(did_for(h), h, n) for h, n in ACCOUNTS]
    profiles = [
        SimProfile(did, handle, name, f"https://cdn.bsky.example/avatar/{handle.split('.')[0]}.jpg")
        for did, handle, name in people
    ]
    script: list[ScriptItem] = []
    used: set[str] = set()

    def add(at: float, who: int, segments: list[Segment], **extra: Any) -> ScriptItem:
        did = people[who][0]
        created = (epoch + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        record = post_record(segments, created, tags=extra.pop("tags", ()))
        record.update(extra)
        rkey = tid(int((epoch + timedelta(seconds=at)).timestamp() * 1e6), who)
        while rkey in used:
            rkey = tid(int((epoch + timedelta(seconds=at)).timestamp() * 1e6) + len(used), who)
        used.add(rkey)
        item = ScriptItem(at, "create", did, rkey, record)
        script.append(item)
        return item

    for when, line in GENERAL_LINES:
        add(
            float(when),
            rng.randrange(len(people)),
            [("text", line + " "), ("tag", rng.choice(main_tags))],
        )
    for session in dataset["sessions"]:
        start, end = float(session["start_s"]), float(session["end_s"])
        for n in range(rng.randint(3, 6)):
            at = start + (end - start) * (n + rng.random()) / 6.5
            line = rng.choice(SESSION_LINES).format(title=session["title"], room=session["room"])
            segments: list[Segment] = [("text", line + " ")]
            style = rng.random()
            if style < 0.15:
                segments = [("text", "🎤✨ "), ("tag", main_tags[0]), ("text", " " + line)]
            elif style < 0.3:
                segments.append(("tag", main_tags[1].upper()))
            else:
                segments.append(("tag", rng.choice(main_tags)))
            if session.get("hashtag"):
                segments += [("text", " "), ("tag", str(session["hashtag"]))]
            add(at, rng.randrange(len(people)), segments)
    _extras(script, add, people, main_tags, rng)
    script.sort(key=lambda item: item.at)
    return BlueskyShare(profiles, script)


def _extras(
    script: list[ScriptItem], add: Any, people: list[Any], tags: list[str], rng: random.Random
) -> None:
    """Posts of every shape the wall must render, and the events that change them."""
    only_tags = add(
        4200, 3, [("text", "Tagged without a visible hashtag, via the tags field.")], tags=[tags[0]]
    )
    blob = {
        "$type": "blob",
        "ref": {"$link": fake_cid("photo")},
        "mimeType": "image/jpeg",
        "size": 48213,
    }
    add(
        7300,
        1,
        [("text", "The session board after the pitches 📸 "), ("tag", tags[1])],
        embed={
            "$type": "app.bsky.embed.images",
            "images": [{"image": blob, "alt": "A wall of sticky notes sorted into four rooms."}],
        },
    )
    card = add(
        32500,
        5,
        [
            ("text", "My write-up of the day: "),
            ("link", "https://marguerite.example/blog/bluelightcamp-2026"),
            ("text", " "),
            ("tag", tags[0]),
        ],
        embed={
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": "https://marguerite.example/blog/bluelightcamp-2026",
                "title": "BlueLightCamp 2026: what I learnt",
                "description": "Notes on maps, moderation and repair cafés.",
            },
        },
    )
    first = script[0]
    ref = {"uri": f"at://{first.did}/{POST}/{first.rkey}", "cid": fake_cid(first.record)}
    add(
        first.at + 240,
        6,
        [("text", "See you there! "), ("tag", tags[1])],
        reply={"root": ref, "parent": ref},
    )
    quoted = {"uri": f"at://{card.did}/{POST}/{card.rkey}", "cid": fake_cid(card.record)}
    add(
        33000,
        7,
        [("text", "Worth reading 👇 "), ("tag", tags[0])],
        embed={"$type": "app.bsky.embed.record", "record": quoted},
    )
    add(
        12000,
        8,
        [
            ("text", "Anyone going to "),
            ("tag", "bluelightcamping"),
            ("text", "? Wrong tag, this should not show."),
        ],
    )
    for item in rng.sample([i for i in script if i.record and i.op == "create"], 3):
        record = dict(item.record or {})
        record["text"] = record["text"].replace(".", "!", 1)
        script.append(ScriptItem(item.at + 300, "update", item.did, item.rkey, record))
    deletable = [i for i in script if i.op == "create" and i is not only_tags and i.at < 30000]
    for item in rng.sample(deletable, 2):
        script.append(ScriptItem(item.at + 600, "delete", item.did, item.rkey))
    script.append(ScriptItem(14000, "identity", people[2][0], handle="hal.mbeki.example"))


def _created(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class LoadGenerator:
    """Network-like traffic: many DIDs, a few percent deletes, identity and account events,
    non-ASCII text, near-miss tags, and `match_rate` of posts carrying an event hashtag
    (facets in mixed case, or only the `tags` array). Matched texts carry `gen:<µs>`, the
    time they were generated, for latency measurements."""

    def __init__(
        self,
        sim: JetstreamSimulator,
        *,
        tags: Sequence[str],
        match_rate: float,
        seed: int = 7,
        dids: int = 5000,
        delete_rate: float = 0.05,
        identity_rate: float = 0.002,
    ) -> None:
        self.sim, self.tags, self.match_rate = sim, list(tags), match_rate
        self.rng = random.Random(seed)
        self.dids = [did_for(f"load{i}") for i in range(dids)]
        self.delete_rate, self.identity_rate = delete_rate, identity_rate
        self.matched: list[str] = []
        self.published = 0
        self._recent: list[tuple[str, str]] = []  # unmatched (did, rkey), deletable
        self._clock_us = 0
        self._pool = [self._record() for _ in range(2_000)]

    def profiles(self) -> list[SimProfile]:
        return [
            SimProfile(did, f"user{i}.load.example", f"Load User {i}")
            for i, did in enumerate(self.dids)
        ]

    def publish(self, count: int) -> None:
        rng, sim = self.rng, self.sim
        for _ in range(count):
            self.published += 1
            roll = rng.random()
            if roll < self.delete_rate and self._recent:
                did, rkey = self._recent.pop(rng.randrange(len(self._recent)))
                sim.publish_commit(did, "delete", rkey)
            elif roll < self.delete_rate + self.identity_rate:
                index = rng.randrange(len(self.dids))
                sim.publish_identity(self.dids[index], f"user{index}.load.example")
            else:
                self._post(rng.choice(self.dids), rng.random() < self.match_rate)

    def _post(self, did: str, matched: bool) -> None:
        rng = self.rng
        now_us = int(self.sim.time_fn() * 1_000_000)
        self._clock_us = max(self._clock_us + 1, now_us)
        rkey = tid(self._clock_us, rng.randrange(1024))
        if not matched:
            # Most of the network: drawn from a pool, so generating stays cheap.
            record_json, cid = rng.choice(self._pool)
            self.sim.publish_record_json(did, rkey, record_json, cid)
            if len(self._recent) < 10_000:
                self._recent.append((did, rkey))
            return
        tag = rng.choice(self.tags)
        tag = tag.upper() if rng.random() < 0.2 else tag
        segments: list[Segment] = [("text", f"{self._words()} gen:{now_us} ")]
        tags: list[str] = []
        if rng.random() < 0.2:
            tags.append(tag)
        else:
            segments.append(("tag", tag))
        record = post_record(segments, _created(now_us), tags=tags)
        self.sim.publish_commit(did, "create", rkey, record, cid=fake_cid(rkey))
        self.matched.append(f"at://{did}/{POST}/{rkey}")

    def _words(self) -> str:
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(25, 60)))
        return f"{self.rng.choice(FOREIGN)} {words}" if self.rng.random() < 0.1 else words

    def _record(self) -> tuple[str, str]:
        segments: list[Segment] = [("text", self._words())]
        if self.rng.random() < 0.2:
            segments += [("text", " "), ("tag", self.rng.choice(NEAR_MISSES))]
        created = _created(int(self.sim.time_fn() * 1_000_000))
        record = post_record(segments, created)
        return json.dumps(record, ensure_ascii=False), fake_cid(record)

    async def run(self, rate: float, seconds: float) -> None:
        """Publish `rate` events a second for `seconds`, in 5 ms steps."""
        loop = asyncio.get_running_loop()
        start, done = loop.time(), 0
        while (elapsed := loop.time() - start) < seconds:
            due = int(rate * elapsed) - done
            if due > 0:
                self.publish(due)
                done += due
            await asyncio.sleep(0.005)
        self.publish(int(rate * seconds) - done)


@dataclass
class BlueskySims:
    """The running Bluesky simulators of the demo; `config()` gives the [bluesky] keys."""

    jetstream: JetstreamSimulator
    appview: AppViewSimulator
    jetstream_url: str
    appview_url: str
    task: asyncio.Task[None]

    def config(self) -> dict[str, str]:
        return {
            "mode": "jetstream",
            "jetstream_url": self.jetstream_url,
            "appview_url": self.appview_url,
        }

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.jetstream.stop()
        await self.appview.stop()


async def start_bluesky_sims(
    clock: SimClock,
    dataset: dict[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    noise_rate: float = 20.0,
) -> BlueskySims:
    """Serve the event's Bluesky share on `clock` (dataset `at` = seconds after clock.epoch).

    What the clock has already passed is in the Jetstream log at once, with its own
    times, so a source that starts with a time cursor at the event start replays it.
    """
    from aggregator.demo import load_dataset

    share = bluesky_share(dataset if dataset is not None else load_dataset())
    # ~20 MB of log; at 20 noise events/s that is a quarter of an hour of replay.
    jetstream = JetstreamSimulator(retention=20_000, time_fn=lambda: clock.now().timestamp())
    appview = AppViewSimulator(share.profiles)
    jetstream.observers.append(appview.observe)
    task = asyncio.create_task(_replay(share, jetstream, appview, clock, noise_rate))
    jetstream_url = await jetstream.start(host)
    appview_url = await appview.start(host)
    return BlueskySims(jetstream, appview, jetstream_url, appview_url, task)


async def _replay(
    share: BlueskyShare,
    sim: JetstreamSimulator,
    appview: AppViewSimulator,
    clock: SimClock,
    noise_rate: float,
) -> None:
    noise = LoadGenerator(sim, tags=[], match_rate=0.0, seed=11, dids=500, identity_rate=0.0)
    epoch_us = int(clock.epoch.timestamp() * 1_000_000)
    script, index = share.script, 0
    past = clock.offset()
    while index < len(script) and script[index].at <= past:
        _apply(script[index], sim, appview, epoch_us + int(script[index].at * 1e6))
        index += 1
    while True:
        now = clock.offset()
        while index < len(script) and script[index].at <= now:
            _apply(script[index], sim, appview, None)
            index += 1
        noise.publish(int(noise_rate * 0.1 + noise.rng.random()))
        await asyncio.sleep(0.1)


def _apply(
    item: ScriptItem, sim: JetstreamSimulator, appview: AppViewSimulator, time_us: int | None
) -> None:
    if item.op == "identity" and item.handle:
        appview.rename(item.did, item.handle)
        sim.publish_identity(item.did, item.handle, time_us=time_us)
    elif item.op == "delete":
        sim.publish_commit(item.did, "delete", item.rkey, time_us=time_us)
    else:
        sim.publish_commit(item.did, item.op, item.rkey, item.record, time_us=time_us)
