"""`backchannel` command line. Bad arguments or config: one line naming the key, exit 2."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from aggregator.config import Config, ConfigError, load_config
from aggregator.logs import configure_logging

log = logging.getLogger("backchannel")


class CliError(Exception):
    """A usage problem reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"backchannel: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backchannel",
        description="Follow an event's hashtag across Mastodon and Bluesky; live wall; digest.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="json: one object a line"
    )
    # The same options after the command (`backchannel serve --log-format json`); their
    # defaults are suppressed there so they never overwrite the ones given before it.
    common = _Parser(add_help=False)
    common.add_argument(
        "--log-level", default=argparse.SUPPRESS, choices=["debug", "info", "warning", "error"]
    )
    common.add_argument("--log-format", default=argparse.SUPPRESS, choices=["text", "json"])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run", parents=[common], help="ingest and serve the web app in one process"
    )
    run.add_argument("--config", required=True, help="event TOML file")

    demo = sub.add_parser(
        "demo", parents=[common], help="offline demo: local simulators, synthetic event, wall"
    )
    demo.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    demo.add_argument("--host", default="127.0.0.1", help="web address (default 127.0.0.1)")
    demo.add_argument(
        "--speed", type=float, default=60.0, help="replay speed, virtual s per real s"
    )
    demo.add_argument("--db", default="", help="SQLite file (default: a fresh temporary one)")

    digest = sub.add_parser("digest", parents=[common], help="write the post-event digest")
    digest.add_argument("--config", required=True)
    digest.add_argument("--format", choices=["md", "html", "json"], default="md")
    digest.add_argument("--out", default="-", help="output file (default stdout)")
    digest.add_argument(
        "--no-fetch",
        action="store_true",
        help="do not fetch linked pages; use what earlier runs learnt and the platforms' previews",
    )

    serve = sub.add_parser("serve", parents=[common], help="web half only (multi-node deployments)")
    serve.add_argument("--config", required=True)
    ingest = sub.add_parser(
        "ingest", parents=[common], help="ingest half only (multi-node deployments)"
    )
    ingest.add_argument("--config", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        if args.command == "run":
            config = load_config(args.config)
            return _serve(config, ingest=True)
        if args.command == "demo":
            from aggregator.demo.runner import run_demo

            if not 0 <= args.port <= 65535:
                raise CliError(f"--port: expected 0-65535, got {args.port}")
            if args.speed <= 0:
                raise CliError("--speed: must be positive")
            return _run_async(
                lambda stop: run_demo(args.host, args.port, args.speed, args.db, stop)
            )
        if args.command == "serve":
            config = load_config(args.config)
            if config.get("bus", "url") == "memory://":
                raise CliError(
                    "bus.url: `serve` needs a bus shared with an `ingest` node (redis://…); "
                    "use `backchannel run` for a single process"
                )
            return _serve(config, ingest=False)
        if args.command == "ingest":
            config = load_config(args.config)
            if config.get("bus", "url") == "memory://":
                log.warning(
                    "bus.url is memory://: no serve node will hear this ingest node; "
                    "set bus.url = redis://… (or use `backchannel run`)"
                )
            return _ingest(config)
        if args.command == "digest":
            from aggregator.digest.command import digest_command

            config = load_config(args.config)
            asyncio.run(digest_command(config, args.format, args.out, fetch=not args.no_fetch))
            return 0
    except (ConfigError, CliError) as exc:
        print(f"backchannel: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_async(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run `body` until it returns or SIGINT/SIGTERM sets its stop event."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(stop)

    asyncio.run(wrapper())
    return 0


def _serve(config: Config, *, ingest: bool) -> int:
    from web.server import serve_until

    host, port = config.get("web", "host"), config.get("web", "port")
    return _run_async(lambda stop: serve_until(config, host, port, stop, ingest=ingest))


def _ingest(config: Config) -> int:
    from aggregator.runtime import Runtime

    async def body(stop: asyncio.Event) -> None:
        runtime = Runtime.from_config(config)
        await runtime.start()
        log.info("ingesting; press Ctrl-C to stop")
        try:
            await stop.wait()
        finally:
            await runtime.stop()

    return _run_async(body)


if __name__ == "__main__":
    sys.exit(main())
