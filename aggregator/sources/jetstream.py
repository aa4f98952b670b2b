"""JetstreamSource: the event's hashtags on the whole Bluesky network, via Jetstream v2.

One websocket to `<jetstream_url>/xrpc/network.bsky.jetstream.subscribeEvents` with
`collections=app.bsky.feed.post` and `kinds=commit,identity,account` (subprotocol
`xrpc.v1.json`). The network sends thousands of events a second and the event's hashtag
is a handful, so the per-frame path is a few byte scans: a frame that has a record, is
not an update and fails `HashtagMatcher.might_match_raw` is never decoded. Everything
else is decoded and acted on: matching creates and updates become `bluesky.record`
items, deletes of posts we stored become `Delete`s, handle changes re-hydrate the
author, deactivated or deleted accounts have their posts retracted.

The cursor (Jetstream's `seq`, inclusive) is checkpointed every second and on shutdown;
the seq of an undecoded frame is read only when a checkpoint needs it. A cursor too old
for the server's replay window (HTTP 400 `CursorTooOld`), or one saved against another
Jetstream instance (seqs are per instance), resumes from a time cursor a minute earlier;
the overlap is deduplicated downstream. On its first start the source replays from
`since` (the event start) the same way.

atproto's `AsyncJetstreamClient` speaks this wire too, but hands its callback pydantic
models only: every frame is validated into a model (about 14 µs, seven times our decode
and match), there is no raw frame to prefilter, and malformed or unknown frames are
dropped without a log line. Hence `websockets` directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from aggregator.config import Config
from aggregator.match import HashtagMatcher
from aggregator.normalise.bluesky import POST_COLLECTION, valid_did
from aggregator.pipeline import Checkpoint, Delete, Inbox, InboxItem, RawItem
from aggregator.sources.bluesky_profiles import KnownPosts, ProfileHydrator, seed_from_store
from aggregator.store.base import Store
from aggregator.supervise import Backoff

log = logging.getLogger(__name__)

NSID = "network.bsky.jetstream.subscribeEvents"
SUBPROTOCOL = "xrpc.v1.json"
KINDS = ("commit", "identity", "account")
COMMIT = f"{NSID}#commit"
IDENTITY = f"{NSID}#identity"
ACCOUNT = f"{NSID}#account"
INFO = f"{NSID}#info"
SYNC = f"{NSID}#sync"
CHECKPOINT_EVERY = 1.0
RESUME_MARGIN_US = 60_000_000
MAX_FRAME = 4 * 1024 * 1024
MAX_EVENT_BYTES = 1024 * 1024  # the server skips bigger events instead of choking us
HEALTHY_AFTER = 60.0
SKIP_LOG_LINES = 10  # malformed frames logged per minute; the rest are counted


class CursorTooOldError(Exception):
    """The server's replay window no longer reaches back to our cursor (HTTP 400)."""


class ErrorFrameError(Exception):
    """An error frame (`ConsumerTooSlow`, ...): the server closes the stream after it."""


@dataclass(frozen=True, slots=True)
class JetstreamCursor:
    """What is checkpointed: the seq (meaningful only on `url`) and the event's time."""

    seq: int | None
    time: str | None
    url: str

    @property
    def time_us(self) -> int | None:
        return iso_to_us(self.time) if self.time else None

    def encode(self) -> str:
        return json.dumps({"seq": self.seq, "time": self.time, "url": self.url})

    @classmethod
    def decode(cls, value: str | None) -> JetstreamCursor | None:
        if not value:
            return None
        try:
            data = json.loads(value)
        except ValueError:
            return None
        if isinstance(data, int):  # a bare seq: assume the configured instance
            return cls(data, None, "")
        if not isinstance(data, dict):
            return None
        seq, at, url = data.get("seq"), data.get("time"), data.get("url")
        return cls(
            seq if type(seq) is int else None,
            at if isinstance(at, str) else None,
            url if isinstance(url, str) else "",
        )


def iso_to_us(value: str) -> int | None:
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def too_old(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("error") == "CursorTooOld")
    except (ValueError, AttributeError):
        return b"CursorTooOld" in body


class SkipLog:
    """Logs skipped frames, at most `limit` lines a minute, then a count of the rest."""

    def __init__(self, logger: logging.Logger, name: str, limit: int = SKIP_LOG_LINES) -> None:
        self.logger, self.name, self.limit = logger, name, limit
        self.total = 0
        self._window = 0.0
        self._lines = 0
        self._quiet = 0

    def __call__(self, reason: str, raw: bytes) -> None:
        self.total += 1
        now = time.monotonic()
        if now - self._window >= 60.0:
            if self._quiet:
                self.logger.warning("%s: %d more frames skipped", self.name, self._quiet)
            self._window, self._lines, self._quiet = now, 0, 0
        if self._lines >= self.limit:
            self._quiet += 1
            return
        self._lines += 1
        sample = raw[:120].decode("utf-8", "replace")
        self.logger.warning("%s: skipped a frame: %s: %r", self.name, reason, sample)


