"""A local Mastodon server simulator that speaks the real REST wire.

    python -m aggregator.sim.mastodon --port 0 --speed 60 [--servers 1]

prints one base URL per line and serves until killed (see `aggregator.sim.serve`).
In Python::

    sim = MastodonSimulator.from_dataset(clock=SimClock.manual(epoch))
    urls = await sim.start()
    ...
    await sim.stop()

Each simulated server is its own `aiohttp.web.Application` on its own loopback port with
its own snowflake ids for the same global posts. Endpoints: `GET /api/v1/timelines/tag/{tag}`
(limit, min_id, since_id, max_id, any[], all[], none[], local, remote, only_media; `Link`
header with rel="next"/"prev" built like Mastodon's), `GET /api/v1/statuses/{id}`,
`GET /api/v1/instance`, `GET /api/v2/instance`. Every `/api` response carries
`X-RateLimit-Limit/Remaining/Reset`; an exhausted budget answers 429 with `Retry-After`.
Content follows the virtual clock; rate limits and the page cache follow the wall clock
(`wall_time`), since that is what a client's own timers see.

The streaming API (`/api/v1/streaming`, websocket, token required) and the token check
(`/api/v1/accounts/verify_credentials`) are served too; see `aggregator.sim.mastodon_stream`.

Known, deliberate differences from Mastodon: boosts are listed in tag timelines by default
(`include_boosts`; real Mastodon 4.x never lists them there, because tags belong to the
original), Retry-After is sent on 429 (Mastodon sends only the X-RateLimit headers), and
the streaming endpoint shares the REST rate limit (Mastodon's runs in a separate process).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

from aiohttp import web

from aggregator.sim.clock import SimClock
from aggregator.sim.instance import instance_v1, instance_v2
from aggregator.sim.mastodon_stream import StreamFaults, serve_stream
from aggregator.sim.ratelimit import RateLimiter
from aggregator.sim.timeline import Item, ServerTimeline, TimelineQuery, stable_hash

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FaultKind = Literal["fail", "drop", "slow", "garbage", "trickle"]
_FALSE = {"", "0", "f", "F", "false", "FALSE", "off", "OFF"}
LOG_SIZE = 10_000  # requests remembered per server for request_count()/requests()
_GARBAGE = b'[{"id":"1","created_at":"2026-11-21T09:00:00.000Z","content":"<p>trunc'


@dataclass(frozen=True)
class ServerSettings:
    """How one simulated server behaves."""

    host: str = "social.bluelight.example"
    sees: Callable[[Item], bool] | None = None  # which create items it has; None = all
    rate_limit: int = 300
    rate_period_s: float = 300.0
    require_token: bool = False
    tokens: frozenset[str] = frozenset({"sim-token"})
    page_cache_s: float = 0.0  # anonymous tag pages are served from cache this long
    default_limit: int = 20
    max_limit: int = 40
    include_boosts: bool = True
    remote_delay_s: float = 0.0  # remote posts arrive this much later (ids stay by created_at)
    version: str = "4.5.0"
    title: str = ""
    rate_headers: bool = True  # False: send no X-RateLimit-* (the 429s still come)
    streaming: bool = True  # False: advertise no streaming URL and answer 404 there
    stream_tokens: frozenset[str] | None = None  # tokens the stream accepts; None = tokens
    stream_heartbeat_s: float | None = 30.0  # Mastodon's streaming server pings every 30 s
    instance_v2: bool = True  # False: an older server without /api/v2/instance


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path_qs: str
    status: int
    authed: bool
    fault: FaultKind | None
    at: float = 0.0  # wall-clock time the rate limiter counted the request


@dataclass(frozen=True)
class _Fault:
    kind: FaultKind
    status: int = 500
    seconds: float = 0.0
    until: float = 0.0  # wall time a fault_for() window ends (0: a one-off fault)


@dataclass
class _Server:
    index: int
    settings: ServerSettings
    timeline: ServerTimeline
    limiter: RateLimiter
    faults: deque[_Fault] = field(default_factory=deque)
    log: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    cache: dict[str, tuple[float, bytes, str | None]] = field(default_factory=dict)
    stream: StreamFaults = field(default_factory=StreamFaults)
    window: _Fault | None = None  # every request until window.until gets this fault


SERVER_KEY = web.AppKey("sim_server", _Server)


def _to_i(value: str) -> int:
    """Ruby's String#to_i: leading integer, else 0."""
    digits = ""
    for i, ch in enumerate(value.strip()):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def federated_view(host: str, share: float = 0.5) -> Callable[[Item], bool]:
    """A `sees` filter: the server's own posts plus a stable `share` of everyone else's."""

    def sees(item: Item) -> bool:
        acct = str(item["status"]["account"]["acct"])
        if acct.endswith("@" + host):
            return True
        return stable_hash(host, str(item["status"]["uri"])) % 1000 < share * 1000

    return sees


