"""FirehoseSource: the hashtags on a relay's or a PDS's `com.atproto.sync.subscribeRepos`.

For `bluesky.mode = "firehose"`: a self-hosted PDS, or a relay when Jetstream is not
wanted. Frames are DAG-CBOR; atproto's `AsyncFirehoseSubscribeReposClient` reads them and
`parse_subscribe_repos_message` turns each into a model. A commit's ops are filtered on
their path (`app.bsky.feed.post/<rkey>`) before its CAR blocks are decoded, so the many
commits that touch likes, follows and profiles cost no block decoding. Post records are
brought into the JSON shape Jetstream delivers (CID links as `{"$link": …}`) and then
handled exactly like Jetstream's: the same tag matching, the same delete, identity and
account handling, the same profile hydration and the same checkpoints. So this class
reuses `JetstreamSource` and replaces only how the stream is read.

The cursor is the firehose `seq`. After each handled frame the client's params are
updated (`update_params({"cursor": seq})`) so its own reconnects resume exactly, and the
seq is checkpointed through the inbox after the posts it covers. Around the client runs
our own retry loop with backoff, for the errors it gives up on (`FirehoseError`,
refused connections). A first start follows live, or with `bluesky.firehose_replay`
replays the PDS's whole event log from seq 0 (right for a PDS of one's own, never for
a relay).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from typing import Any

from atproto import (
    CAR,
    CID,
    AsyncFirehoseSubscribeReposClient,
    firehose_models,
    models,
    parse_subscribe_repos_message,
)

from aggregator.match import HashtagMatcher
from aggregator.normalise.bluesky import POST_COLLECTION
from aggregator.pipeline import Inbox
from aggregator.sources.bluesky_profiles import KnownPosts, ProfileHydrator
from aggregator.sources.jetstream import HEALTHY_AFTER, JetstreamSource
from aggregator.store.base import Store
from aggregator.supervise import Backoff

log = logging.getLogger(__name__)

Repos = models.ComAtprotoSyncSubscribeRepos
POST_PREFIX = POST_COLLECTION + "/"


def json_shape(value: Any, key: str = "") -> Any:
    """A DAG-CBOR record as Jetstream's JSON: CID links become `{"$link": cid}`, other
    bytes `{"$bytes": base64}`; everything else is already JSON-like."""
    if isinstance(value, dict):
        return {str(k): json_shape(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shape(v) for v in value]
    if isinstance(value, CID):
        return {"$link": str(value)}
    if isinstance(value, bytes):
        if value[:1] == b"\x01":  # a CIDv1 link, decoded to its raw bytes
            with contextlib.suppress(Exception):
                return {"$link": str(CID.decode(value))}
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    return value


class FirehoseSource(JetstreamSource):
    def __init__(
        self,
        base_url: str,
        matcher: HashtagMatcher,
        inbox: Inbox,
        store: Store,
        *,
        hydrator: ProfileHydrator | None = None,
        known: KnownPosts | None = None,
        replay: bool = False,
        name: str = "bluesky:firehose",
        backoff: Backoff | None = None,
        checkpoint_every: float = 1.0,
    ) -> None:
        super().__init__(
            base_url,
            matcher,
            inbox,
            store,
            hydrator=hydrator,
            known=known,
            since=None,
            name=name,
            backoff=backoff,
            checkpoint_every=checkpoint_every,
        )
        self.replay = replay
        self._client: AsyncFirehoseSubscribeReposClient | None = None

    async def run(self) -> None:
        """Follow the firehose forever. Cancel to stop (the cursor is saved)."""
        if not self._prepared:
            await self._prepare()
            if self._seq is None and self.replay:
                log.info("%s: first start; replaying the event log from seq 0", self.name)
                self._seq = 0
            elif self._seq is None:
                log.info("%s: first start; following live", self.name)
        ticker = asyncio.create_task(self._tick(), name=f"{self.name}:checkpoint")
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._session()
                    log.warning("%s: the firehose client stopped; reconnecting", self.name)
                except Exception as exc:
                    log.warning("%s: firehose failed (%s); reconnecting", self.name, exc)
                self.connected = False
                if time.monotonic() - started > HEALTHY_AFTER:
                    self.backoff.reset()
                self.reconnects += 1
                await asyncio.sleep(self.backoff.next_delay())
        finally:
            ticker.cancel()
            self.connected = False
            if self._client is not None:
                with contextlib.suppress(Exception):
                    await self._client.stop()
            await self._checkpoint()

    async def _session(self) -> None:
        params = {"cursor": self._seq} if self._seq is not None else None
        client = AsyncFirehoseSubscribeReposClient(params, base_uri=self._xrpc_base())
        self._client = client
        log.info("%s: subscribing (cursor %s)", self.name, self._seq)
        try:
            await client.start(self._on_message, self._on_callback_error)
        finally:
            self._client = None

    def _xrpc_base(self) -> str:
        return self.base_url + "/xrpc"

    async def _on_callback_error(self, exc: BaseException) -> None:
        log.warning("%s: skipped a frame: %s: %s", self.name, type(exc).__name__, exc)

    async def _on_message(self, frame: firehose_models.MessageFrame) -> None:
        self._idle = False
        self.connected = True
        self.events += 1
        try:
            try:
                message = parse_subscribe_repos_message(frame)
            except Exception as exc:
                self.skip(f"unreadable message ({type(exc).__name__}: {exc})", b"")
                return
            await self._handle(message)
            seq = getattr(message, "seq", None)
            if type(seq) is int and (self._seq is None or seq > self._seq):
                # Handled, its items in the inbox: from here a reconnect resumes after it.
                self._seq, self._time = seq, getattr(message, "time", None)
                if self._client is not None:
                    self._client.update_params({"cursor": seq})
            if self._due:
                await self._checkpoint()
        finally:
            self._idle = True

    async def _handle(self, message: Any) -> None:
        try:
            if isinstance(message, Repos.Commit):
                await self._repo_commit(message)
            elif isinstance(message, Repos.Identity):
                self._identity({"did": message.did, "identity": {"handle": message.handle}})
            elif isinstance(message, Repos.Account):
                account = {"active": message.active, "status": message.status}
                await self._account({"did": message.did, "account": account})
            elif isinstance(message, Repos.Info):
                log.warning("%s: relay notice %s: %s", self.name, message.name, message.message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.skip(f"bad {type(message).__name__} ({type(exc).__name__}: {exc})", b"")

    async def _repo_commit(self, commit: Any) -> None:
        ops = [op for op in commit.ops if op.path.startswith(POST_PREFIX)]
        if not ops:
            return  # likes, follows, profiles: their blocks are never decoded
        self.decoded += 1
        blocks: dict[Any, Any] | None = None
        for op in ops:
            payload: dict[str, Any] = {
                "did": commit.repo,
                "collection": POST_COLLECTION,
                "rkey": op.path.removeprefix(POST_PREFIX),
                "operation": op.action,
                "time": commit.time,
            }
            if op.action in ("create", "update"):
                if blocks is None:
                    try:
                        blocks = CAR.from_bytes(commit.blocks).blocks
                    except Exception as exc:
                        self.skip(f"unreadable CAR blocks ({exc})", b"")
                        return
                record = blocks.get(op.cid) if op.cid is not None else None
                if record is None:
                    self.skip(f"commit without the block of {op.path}", b"")
                    continue
                payload["record"] = json_shape(record)
                payload["cid"] = str(op.cid)
            await self._commit(payload, b"")
