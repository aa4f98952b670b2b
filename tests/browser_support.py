"""Shared by the browser tests: Debian's Chromium, and the real app on a loopback port."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI
from playwright.async_api import Browser

from aggregator.config import load_config
from aggregator.model import Post
from aggregator.pipeline import Delete, RawItem
from web.app import create_app
from web.keys import RUNTIME
from web.server import start_site

CHROMIUM = Path(os.environ.get("BACKCHANNEL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LIVE_TIMEOUT_MS = 2000  # a published post must be on screen within this


def require_chromium() -> str:
    """Debian's Chromium, never a downloaded one; missing it fails in CI, skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return str(CHROMIUM)


async def launch_chromium(playwright: Any) -> Browser:
    executable = require_chromium()
    return await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


class LiveServer:
    """The real app on 127.0.0.1; `restart()` comes back on the same port and database."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.config = load_config(env=env or {}).with_overrides(
            event={"name": "Test Camp", "hashtags": ["testcamp"]},
            storage={"url": f"sqlite:///{tmp_path}/t.db"},
            bluesky={"mode": "off"},
            mastodon={"servers": []},
        )
        self.port = 0
        self.app: Any = None
        self.runner: Any = None

    async def start(self) -> None:
        self.app = create_app(self.config)
        self.runner, self.port = await start_site(self.app, "127.0.0.1", self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def publish(self, *posts: Post) -> None:
        """Put posts into the inbox the sources use; return once the last one is stored."""
        for post in posts:
            await self.app[RUNTIME].inbox.put(RawItem("test", "post", post))
        await self._until_stored(posts[-1].id, posts[-1])

    async def delete(self, post_id: str) -> None:
        await self.app[RUNTIME].inbox.put(Delete("test", post_id=post_id))
        await self._until_stored(post_id, None)

    async def _until_stored(self, post_id: str, expected: Post | None) -> None:
        store = self.app[RUNTIME].store
        for _ in range(250):
            if await store.get(post_id) == expected:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the store never took {post_id}")
