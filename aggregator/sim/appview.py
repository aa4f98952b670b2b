"""A local Bluesky AppView (plus the session endpoint of a PDS) for tests and the demo.

- `GET /xrpc/app.bsky.actor.getProfiles?actors=...` (1-25 DIDs or handles; 400
  `InvalidRequest` beyond 25 or with none): `{"profiles": [profileViewDetailed]}`,
  unknown actors left out, as the real AppView does.
- `POST /xrpc/com.atproto.server.createSession` `{"identifier","password"}`:
  `{"did","handle","accessJwt","refreshJwt","active"}` or 401 `AuthenticationRequired`.
- `GET /xrpc/app.bsky.feed.searchPosts?q=&since=&until=&sort=&limit=&cursor=`: 403 without
  a session token (anonymous search is refused since 2025), or always when
  `search_enabled` is False; `#tag` terms match facet tags and the `tags` array, other
  terms the text; newest first, paged by an opaque cursor; `limit` 1-100.

Posts to search come from `observe()`, which a `JetstreamSimulator` calls for every
event it publishes. `fail_next()` injects HTTP errors; `requests` counts calls.
"""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from aggregator.match import BLUESKY_TAG_FEATURE, normalise_tag

MAX_ACTORS = 25
MAX_LIMIT = 100
POST = "app.bsky.feed.post"


@dataclass
class SimProfile:
    did: str
    handle: str
    display_name: str = ""
    avatar: str | None = None
    description: str = ""

    def basic(self) -> dict[str, Any]:
        view: dict[str, Any] = {"did": self.did, "handle": self.handle}
        if self.display_name:
            view["displayName"] = self.display_name
        if self.avatar:
            view["avatar"] = self.avatar
        view["labels"] = []
        return view

    def detailed(self) -> dict[str, Any]:
        view = self.basic()
        view |= {"description": self.description, "followersCount": 0, "postsCount": 0}
        return view


@dataclass
class _Indexed:
    uri: str
    cid: str
    did: str
    record: dict[str, Any]
    indexed_at: str


