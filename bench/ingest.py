"""Ingest benchmark: Jetstream-shaped frames through decode, match, normalise and store.

    python bench/ingest.py [--events 100000] [--runs 5] [--match-rate 0.03]

Three measurements, each the median of `--runs` runs with a fixed seed:
1. decode + hashtag match of every frame (json.loads + HashtagMatcher), events/s;
   also with the raw-bytes prefilter that the Jetstream source uses in front of it;
2. matched posts through the real Pipeline (normalise -> dedupe -> SQLite store), posts/s;
3. the whole stream at full speed, frame read -> decode -> match -> inbox -> store, with
   the latency of each matched post from its frame being read to its change being
   published after the commit (p50/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.bus import MemoryBus
from aggregator.match import HashtagMatcher
from aggregator.pipeline import Pipeline, RawItem, Stop, new_inbox
from aggregator.store.sqlite import SQLiteStore

WORDS = (
    "the a session talk room coffee slides great idea open source community data privacy "
    "accessibility keynote question panel speaker notes map emergency volunteer radio "
    "network protocol bluesky fediverse camp lunch hallway track demo workshop"
).split()
TAGS = ["bluelightcamp", "blc26"]


def make_frames(count: int, match_rate: float, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    frames = []
    for seq in range(count):
        matched = rng.random() < match_rate
        words = [rng.choice(WORDS) for _ in range(rng.randint(35, 70))]
        facets = []
        text = " ".join(words)
        if matched:
            tag = rng.choice(TAGS)
            start = len(text.encode()) + 1
            text = f"{text} #{tag}"
            facets.append(
                {
                    "index": {"byteStart": start, "byteEnd": start + len(tag) + 1},
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
                }
            )
        elif rng.random() < 0.2:
            # Near misses keep the matcher honest: tags that contain ours as substrings.
            tag = rng.choice(["bluelightcamping", "camp", "blc2", "photography"])
            start = len(text.encode()) + 1
            text = f"{text} #{tag}"
            facets.append(
                {
                    "index": {"byteStart": start, "byteEnd": start + len(tag) + 1},
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
                }
            )
        did = f"did:plc:{rng.getrandbits(100):025x}"[:32]
        record = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": f"2026-11-21T{9 + seq % 8:02d}:{seq % 60:02d}:{(seq * 7) % 60:02d}.000Z",
            "langs": ["en"],
            "facets": facets,
        }
        if rng.random() < 0.3:
            record["reply"] = {
                "root": {"uri": f"at://{did}/app.bsky.feed.post/3kroot{seq}", "cid": "bafyroot"},
                "parent": {"uri": f"at://{did}/app.bsky.feed.post/3kpar{seq}", "cid": "bafypar"},
            }
        frame = {
            "$type": "message",
            "payload": {
                "$type": "network.bsky.jetstream.event#commit",
                "seq": 1_000_000 + seq,
                "did": did,
                "time": "2026-11-21T10:00:00.000Z",
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": f"3k{seq:011d}",
                "cid": f"bafyreib{seq:040d}",
                "record": record,
            },
        }
        frames.append(json.dumps(frame).encode())
    return frames


def decode_match(
    frames: list[bytes], matcher: HashtagMatcher, prefilter: bool
) -> tuple[float, int]:
    started = time.perf_counter()
    hits = 0
    loads = json.loads
    for raw in frames:
        if prefilter and not matcher.might_match_raw(raw):
            continue
        payload = loads(raw)["payload"]
        if matcher.matches_bluesky_record(payload.get("record")):
            hits += 1
    return time.perf_counter() - started, hits


def _item(payload: dict) -> RawItem:
    return RawItem(
        "bluesky:bench",
        "bluesky.record",
        payload["record"],
        {"did": payload["did"], "rkey": payload["rkey"], "cid": payload["cid"]},
    )


async def normalise_store(payloads: list[dict], db: Path) -> float:
    store = SQLiteStore(db)
    await store.open()
    inbox = new_inbox()
    pipeline = Pipeline(inbox, store, MemoryBus())
    task = asyncio.create_task(pipeline.run())
    started = time.perf_counter()
    for payload in payloads:
        await inbox.put(_item(payload))
    await inbox.put(Stop())
    await task
    elapsed = time.perf_counter() - started
    assert await store.count() == len(payloads), "every matched post must be stored"
    await store.close()
    return elapsed


async def end_to_end(
    frames: list[bytes], matcher: HashtagMatcher, db: Path
) -> tuple[float, list[float]]:
    store = SQLiteStore(db)
    await store.open()
    bus = MemoryBus()
    sub = bus.subscribe()
    sub.queue = asyncio.Queue()  # unbounded here: the benchmark must see every change
    inbox = new_inbox()
    pipeline = Pipeline(inbox, store, bus)
    task = asyncio.create_task(pipeline.run())
    read_at: dict[str, float] = {}
    latencies: list[float] = []

    async def collect() -> None:
        while True:
            event = await sub.queue.get()
            now = time.perf_counter()
            for change in event.changes:
                latencies.append(now - read_at[change.id])

    collector = asyncio.create_task(collect())
    started = time.perf_counter()
    for n, raw in enumerate(frames):
        t = time.perf_counter()
        if matcher.might_match_raw(raw):
            payload = json.loads(raw)["payload"]
            if matcher.matches_bluesky_record(payload.get("record")):
                read_at[f"at://{payload['did']}/app.bsky.feed.post/{payload['rkey']}"] = t
                await inbox.put(_item(payload))
        if n % 2000 == 0:
            await asyncio.sleep(0)  # a socket read would yield here
    await inbox.put(Stop())
    await task
    await asyncio.sleep(0.05)
    collector.cancel()
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--match-rate", type=float, default=0.03)
    parser.add_argument("--store-posts", type=int, default=20_000)
    args = parser.parse_args()

    frames = make_frames(args.events, args.match_rate)
    size = statistics.mean(len(f) for f in frames)
    matcher = HashtagMatcher(TAGS)
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores; {len(frames)} frames, mean {size:.0f} bytes"
    )

    full, pre = [], []
    for _ in range(args.runs):
        elapsed, hits = decode_match(frames, matcher, prefilter=False)
        full.append(len(frames) / elapsed)
        elapsed2, hits2 = decode_match(frames, matcher, prefilter=True)
        pre.append(len(frames) / elapsed2)
        assert hits == hits2, "the prefilter must never hide a match"
    print(
        f"decode+match, every frame decoded: {statistics.median(full):,.0f} events/s "
        f"({hits} matches)"
    )
    print(f"decode+match, with raw prefilter:  {statistics.median(pre):,.0f} events/s")

    store_frames = make_frames(args.store_posts, 1.0, seed=11)
    payloads = [json.loads(f)["payload"] for f in store_frames]
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            elapsed = asyncio.run(normalise_store(payloads, Path(tmp) / f"s{run}.db"))
            rates.append(len(payloads) / elapsed)
    print(
        f"normalise+store (SQLite, WAL): {statistics.median(rates):,.0f} posts/s "
        f"({len(payloads)} posts)"
    )

    e2e_rates, p50s, p99s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            elapsed, lat = asyncio.run(end_to_end(frames, matcher, Path(tmp) / f"e{run}.db"))
            e2e_rates.append(len(frames) / elapsed)
            p50s.append(pct(lat, 0.5))
            p99s.append(pct(lat, 0.99))
    print(
        f"end to end: {statistics.median(e2e_rates):,.0f} events/s; matched post read->stored "
        f"p50 {statistics.median(p50s) * 1000:.1f} ms, p99 {statistics.median(p99s) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