class JetstreamSource:
    def __init__(
        self,
        base_url: str,
        matcher: HashtagMatcher,
        inbox: Inbox,
        store: Store,
        *,
        hydrator: ProfileHydrator | None = None,
        known: KnownPosts | None = None,
        since: datetime | None = None,
        name: str = "bluesky:jetstream",
        checkpoint_every: float = CHECKPOINT_EVERY,
        backoff: Backoff | None = None,
        ping_interval: float | None = 20.0,
    ) -> None:
        self.base_url = _websocket_base(base_url)
        self.matcher, self.inbox, self.store = matcher, inbox, store
        self.hydrator = hydrator
        self.known = known if known is not None else (hydrator.known if hydrator else KnownPosts())
        self.since, self.name = since, name
        self.checkpoint_every = checkpoint_every
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self.ping_interval = ping_interval
        self.skip = SkipLog(log, name)
        self._prepared = False
        self._seq: int | None = None  # the last event we handled (from this instance)
        self._time: str | None = None  # its `time`
        self._resume_us: int | None = None  # a time cursor, when no seq can be used
        self._last_raw: bytes | None = None  # newest frame not decoded (its seq is unread)
        self._saved: int | None = None
        self._due = False
        self._idle = False
        self._too_old = 0
        self.events = self.decoded = self.matched = self.deletes = 0
        self.reconnects = 0
        self.connected = False

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the stream forever; reconnects itself. Cancel to stop (cursor saved)."""
        if not self._prepared:
            await self._prepare()
        ticker = asyncio.create_task(self._tick(), name=f"{self.name}:checkpoint")
        try:
            while True:
                started = time.monotonic()
                delay: float | None = None
                try:
                    await self._session()
                except CursorTooOldError as exc:
                    self._cursor_too_old(str(exc))
                    delay = 0.0
                except ErrorFrameError as exc:
                    log.warning("%s: Jetstream sent %s; reconnecting", self.name, exc)
                except InvalidStatus as exc:
                    body = bytes(exc.response.body or b"")[:200].decode("utf-8", "replace")
                    log.warning("%s: Jetstream answered HTTP %d %s", self.name, _status(exc), body)
                except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                    log.warning("%s: stream dropped (%s); reconnecting", self.name, exc)
                self.connected = False
                if time.monotonic() - started > HEALTHY_AFTER:
                    self.backoff.reset()
                self.reconnects += 1
                await asyncio.sleep(self.backoff.next_delay() if delay is None else delay)
        finally:
            ticker.cancel()
            self.connected = False
            await self._checkpoint()

    async def _prepare(self) -> None:
        saved = JetstreamCursor.decode(await self.store.load_cursor(self.name))
        if saved is not None and saved.url in ("", self.base_url) and saved.seq is not None:
            self._seq, self._saved = saved.seq, saved.seq
            self._time = saved.time
            log.info("%s: resuming from seq %d", self.name, saved.seq)
        elif saved is not None and saved.time_us is not None:
            self._resume_us = saved.time_us - RESUME_MARGIN_US
            log.info("%s: cursor saved for %s; resuming by time", self.name, saved.url)
        elif self.since is not None:
            self._resume_us = int(self.since.timestamp() * 1e6)
            log.info("%s: first start; replaying from %s", self.name, self.since.isoformat())
        known, authors = await seed_from_store(self.store, self.known)
        if self.hydrator is not None:
            for did, author in authors.items():
                self.hydrator.seed(did, author)
        log.info("%s: %d stored posts, %d authors known", self.name, known, len(authors))
        self._prepared = True

    def url(self) -> str:
        params: list[tuple[str, str | int]] = [("collections", POST_COLLECTION)]
        params += [("kinds", kind) for kind in KINDS]
        params.append(("max_message_size_bytes", MAX_EVENT_BYTES))
        cursor = self._seq if self._seq is not None else self._resume_us
        if cursor is not None:
            params.append(("cursor", cursor))
        return f"{self.base_url}/xrpc/{NSID}?{urlencode(params)}"

    async def _session(self) -> None:
        url = self.url()
        try:
            ws = await websockets.connect(
                url,
                subprotocols=[websockets.Subprotocol(SUBPROTOCOL)],
                open_timeout=15,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
                max_size=MAX_FRAME,
                max_queue=256,
                close_timeout=0.5,  # never hold up a shutdown for a polite close
                compression=None,
                user_agent_header="backchannel (event wall)",
            )
        except InvalidStatus as exc:
            body = bytes(exc.response.body or b"")
            if _status(exc) == 400 and too_old(body):
                raise CursorTooOldError(body[:300].decode("utf-8", "replace")) from None
            raise
        async with ws:
            self.connected = True
            self._too_old = 0
            log.info("%s: connected (%s)", self.name, url.rsplit("?", 1)[-1])
            await self._read(ws)

    async def _read(self, ws: websockets.ClientConnection) -> None:
        might_match = self.matcher.might_match_raw
        while True:
            self._idle = True
            raw = await ws.recv(decode=False)
            self._idle = False
            self.events += 1
            # Frames with a record are creates and updates; only ours need decoding.
            if b'"record"' in raw and b'"update"' not in raw and not might_match(raw):
                self._last_raw = raw
            else:
                await self._decode(raw)
            if self._due:
                await self._checkpoint()

    # --- frames --------------------------------------------------------------------------

    async def _decode(self, raw: bytes) -> None:
        self.decoded += 1
        try:
            frame = json.loads(raw)
        except ValueError:
            self.skip("invalid JSON", raw)
            return
        if type(frame) is not dict:
            self.skip("frame is not an object", raw)
            return
        kind = frame.get("$type")
        if kind == "error":
            raise ErrorFrameError(f"{frame.get('error')}: {frame.get('message') or ''}"[:300])
        payload = frame.get("payload")
        if kind != "message" or type(payload) is not dict:
            self.skip(f"unknown frame type {str(kind)[:60]!r}", raw)
            return
        kind = payload.get("$type")
        try:
            if kind == COMMIT:
                await self._commit(payload, raw)
            elif kind == IDENTITY:
                self._identity(payload)
            elif kind == ACCOUNT:
                await self._account(payload)
            elif kind == INFO:
                log.warning(
                    "%s: Jetstream notice %s: %s",
                    self.name,
                    payload.get("name"),
                    payload.get("message"),
                )
            elif kind != SYNC:
                self.skip(f"unknown message type {str(kind)[:80]!r}", raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.skip(f"bad {kind} event ({type(exc).__name__}: {exc})", raw)
        # Only now, with its items in the inbox, does the event count as handled.
        seq = payload.get("seq")
        if type(seq) is int and (self._seq is None or seq > self._seq):
            self._seq, self._time, self._last_raw = seq, _witnessed(payload), None

    async def _commit(self, p: dict[str, Any], raw: bytes) -> None:
        if p.get("collection") != POST_COLLECTION:
            return
        did, rkey, op = p.get("did"), p.get("rkey"), p.get("operation")
        if type(did) is not str or type(rkey) is not str or not valid_did(did):
            self.skip("commit without a valid did/rkey", raw)
            return
        uri = f"at://{did}/{POST_COLLECTION}/{rkey}"
        if op == "delete":
            if uri in self.known:
                self.known.discard(uri)
                if self.hydrator is not None:
                    self.hydrator.forget(uri, did)
                self.deletes += 1
                await self._put(Delete(self.name, post_id=uri))
            return
        if op != "create" and op != "update":
            self.skip(f"unknown operation {str(op)[:40]!r}", raw)
            return
        record = p.get("record")
        if type(record) is not dict:
            self.skip("commit without a record", raw)
            return
        # An edit of a post we stored is ours even if it no longer carries the tag.
        if not self.matcher.matches_bluesky_record(record) and uri not in self.known:
            return
        context: dict[str, Any] = {
            "did": did,
            "rkey": rkey,
            "cid": p.get("cid"),
            "time": p.get("time"),
        }
        author = self.hydrator.author(did) if self.hydrator is not None else None
        if author is not None:
            context["author"] = author
        self.known.add(uri, did)
        self.matched += 1
        await self._put(RawItem(self.name, "bluesky.record", record, context))
        if author is None and self.hydrator is not None:
            late = self.hydrator.hold(did, uri, record, context)
            if late is not None:  # the profile came while we waited for the inbox
                await self._put(
                    RawItem(self.name, "bluesky.record", record, {**context, "author": late})
                )

    def _identity(self, p: dict[str, Any]) -> None:
        did = p.get("did")
        identity = p.get("identity")
        if type(did) is not str or type(identity) is not dict or self.hydrator is None:
            return
        if self.known.has_did(did) or self.hydrator.author(did) is not None:
            handle = identity.get("handle")
            if self.hydrator.identity_changed(did, handle):
                log.info("%s: %s is now @%s", self.name, did, handle)

    async def _account(self, p: dict[str, Any]) -> None:
        did = p.get("did")
        account = p.get("account")
        if type(did) is not str or type(account) is not dict or account.get("active") is not False:
            return
        uris = self.known.of(did)
        if not uris:
            return
        status = str(account.get("status") or "inactive")[:40]
        log.info("%s: account %s is %s; retracting %d posts", self.name, did, status, len(uris))
        if self.hydrator is not None:
            self.hydrator.forget_did(did)
        for uri in uris:
            self.known.discard(uri)
            self.deletes += 1
            await self._put(Delete(self.name, post_id=uri))

    async def _put(self, item: InboxItem) -> None:
        try:
            self.inbox.put_nowait(item)
        except asyncio.QueueFull:
            await self.inbox.put(item)  # the pipeline is behind: wait, that is backpressure

    # --- cursor --------------------------------------------------------------------------

    def _position(self) -> int | None:
        raw, self._last_raw = self._last_raw, None
        if raw is not None:
            try:
                payload = json.loads(raw)["payload"]
                seq = payload["seq"]
                if type(seq) is int and (self._seq is None or seq > self._seq):
                    self._seq, self._time = seq, _witnessed(payload)
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable frame: the previous position is still a safe one
        return self._seq

    async def _checkpoint(self) -> None:
        self._due = False
        seq = self._position()
        if seq is None or seq == self._saved:
            return
        cursor = JetstreamCursor(seq, self._time, self.base_url)
        self._saved = seq
        await self._put(Checkpoint(self.name, cursor.encode()))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_every)
            if self._idle or not self.connected:
                await self._checkpoint()  # nothing of ours is half-way into the inbox
            else:
                self._due = True

    def _cursor_too_old(self, detail: str) -> None:
        self._too_old += 1
        time_us = iso_to_us(self._time) if self._time else None
        resume = self._resume_us if self._seq is None else None
        self._seq = None
        if self._too_old == 1 and time_us is not None:
            self._resume_us = time_us - RESUME_MARGIN_US
            log.warning(
                "%s: cursor too old (%s); resuming by time from %s", self.name, detail, self._time
            )
        elif self._too_old == 1 and resume is not None:
            self._resume_us = resume
        else:
            self._resume_us = None
            log.error(
                "%s: cursor too old (%s); following live, events were missed", self.name, detail
            )


def _websocket_base(url: str) -> str:
    base = url.strip().rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base.removesuffix("/xrpc")


def _status(exc: InvalidStatus) -> int:
    return int(exc.response.status_code)


def _witnessed(payload: dict[str, Any]) -> str | None:
    """When this Jetstream saw the event: what time cursors translate against (`time`
    may have been overridden by an operator's timestamp import)."""
    for key in ("witnessed_at", "time"):
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return None


def bluesky_sources(
    config: Config,
    inbox: Inbox,
    store: Store,
    http_session: aiohttp.ClientSession,
    *,
    since: datetime | None = None,
) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """The supervised runs for `bluesky.mode` "jetstream" or "firehose": the stream,
    profile hydration and the optional search backfill."""
    from aggregator.sources.bluesky_search import search_source

    mode = config.get("bluesky", "mode")
    if mode not in ("jetstream", "firehose"):
        return []
    if since is None:
        start = config.event_start
        since = start.astimezone(UTC) if start else datetime.now(UTC) - timedelta(hours=24)
    matcher = HashtagMatcher(config.hashtags)
    known = KnownPosts()
    hydrator: ProfileHydrator
    if config.get("bluesky", "profiles") == "pds":
        from aggregator.sources.pds_profiles import PdsProfileHydrator

        hydrator = PdsProfileHydrator(
            config.get("bluesky", "firehose_url"), http_session, inbox, store=store, known=known
        )
    else:
        hydrator = ProfileHydrator(
            config.get("bluesky", "appview_url"), http_session, inbox, store=store, known=known
        )
    source: JetstreamSource
    if mode == "firehose":
        from aggregator.sources.firehose import FirehoseSource

        source = FirehoseSource(
            config.get("bluesky", "firehose_url"),
            matcher,
            inbox,
            store,
            hydrator=hydrator,
            known=known,
            replay=config.get("bluesky", "firehose_replay"),
        )
    else:
        source = JetstreamSource(
            config.get("bluesky", "jetstream_url"),
            matcher,
            inbox,
            store,
            hydrator=hydrator,
            known=known,
            since=since,
        )
    runs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        (source.name, source.run),
        (hydrator.name, hydrator.run),
    ]
    search = search_source(config, matcher, inbox, store, http_session, hydrator, since)
    if search is not None:
        runs.append((search.name, search.run))
    return runs