class AppViewSimulator:
    def __init__(
        self,
        profiles: Iterable[SimProfile] = (),
        *,
        passwords: dict[str, str] | None = None,
        search_enabled: bool = True,
    ) -> None:
        self.profiles: dict[str, SimProfile] = {}
        self.add_profiles(profiles)
        self.passwords = dict(passwords or {})  # handle -> app password
        self.search_enabled = search_enabled
        self.refused: set[str] = set()  # actors answered with 400, spoiling their batch
        self.posts: dict[str, _Indexed] = {}
        self.requests: Counter[str] = Counter()
        self.actor_counts: list[int] = []
        self._tokens: set[str] = set()
        self._fail: list[int] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/xrpc/app.bsky.actor.getProfiles", self._get_profiles)
        self.app.router.add_post("/xrpc/com.atproto.server.createSession", self._create_session)
        self.app.router.add_get("/xrpc/app.bsky.feed.searchPosts", self._search_posts)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        address = self._runner.addresses[0]
        return f"http://{address[0]}:{address[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- state ---------------------------------------------------------------------------

    def add_profiles(self, profiles: Iterable[SimProfile]) -> None:
        for profile in profiles:
            self.profiles[profile.did] = profile

    def rename(self, did: str, handle: str) -> None:
        self.profiles[did].handle = handle

    def fail_next(self, count: int = 1, status: int = 502) -> None:
        self._fail += [status] * count

    def observe(self, payload: dict[str, Any]) -> None:
        """Index what a Jetstream simulator publishes, as the real AppView follows the relay."""
        if payload.get("collection") != POST or not isinstance(payload.get("did"), str):
            return
        did, rkey = payload["did"], str(payload.get("rkey"))
        uri = f"at://{did}/{POST}/{rkey}"
        if payload.get("operation") == "delete":
            self.posts.pop(uri, None)
        elif isinstance(payload.get("record"), dict):
            stamp = str(payload.get("time"))
            cid = str(payload.get("cid"))
            self.posts[uri] = _Indexed(uri, cid, did, payload["record"], stamp)

    # --- handlers ----------------------------------------------------------------------------

    def _injected(self) -> web.Response | None:
        if self._fail:
            return _error(self._fail.pop(0), "InternalServerError", "injected failure")
        return None

    async def _get_profiles(self, request: web.Request) -> web.Response:
        self.requests["getProfiles"] += 1
        if (failure := self._injected()) is not None:
            return failure
        actors = request.query.getall("actors", [])
        self.actor_counts.append(len(actors))
        if not actors:
            return _error(400, "InvalidRequest", 'Error: Params must have the property "actors"')
        if len(actors) > MAX_ACTORS:
            return _error(
                400,
                "InvalidRequest",
                f"Error: actors must not have more than {MAX_ACTORS} elements",
            )
        if refused := self.refused.intersection(actors):
            return _error(400, "InvalidRequest", f"Error: actor {sorted(refused)[0]} is invalid")
        by_handle = {p.handle: p for p in self.profiles.values()}
        found = [self.profiles.get(a) or by_handle.get(a) for a in actors]
        return web.json_response({"profiles": [p.detailed() for p in found if p is not None]})

    async def _create_session(self, request: web.Request) -> web.Response:
        self.requests["createSession"] += 1
        if (failure := self._injected()) is not None:
            return failure
        with contextlib.suppress(ValueError):
            body = await request.json()
            if isinstance(body, dict):
                ident, password = body.get("identifier"), body.get("password")
                profile = self.profiles.get(str(ident)) or next(
                    (p for p in self.profiles.values() if p.handle == ident), None
                )
                if profile is not None and self.passwords.get(profile.handle) == password:
                    token = secrets.token_urlsafe(24)
                    self._tokens.add(token)
                    return web.json_response(
                        {
                            "did": profile.did,
                            "handle": profile.handle,
                            "accessJwt": token,
                            "refreshJwt": secrets.token_urlsafe(24),
                            "active": True,
                        }
                    )
        return _error(401, "AuthenticationRequired", "Invalid identifier or password")

    async def _search_posts(self, request: web.Request) -> web.Response:
        self.requests["searchPosts"] += 1
        if (failure := self._injected()) is not None:
            return failure
        auth = request.headers.get("Authorization", "")
        if not self.search_enabled or auth.removeprefix("Bearer ") not in self._tokens:
            return _error(403, "Forbidden", "search is not available")
        query = request.query
        try:
            limit = int(query.get("limit", "25"))
            offset = int(query.get("cursor", "0"))
        except ValueError:
            return _error(400, "InvalidRequest", "limit and cursor must be integers")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, "InvalidRequest", f"limit must be 1-{MAX_LIMIT}")
        since, until = _time(query.get("since")), _time(query.get("until"))
        terms = query.get("q", "").split()
        hits = [
            p
            for p in self.posts.values()
            if _matches(p.record, terms) and _within(_time(p.indexed_at), since, until)
        ]
        hits.sort(key=lambda p: p.indexed_at, reverse=True)
        page = hits[offset : offset + limit]
        body: dict[str, Any] = {"posts": [self._view(p) for p in page], "hitsTotal": len(hits)}
        if offset + limit < len(hits):
            body["cursor"] = str(offset + limit)
        return web.json_response(body)

    def _view(self, post: _Indexed) -> dict[str, Any]:
        profile = self.profiles.get(post.did) or SimProfile(post.did, "handle.invalid")
        return {
            "uri": post.uri,
            "cid": post.cid,
            "author": profile.basic(),
            "record": post.record,
            "indexedAt": post.indexed_at,
            "likeCount": 0,
            "repostCount": 0,
            "replyCount": 0,
            "quoteCount": 0,
            "labels": [],
        }


def _matches(record: dict[str, Any], terms: list[str]) -> bool:
    if not terms:
        return False
    tags = {normalise_tag(t) for t in record.get("tags") or () if isinstance(t, str)}
    for facet in record.get("facets") or ():
        for feature in facet.get("features") or () if isinstance(facet, dict) else ():
            if isinstance(feature, dict) and feature.get("$type") == BLUESKY_TAG_FEATURE:
                tags.add(normalise_tag(str(feature.get("tag"))))
    text = str(record.get("text", "")).casefold()
    for term in terms:
        if term.startswith("#"):
            if normalise_tag(term) not in tags:
                return False
        elif term.casefold() not in text:
            return False
    return True


def _within(moment: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if moment is None:
        return since is None and until is None
    return (since is None or moment >= since) and (until is None or moment < until)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)
