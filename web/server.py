"""Run the app on a TCP port until told to stop, shutting down in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from aggregator.config import Config
from aggregator.runtime import Runtime
from web.app import create_app

log = logging.getLogger(__name__)


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound = int(address[1])
            break
    return runner, bound


async def serve_until(
    config: Config,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    ingest: bool = True,
    runtime: Runtime | None = None,
    on_started: Callable[[int], None] | None = None,
) -> None:
    app = create_app(config, runtime=runtime, ingest=ingest)
    runner, bound = await start_site(app, host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(
        f"backchannel: serving http://{shown}:{bound}/ (wall: http://{shown}:{bound}/wall)",
        flush=True,
    )
    if on_started is not None:
        on_started(bound)
    try:
        await stop.wait()
    finally:
        log.info("shutting down: closing clients, flushing the store")
        await runner.cleanup()