class MastodonSimulator:
    """One or several simulated Mastodon servers replaying dataset items on a `SimClock`."""

    def __init__(
        self,
        items: Sequence[Item],
        clock: SimClock,
        epoch: datetime | None = None,
        servers: Sequence[ServerSettings] | None = None,
        *,
        accounts: Sequence[Item] = (),
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.epoch = (epoch or clock.epoch).astimezone(UTC)
        self.wall_time = wall_time
        self._servers = [
            _Server(
                i,
                s,
                ServerTimeline(
                    items,
                    host=s.host,
                    epoch=self.epoch,
                    sees=s.sees,
                    include_boosts=s.include_boosts,
                    remote_delay_s=s.remote_delay_s,
                    accounts=accounts,
                ),
                RateLimiter(s.rate_limit, s.rate_period_s, wall_time),
            )
            for i, s in enumerate(servers or [ServerSettings()])
        ]
        self._any_faults: deque[_Fault] = deque()
        self.apps = [self._make_app(srv) for srv in self._servers]
        self.base_urls: list[str] = []
        self._runners: list[web.AppRunner] = []

    @classmethod
    def from_dataset(
        cls,
        dataset: Mapping[str, Any] | None = None,
        *,
        clock: SimClock | None = None,
        servers: Sequence[ServerSettings] | None = None,
        wall_time: Callable[[], float] = time.time,
    ) -> MastodonSimulator:
        """Simulate the bundled dataset (or `dataset`); the clock defaults to event start."""
        from aggregator.demo import event_epoch, load_dataset

        data = dataset if dataset is not None else load_dataset()
        epoch = event_epoch(dict(data))
        return cls(
            data["items"],
            clock or SimClock.manual(epoch),
            epoch,
            servers,
            accounts=data.get("accounts", ()),
            wall_time=wall_time,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", ports: Sequence[int] = ()) -> list[str]:
        """Serve every server on `host` (ephemeral ports unless given); returns base URLs."""
        for i, app in enumerate(self.apps):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, host, ports[i] if i < len(ports) else 0)
            await site.start()
            self._runners.append(runner)
            addr = runner.addresses[0]
            self.base_urls.append(f"http://{host}:{addr[1]}")
        return list(self.base_urls)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        self.base_urls.clear()

    # ------------------------------------------------------------------ test hooks
    def _queue(self, server: int | None) -> deque[_Fault]:
        return self._any_faults if server is None else self._servers[server].faults

    def fail_next(self, n: int = 1, status: int = 500, *, server: int | None = None) -> None:
        """The next `n` requests (to `server`, or to any) answer `status`."""
        self._queue(server).extend(_Fault("fail", status=status) for _ in range(n))

    def drop_next(self, n: int = 1, *, server: int | None = None) -> None:
        """The next `n` requests get half a body, then the connection closes."""
        self._queue(server).extend(_Fault("drop") for _ in range(n))

    def slow_next(self, n: int = 1, seconds: float = 1.0, *, server: int | None = None) -> None:
        """The next `n` requests are answered normally after `seconds` (real time)."""
        self._queue(server).extend(_Fault("slow", seconds=seconds) for _ in range(n))

    def garbage_next(self, n: int = 1, *, server: int | None = None) -> None:
        """The next `n` requests get 200 with a malformed JSON body."""
        self._queue(server).extend(_Fault("garbage") for _ in range(n))

    def fault_for(
        self,
        seconds: float,
        kind: FaultKind = "fail",
        status: int = 500,
        *,
        server: int = 0,
        delay: float = 1.0,
    ) -> None:
        """Every request to `server` for the next `seconds` (wall time) gets the fault:
        `fail` answers `status` (a 429 carries X-RateLimit-Reset at the window's end, as
        Mastodon's does), `drop` cuts the body half way, `garbage` sends malformed JSON,
        `slow` answers after `delay`, `trickle` (slow loris) sends the headers at once and
        then a few bytes every `delay` seconds until the window ends, then hangs up."""
        until = self.wall_time() + seconds
        self._servers[server].window = _Fault(kind, status, delay, until)

    async def drop_streams(self, server: int = 0, *, mid_frame: bool = False) -> None:
        """Cut every open streaming connection of a server without a close frame,
        between frames or (`mid_frame`) after half of one."""
        await self._servers[server].stream.drop_all(mid_frame)

    def stall_streams(self, seconds: float, *, server: int = 0) -> None:
        """For `seconds` (real time) the server's streams read and send nothing."""
        self._servers[server].stream.stall(seconds)

    async def stream_send(self, text: str, *, server: int = 0) -> None:
        """Send `text` as a frame on every open stream of a server (malformed input)."""
        await self._servers[server].stream.send_raw(text)

    def streams_unavailable(self, n: int, *, server: int = 0) -> None:
        """The next `n` attempts to open a stream answer 503 (the streaming server is down)."""
        self._servers[server].stream.unavailable = n

    def stream_lose_next(self, n: int = 1, *, server: int = 0) -> None:
        """The next `n` stream events are silently never sent."""
        self._servers[server].stream.lose += n

    def stream_connections(self, server: int = 0) -> int:
        """Streaming connections the server has accepted, ever."""
        return self._servers[server].stream.connections

    def stream_garbage_next(self, n: int = 1, *, server: int = 0) -> None:
        """The next `n` stream events are preceded by a malformed frame."""
        self._servers[server].stream.garbage += n

    def open_streams(self, server: int = 0) -> int:
        return len(self._servers[server].stream.sockets)

    def clear_faults(self) -> None:
        self._any_faults.clear()
        for srv in self._servers:
            srv.faults.clear()

    def request_count(self, server: int = 0, path_prefix: str = "") -> int:
        """Requests `server` received (of the last LOG_SIZE) whose path starts so."""
        return sum(1 for r in self._servers[server].log if r.path_qs.startswith(path_prefix))

    def requests(self, server: int = 0) -> list[RequestRecord]:
        """The last LOG_SIZE requests `server` received, oldest first."""
        return list(self._servers[server].log)

    def reset_counts(self) -> None:
        for srv in self._servers:
            srv.log.clear()

    def timeline(self, server: int = 0) -> ServerTimeline:
        return self._servers[server].timeline

    def local_id(self, uri: str, server: int = 0) -> str | None:
        st = self._servers[server].timeline.by_uri.get(uri)
        return str(st.uid) if st else None

    def expected_visible_uris(self, server: int | None = None) -> set[str]:
        """Post ids (boosts unwrapped) a complete client would hold at the current clock."""
        now = self.clock.offset()
        chosen = self._servers if server is None else [self._servers[server]]
        return {
            st.boost_of.uri if st.boost_of else st.uri
            for srv in chosen
            for st in srv.timeline.visible(now)
        }

    # ------------------------------------------------------------------ the app
    def _make_app(self, srv: _Server) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app[SERVER_KEY] = srv
        app.router.add_get("/api/v1/timelines/tag/{tag}", self._tag_timeline)
        app.router.add_get("/api/v1/statuses/{id}", self._status)
        # Rails ignores a trailing slash, and Mastodon.py sends one for the instance.
        for slash in ("", "/"):
            app.router.add_get(f"/api/v1/instance{slash}", self._instance_v1)
            app.router.add_get(f"/api/v2/instance{slash}", self._instance_v2)
        app.router.add_get("/api/v1/streaming", self._streaming)
        app.router.add_get("/api/v1/accounts/verify_credentials", self._verify_credentials)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _token(self, request: web.Request) -> tuple[str | None, bool]:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = token or request.query.get("access_token") or None
        srv = request.app[SERVER_KEY]
        return token, token is not None and token in srv.settings.tokens

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        srv = request.app[SERVER_KEY]
        queue = srv.faults if srv.faults else self._any_faults
        fault = queue.popleft() if queue else None
        window = srv.window
        if fault is None and window is not None:
            if self.wall_time() < window.until:
                fault = window
            else:
                srv.window = None
        token, valid = self._token(request)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
        # Timed when counted (a stream is logged when it ends, but counted when it began).
        counted = self.wall_time()

        def record(status: int) -> None:
            kind = fault.kind if fault else None
            srv.log.append(
                RequestRecord(request.method, request.path_qs, status, valid, kind, counted)
            )

        # Like rack-attack, the limiter sees every API request before the app does, the
        # ones that then fail included.
        limit_headers: dict[str, str] = {}
        if request.path.startswith("/api/"):
            key = f"token:{token}" if valid else f"ip:{request.remote}"
            allowed, limit_headers = srv.limiter.hit(key)
            if not allowed:
                if fault is not None and fault.kind != "slow":
                    queue.appendleft(fault)  # still due to the next request
                fault = None
                record(429)
                return _json({"error": "Too many requests"}, 429, limit_headers)
        if fault is not None and fault.kind != "slow":
            record(fault.status if fault.kind == "fail" else 200)
            return await self._fault_response(request, fault)
        response = await handler(request)
        if srv.settings.rate_headers:
            response.headers.update(limit_headers)
        record(response.status)
        return response

    async def _fault_response(self, request: web.Request, fault: _Fault) -> web.StreamResponse:
        if fault.kind == "garbage":
            return web.Response(body=_GARBAGE, content_type="application/json")
        if fault.kind == "fail":
            if fault.status == 429 and fault.until:
                reset = datetime.fromtimestamp(fault.until, UTC).isoformat(timespec="milliseconds")
                headers = {
                    "X-RateLimit-Limit": "300",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.replace("+00:00", "Z"),
                }
                return _json({"error": "Too many requests"}, 429, headers)
            if fault.status >= 500:
                return web.Response(
                    status=fault.status,
                    text=f"<html><body><h1>{fault.status}</h1>simulated failure</body></html>",
                    content_type="text/html",
                )
            return _json({"error": "simulated failure"}, fault.status)
        body = json.dumps([{"id": str(i), "content": "x" * 200} for i in range(20)]).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        if fault.kind == "trickle":
            sent = 0
            while self.wall_time() < fault.until and sent < len(body) - 1:
                await response.write(body[sent : sent + 8])
                sent += 8
                await asyncio.sleep(fault.seconds)
        await response.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError  # let aiohttp tear the half-written response down

    def _auth_error(self, request: web.Request) -> web.Response | None:
        srv = request.app[SERVER_KEY]
        token, valid = self._token(request)
        if token is not None and not valid:
            return _json({"error": "The access token is invalid"}, 401)
        if srv.settings.require_token and not valid:
            return _json({"error": "This API requires an authenticated user"}, 401)
        return None

    async def _tag_timeline(self, request: web.Request) -> web.Response:
        srv = request.app[SERVER_KEY]
        if (error := self._auth_error(request)) is not None:
            return error
        _, authed = self._token(request)
        cache_s = srv.settings.page_cache_s
        wall = self.wall_time()
        if cache_s > 0 and not authed:
            hit = srv.cache.get(request.path_qs)
            if hit is not None and hit[0] > wall:
                return self._page(hit[1], hit[2])
        q = request.query

        def ident(name: str) -> int | None:
            value = q.get(name, "")
            return _to_i(value) if value.strip() else None

        limit = srv.settings.default_limit
        if "limit" in q:
            limit = min(abs(_to_i(q["limit"])), srv.settings.max_limit)
        tag = request.match_info["tag"]
        query = TimelineQuery(
            tag=tag,
            limit=limit,
            max_id=ident("max_id"),
            since_id=ident("since_id"),
            min_id=ident("min_id"),
            any_=tuple(q.getall("any[]", ())) + tuple(q.getall("any", ())),
            all_=tuple(q.getall("all[]", ())) + tuple(q.getall("all", ())),
            none_=tuple(q.getall("none[]", ())) + tuple(q.getall("none", ())),
            local=q.get("local", "") not in _FALSE,
            remote=q.get("remote", "") not in _FALSE,
            only_media=q.get("only_media", "") not in _FALSE,
        )
        now = self.clock.offset()
        statuses = srv.timeline.query(query, now)
        body = json.dumps(
            [srv.timeline.render(st, now, authed=authed) for st in statuses],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        link = None
        if statuses:  # Mastodon sends no Link header for an empty page
            base = f"{request.scheme}://{request.host}/api/v1/timelines/tag/{quote(tag, safe='')}"
            kept = {k: q[k] for k in ("limit", "local", "only_media") if k in q}

            def url(extra: dict[str, str]) -> str:
                return base + "?" + urlencode(sorted({**kept, **extra}.items()))

            link = (
                f'<{url({"max_id": str(statuses[-1].uid)})}>; rel="next", '
                f'<{url({"min_id": str(statuses[0].uid)})}>; rel="prev"'
            )
        if cache_s > 0 and not authed:
            if len(srv.cache) > 1000:
                srv.cache = {k: v for k, v in srv.cache.items() if v[0] > wall}
            srv.cache[request.path_qs] = (wall + cache_s, body, link)
        return self._page(body, link)

    @staticmethod
    def _page(body: bytes, link: str | None) -> web.Response:
        headers = {"Link": link} if link else None
        return web.Response(
            body=body, content_type="application/json", charset="utf-8", headers=headers
        )

    async def _status(self, request: web.Request) -> web.Response:
        srv = request.app[SERVER_KEY]
        if (error := self._auth_error(request)) is not None:
            return error
        raw = request.match_info["id"]
        now = self.clock.offset()
        st = srv.timeline.get(int(raw), now) if raw.isdigit() else None
        if st is None:
            return _json({"error": "Record not found"}, 404)
        _, authed = self._token(request)
        return _json(srv.timeline.render(st, now, authed=authed))

    async def _instance_v1(self, request: web.Request) -> web.Response:
        srv = request.app[SERVER_KEY]
        return _json(instance_v1(srv.settings, request.host, len(srv.timeline.by_uid)))

    async def _instance_v2(self, request: web.Request) -> web.Response:
        srv = request.app[SERVER_KEY]
        if not srv.settings.instance_v2:
            return _json({"error": "Record not found"}, 404)
        return _json(instance_v2(srv.settings, request.host))

    async def _verify_credentials(self, request: web.Request) -> web.Response:
        _, valid = self._token(request)
        if not valid:
            return _json({"error": "The access token is invalid"}, 401)
        srv = request.app[SERVER_KEY]
        return _json(
            {
                "id": "1",
                "username": "wall",
                "acct": "wall",
                "url": f"https://{srv.settings.host}/@wall",
                "bot": True,
            }
        )

    async def _streaming(self, request: web.Request) -> web.StreamResponse:
        srv = request.app[SERVER_KEY]
        if not srv.settings.streaming:
            return await self._not_found(request)
        token, _ = self._token(request)
        accepted = srv.settings.stream_tokens
        valid = token is not None and token in (
            srv.settings.tokens if accepted is None else accepted
        )
        return await serve_stream(
            request,
            srv.timeline,
            self.clock.offset,
            valid,
            srv.stream,
            srv.settings.stream_heartbeat_s,
        )

    async def _not_found(self, request: web.Request) -> web.Response:
        return _json({"error": "Record not found"}, 404)


if __name__ == "__main__":
    from aggregator.sim.serve import main

    raise SystemExit(main())
