"""Mastodon.py for the calls it serves well: the instance probe and the token check.

Mastodon.py is blocking (requests), so each call runs in a worker thread, with
`ratelimit_method="throw"` so it never sleeps inside a thread we cannot cancel, and its
exceptions are mapped to ours. The tag timeline itself is read with aiohttp (see
mastodon_poll.py): Mastodon.py's `timeline_hashtag` has no `any[]`, so covering several
hashtags would cost one request per tag against the 300-per-5-minutes budget.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import mastodon
from mastodon import Mastodon

log = logging.getLogger(__name__)


class MastodonSourceError(Exception):
    """Something the source can act on; subclasses say what."""


class TokenRefusedError(MastodonSourceError):
    """401/403: the token is missing, invalid or lacks the scope."""


class RateLimitedError(MastodonSourceError):
    pass


class ServerUnavailableError(MastodonSourceError):
    """Network errors and 5xx: retry later with backoff."""


@dataclass(frozen=True)
class Capabilities:
    domain: str
    software: str
    version: str
    streaming_url: str | None
    tag_timeline_needs_token: bool

    def describe(self) -> str:
        return f"{self.domain} ({self.software} {self.version})"


def _client(base_url: str, token: str | None) -> Mastodon:
    return Mastodon(
        api_base_url=base_url,
        access_token=token,
        ratelimit_method="throw",
        request_timeout=15,
        version_check_mode="none",
        user_agent="backchannel (event wall)",
    )


def _map(exc: Exception) -> MastodonSourceError:
    if isinstance(exc, mastodon.MastodonUnauthorizedError):
        return TokenRefusedError(str(exc))
    if isinstance(exc, mastodon.MastodonAPIError) and "403" in str(exc):
        return TokenRefusedError(str(exc))
    if isinstance(exc, mastodon.MastodonRatelimitError):
        return RateLimitedError(str(exc))
    if isinstance(exc, mastodon.MastodonNetworkError | mastodon.MastodonServerError):
        return ServerUnavailableError(str(exc))
    return MastodonSourceError(f"{type(exc).__name__}: {exc}")


async def _call(fn: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args)
    except mastodon.MastodonError as exc:
        raise _map(exc) from None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


async def probe(base_url: str) -> Capabilities:
    """What the server is and offers: /api/v2/instance, falling back to v1."""
    client = _client(base_url, None)
    host = urlsplit(base_url).hostname or base_url
    try:
        data = await _call(client.instance_v2)
        v2 = True
    except MastodonSourceError as exc:
        if isinstance(exc, ServerUnavailableError):
            raise
        data = await _call(client.instance_v1)
        v2 = False
    data = dict(data) if isinstance(data, dict) else {}
    version = str(data.get("version") or "?")
    software = "Mastodon"
    if "compatible" in version:  # e.g. "3.0.0 (compatible; Pleroma 2.5.0)"
        software = version.split("compatible;", 1)[1].strip(" )").split(" ")[0]
    if v2:
        domain = str(data.get("domain") or host)
        streaming = _get(data, "configuration", "urls", "streaming")
        access = _get(data, "configuration", "timelines_access", "hashtag_feeds", "remote")
        needs_token = access == "authenticated"
    else:
        domain = str(data.get("uri") or host).removeprefix("https://")
        streaming = _get(data, "urls", "streaming_api")
        needs_token = False
    return Capabilities(
        domain=domain,
        software=software,
        version=version,
        streaming_url=str(streaming) if isinstance(streaming, str) and streaming else None,
        tag_timeline_needs_token=needs_token,
    )


async def verify_token(base_url: str, token: str) -> str:
    """The account name the token belongs to; TokenRefusedError if it is not valid."""
    account = await _call(_client(base_url, token).account_verify_credentials)
    return str(_get(dict(account), "acct") or "?")
