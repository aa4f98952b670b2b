"""Shared by the end-to-end tests: real processes, a resuming websocket client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from factories import POST_JSON_KEYS

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "e2e-admin-token"


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BACKCHANNEL_WEB_ADMIN_TOKEN": ADMIN}
    env.pop("BACKCHANNEL_WEB_PORT", None)
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(log, "ab"),
    )


async def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never came up")


async def all_posts(base: str) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = []
    before = None
    async with aiohttp.ClientSession() as session:
        while True:
            params = {"limit": "200", **({"before": before} if before else {})}
            async with session.get(f"{base}/api/posts", params=params) as resp:
                body = await resp.json()
            posts += body["posts"]
            before = body["next"]
            if before is None:
                return posts


class Watcher:
    """A websocket client that keeps its own view and resumes with its last cursor."""

    def __init__(self) -> None:
        self.view: dict[str, dict[str, Any]] = {}
        self.cursor = "0"
        self.cursors: list[int] = []
        self.messages = 0
        self.order: list[tuple[int, str, str]] = []  # (cursor, type, post id) as received
        self.connected_to: list[str] = []
        self.close_codes: list[int | None] = []

    async def follow(self, urls: str | list[str], stop: asyncio.Event) -> None:
        """Follow the stream; when a node goes away, resume on the next one in `urls`."""
        choices = [urls] if isinstance(urls, str) else list(urls)
        index = 0
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                url = choices[index % len(choices)]
                try:
                    async with session.ws_connect(url) as ws:
                        self.connected_to.append(url)
                        await ws.send_json({"type": "hello", "after": self.cursor})
                        while not stop.is_set():
                            try:
                                msg = await ws.receive(timeout=0.5)
                            except TimeoutError:
                                continue
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                break
                            self.apply(json.loads(msg.data))
                        self.close_codes.append(ws.close_code)
                except (aiohttp.ClientError, ConnectionError):
                    pass
                if not stop.is_set():
                    index += 1 if len(choices) > 1 else 0
                await asyncio.sleep(0.1)

    def apply(self, msg: dict[str, Any]) -> None:
        self.messages += 1
        kind = msg["type"]
        assert kind != "resync", "a resumable client must not need a resync"
        cursor = int(msg.get("cursor", 0))
        if kind == "posts":
            for post in msg["posts"]:
                assert set(post) == POST_JSON_KEYS
                self.view[post["id"]] = post
                self.order.append((cursor, kind, post["id"]))
        elif kind == "update":
            self.view[msg["post"]["id"]] = msg["post"]
            self.order.append((cursor, kind, msg["post"]["id"]))
        elif kind == "retract":
            for post_id in msg["ids"]:
                self.view.pop(post_id, None)
                self.order.append((cursor, kind, post_id))
        if "cursor" in msg:
            self.cursors.append(int(msg["cursor"]))
            self.cursor = msg["cursor"]
