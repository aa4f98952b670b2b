"""A local Jetstream v2 server: `network.bsky.jetstream.subscribeEvents` over a websocket.

    python -m aggregator.sim.jetstream --rate 20000 --seconds 20 --match-rate 0.005

The wire follows atproto's Jetstream v2 lexicon: subprotocol `xrpc.v1.json`; frames
`{"$type":"message","payload":{"$type":"network.bsky.jetstream.subscribeEvents#commit",
"seq","did","time","witnessed_at","operation","collection","rkey","rev","cid","record"}}`
(and `#identity`, `#account`, `#info`); error frames `{"$type":"error","error","message"}`
followed by a close. Query: `collections` (exact or `prefix.*`), `kinds`, `dids`,
`max_message_size_bytes`, `cursor` — a seq, inclusive; a value >= 1e15 is a time in unix
microseconds (clamped up to the oldest retained event with an `#info OutdatedCursor`);
a seq older than the retained log is refused before the upgrade with HTTP 400
`CursorTooOld`; a seq beyond the head starts live after `#info FutureCursor`.

A live subscriber that falls `max_lag` events behind the head (or a replaying one that
the retained log leaves behind) gets `ConsumerTooSlow` and is closed, as the real server
does. Faults for tests:
`fail_next()` (HTTP errors before the upgrade), `drop_connections()`, `send_error()`,
`publish_raw()` (malformed frames, delivered in order). `GET /_sim/stats` reports counts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import signal
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

NSID = "network.bsky.jetstream.subscribeEvents"
PATH = f"/xrpc/{NSID}"
SUBPROTOCOL = "xrpc.v1.json"
POST = "app.bsky.feed.post"
KINDS = frozenset({"commit", "identity", "account", "sync"})
TIME_CURSOR = 10**15
BATCH = 256
_S32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid(time_us: int, clock_id: int = 0) -> str:
    """A record key / rev in the TID format (13 base32-sortable characters)."""
    value = (time_us << 10) | (clock_id & 0x3FF)
    return "".join(_S32[(value >> shift) & 31] for shift in range(60, -1, -5))


def fake_cid(data: object) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def iso_us(time_us: int) -> str:
    moment = datetime.fromtimestamp(time_us // 1_000_000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{time_us % 1_000_000:06d}Z"


@dataclass(slots=True)
class Event:
    seq: int  # a raw (malformed) frame carries the seq of the event before it
    time_us: int
    kind: str  # commit | identity | account | raw
    collection: str
    did: str
    frame: str
    size: int


class EventLog:
    """Append-only, retention-bounded; positions are absolute and survive trimming."""

    def __init__(self, retention: int, first_seq: int) -> None:
        self.retention = retention
        self.next_seq = first_seq
        self.base = 0
        self.events: list[Event] = []
        self.last_time_us = 0

    @property
    def head(self) -> int:
        return self.base + len(self.events)

    def append(self, event: Event) -> None:
        self.events.append(event)
        if len(self.events) > self.retention + self.retention // 4 + 16:
            drop = len(self.events) - self.retention
            del self.events[:drop]
            self.base += drop

    def floor_seq(self) -> int:
        for event in self.events:
            if event.kind != "raw":
                return event.seq
        return self.next_seq

    def position_for_seq(self, seq: int) -> int:
        return self.base + bisect_left(self.events, seq, key=lambda e: e.seq)

    def position_for_time(self, time_us: int) -> int:
        return self.base + bisect_left(self.events, time_us, key=lambda e: e.time_us)

    def slice(self, start: int, end: int) -> list[Event]:
        return self.events[start - self.base : end - self.base]


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    pos: int
    kinds: frozenset[str]
    collections: tuple[str, ...]
    dids: frozenset[str]
    max_bytes: int
    first: list[str] = field(default_factory=list)
    error: tuple[str, str] | None = None
    live: bool = False  # has caught up with the head at least once

    def wants(self, event: Event) -> bool:
        if event.kind == "raw":
            return True
        # Kinds this server does not know how to filter (newer ones) always go out.
        if self.kinds and event.kind in KINDS and event.kind not in self.kinds:
            return False
        if event.kind == "commit" and self.collections and not _collection_ok(self, event):
            return False
        if self.dids and event.did not in self.dids:
            return False
        return not (self.max_bytes and event.size > self.max_bytes)


def _collection_ok(conn: _Conn, event: Event) -> bool:
    for wanted in conn.collections:
        if wanted.endswith(".*"):
            if event.collection.startswith(wanted[:-1]):
                return True
        elif event.collection == wanted:
            return True
    return False


class JetstreamSimulator:
    def __init__(
        self,
        *,
        retention: int = 100_000,
        max_lag: int = 100_000,
        first_seq: int = 1_000_000,
        time_fn: Callable[[], float] = time.time,
    ) -> None:
        self.log = EventLog(retention, first_seq)
        self.max_lag = max_lag
        self.time_fn = time_fn
        self.connections: set[_Conn] = set()
        self.connects: list[dict[str, list[str]]] = []
        self.errors_sent: Counter[str] = Counter()
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        self._fail: list[int] = []
        self._fail_until: tuple[float, int] = (0.0, 503)
        self._wake = asyncio.Event()
        self._stamp_second, self._stamp_prefix = -1, ""
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get(PATH, self._subscribe)
        self.app.router.add_get("/_sim/stats", self._stats)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        address = self._runner.addresses[0]
        return f"ws://{address[0]}:{address[1]}"

    async def stop(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- publishing ------------------------------------------------------------------------

    def publish_commit(
        self,
        did: str,
        operation: str,
        rkey: str,
        record: dict[str, Any] | None = None,
        *,
        cid: str | None = None,
        collection: str = POST,
        time_us: int | None = None,
        ensure_ascii: bool = False,
    ) -> int:
        payload: dict[str, Any] = {"$type": f"{NSID}#commit", "did": did}
        payload |= {"operation": operation, "collection": collection, "rkey": rkey}
        if operation != "delete":
            payload["cid"] = cid or fake_cid(record)
            payload["record"] = record
        return self.publish_payload(payload, time_us=time_us, ensure_ascii=ensure_ascii)

    def publish_identity(self, did: str, handle: str | None, *, time_us: int | None = None) -> int:
        upstream: dict[str, Any] = {"did": did, "seq": _relay_seq(self.log.next_seq), "time": ""}
        if handle is not None:
            upstream["handle"] = handle
        payload = {"$type": f"{NSID}#identity", "did": did, "identity": upstream}
        return self.publish_payload(payload, time_us=time_us)

    def publish_account(
        self, did: str, active: bool, status: str | None = None, *, time_us: int | None = None
    ) -> int:
        upstream: dict[str, Any] = {
            "did": did,
            "seq": _relay_seq(self.log.next_seq),
            "time": "",
            "active": active,
        }
        if status is not None:
            upstream["status"] = status
        payload = {"$type": f"{NSID}#account", "did": did, "account": upstream}
        return self.publish_payload(payload, time_us=time_us)

    def publish_payload(
        self, payload: dict[str, Any], *, time_us: int | None = None, ensure_ascii: bool = False
    ) -> int:
        """Give `payload` the next seq and a time (monotonic with seq) and publish it.

        `ensure_ascii` writes non-ASCII text as \\u escapes, as some JSON encoders do."""
        log = self.log
        when = int(self.time_fn() * 1_000_000) if time_us is None else time_us
        when = max(when, log.last_time_us)
        seq = log.next_seq
        log.next_seq += 1
        log.last_time_us = when
        stamp = iso_us(when)
        kind = str(payload.get("$type", "")).rpartition("#")[2] or "unknown"
        if kind == "commit" and "rev" not in payload:
            payload["rev"] = tid(when, seq)
        for key in ("identity", "account"):
            if isinstance(payload.get(key), dict):
                payload[key]["time"] = stamp
        payload = {"$type": payload.get("$type"), "seq": seq, "time": stamp} | payload
        payload["witnessed_at"] = stamp
        frame = json.dumps({"$type": "message", "payload": payload}, ensure_ascii=ensure_ascii)
        size = len(frame.encode())
        did = str(payload.get("did", ""))
        log.append(Event(seq, when, kind, str(payload.get("collection", "")), did, frame, size))
        for observe in self.observers:
            observe(payload)
        self._wake.set()
        return seq

    def publish_record_json(self, did: str, rkey: str, record_json: str, cid: str) -> int:
        """Fast path for load generation: a post create whose record is already JSON.

        The frame is the same as `publish_commit` makes; observers are not told."""
        log = self.log
        when = max(int(self.time_fn() * 1_000_000), log.last_time_us)
        seq = log.next_seq
        log.next_seq += 1
        log.last_time_us = when
        second = when // 1_000_000
        if second != self._stamp_second:
            self._stamp_second, self._stamp_prefix = second, iso_us(when)[:19]
        stamp = f"{self._stamp_prefix}.{when % 1_000_000:06d}Z"
        frame = (
            f'{{"$type": "message", "payload": {{"$type": "{NSID}#commit", "seq": {seq}, '
            f'"time": "{stamp}", "did": "{did}", "operation": "create", "collection": '
            f'"{POST}", "rkey": "{rkey}", "cid": "{cid}", "record": {record_json}, '
            f'"rev": "{tid(when, seq)}", "witnessed_at": "{stamp}"}}}}'
        )
        log.append(Event(seq, when, "commit", POST, did, frame, len(frame)))
        self._wake.set()
        return seq

    def publish_raw(self, frame: str) -> None:
        """A frame as given (malformed JSON, unknown types), in stream order."""
        log = self.log
        log.append(Event(log.next_seq - 1, log.last_time_us, "raw", "", "", frame, len(frame)))
        self._wake.set()

    # --- faults --------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        self._fail += [status] * count

    def fail_for(self, seconds: float, status: int = 503) -> None:
        """Refuse every connection attempt with `status` for `seconds` (wall time)."""
        self._fail_until = (time.monotonic() + seconds, status)

    def drop_connections(self, *, mid_frame: bool = False) -> None:
        """Cut every connection without a close frame, as a network failure would;
        `mid_frame`: after the header and half the payload of a text frame."""
        for conn in list(self.connections):
            transport = conn.request.transport
            if transport is not None:
                if mid_frame:
                    payload = json.dumps({"$type": "message", "payload": {"seq": 1}}).encode()
                    transport.write(bytes([0x81, len(payload)]) + payload[: len(payload) // 2])
                transport.abort()

    def send_error(self, error: str, message: str = "") -> None:
        for conn in self.connections:
            conn.error = (error, message)
        self._wake.set()

    # --- serving -------------------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "next_seq": self.log.next_seq,
                "floor_seq": self.log.floor_seq(),
                "connections": len(self.connections),
                "connects": len(self.connects),
                "errors_sent": dict(self.errors_sent),
            }
        )

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        self.connects.append({key: query.getall(key) for key in set(query.keys())})
        if self._fail or time.monotonic() < self._fail_until[0]:
            status = self._fail.pop(0) if self._fail else self._fail_until[1]
            if status == 429:
                return _xrpc_error(status, "RateLimitExceeded", "injected rate limit")
            return _xrpc_error(status, "InternalServerError", "injected failure")
        kinds = frozenset(query.getall("kinds", []))
        collections = tuple(query.getall("collections", []))
        if not kinds <= KINDS:
            return _xrpc_error(400, "InvalidRequest", f"unknown kinds {sorted(kinds - KINDS)}")
        if collections and kinds and "commit" not in kinds:
            return _xrpc_error(400, "InvalidRequest", "collections applies to commits only")
        try:
            cursor = int(query["cursor"]) if "cursor" in query else None
            max_bytes = int(query.get("max_message_size_bytes", "0"))
        except ValueError:
            return _xrpc_error(400, "InvalidRequest", "cursor must be an integer")
        first: list[str] = []
        position = self.log.head
        if cursor is not None and cursor >= TIME_CURSOR:
            position = self.log.position_for_time(cursor)
            if (
                position == self.log.base
                and self.log.events
                and cursor < self.log.events[0].time_us
            ):
                first.append(_info("OutdatedCursor", f"clamped to seq {self.log.floor_seq()}"))
        elif cursor is not None and cursor < self.log.floor_seq():
            return _xrpc_error(
                400, "CursorTooOld", f"cursor {cursor} is older than the retained log"
            )
        elif cursor is not None and cursor > self.log.next_seq:
            first.append(_info("FutureCursor", f"cursor {cursor} is beyond the next seq"))
        elif cursor is not None:
            position = self.log.position_for_seq(cursor)
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = _Conn(
            ws,
            request,
            position,
            kinds,
            collections,
            frozenset(query.getall("dids", [])),
            max_bytes,
            first,
        )
        self.connections.add(conn)
        sender = asyncio.create_task(self._send(conn))
        try:
            async for _ in ws:
                pass  # a subscriber has nothing to say; this notices when it leaves
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
            self.connections.discard(conn)
        return ws

    async def _send(self, conn: _Conn) -> None:
        log, ws = self.log, conn.ws
        for frame in conn.first:
            await ws.send_str(frame)
        while not ws.closed:
            # Replaying from a cursor is served from the log at the subscriber's pace; once
            # it has caught up, falling `max_lag` behind the live head gets it cut off.
            lag = log.head - conn.pos
            conn.live = conn.live or lag <= 0
            if conn.error is None and (conn.pos < log.base or (conn.live and lag > self.max_lag)):
                conn.error = ("ConsumerTooSlow", "the subscriber fell too far behind")
            if conn.error is not None:
                error, message = conn.error
                self.errors_sent[error] += 1
                await ws.send_str(
                    json.dumps({"$type": "error", "error": error, "message": message})
                )
                await ws.close()
                return
            if conn.pos >= log.head:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = log.slice(conn.pos, min(log.head, conn.pos + BATCH))
            conn.pos += len(batch)
            for event in batch:
                if conn.wants(event):
                    await ws.send_str(event.frame)


def _relay_seq(seq: int) -> int:
    # Identity and account events wrap the relay's event, whose seq is not Jetstream's.
    return seq * 3 + 7_000_000_000


def _info(name: str, message: str) -> str:
    payload = {"$type": f"{NSID}#info", "name": name, "message": message}
    return json.dumps({"$type": "message", "payload": payload})


def _xrpc_error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


# --- command line ---------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aggregator.sim.jetstream", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--appview-port", type=int, default=0)
    p.add_argument("--rate", type=float, default=2000.0, help="events per second (live)")
    p.add_argument("--seconds", type=float, default=0.0, help="live generation time; 0 = none")
    p.add_argument("--backlog", type=int, default=0, help="events published before serving")
    p.add_argument("--match-rate", type=float, default=0.005)
    p.add_argument("--tags", default="bluelightcamp,blc26")
    p.add_argument("--retention", type=int, default=300_000)
    p.add_argument("--max-lag", type=int, default=100_000)
    p.add_argument("--wait-for-client", action="store_true", help="generate once subscribed")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    from aggregator.sim.appview import AppViewSimulator
    from aggregator.sim.bluesky_data import LoadGenerator

    sim = JetstreamSimulator(retention=args.retention, max_lag=args.max_lag)
    appview = AppViewSimulator()
    load = LoadGenerator(sim, tags=args.tags.split(","), match_rate=args.match_rate)
    appview.add_profiles(load.profiles())
    load.publish(args.backlog)
    print(await sim.start(args.host, args.port), flush=True)
    print(await appview.start(args.host, args.appview_port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.seconds > 0:
            while args.wait_for_client and not sim.connections and not stop.is_set():
                await asyncio.sleep(0.01)
            generate = asyncio.create_task(load.run(args.rate, args.seconds))
            await asyncio.wait(
                [generate, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED"
            )
        await stop.wait()
    finally:
        await sim.stop()
        await appview.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_serve(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
