"""Profiles straight from a PDS, for a firehose of one's own PDS with no AppView.

`ProfileHydrator` asks an AppView's `app.bsky.actor.getProfiles`. A self-hosted PDS
without an AppView cannot answer that, but it holds the repos themselves: the handle
comes from `com.atproto.repo.describeRepo`, the display name and avatar from the
`app.bsky.actor.profile/self` record (`com.atproto.repo.getRecord`), the avatar image
from `com.atproto.sync.getBlob`. `PdsProfileHydrator` builds the same profile view from
those, so batching, caching, retries and late re-puts stay `ProfileHydrator`'s.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aggregator.sources.bluesky_profiles import MAX_BODY, ProfileHydrator


class PdsProfileHydrator(ProfileHydrator):
    def __init__(self, pds_url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(pds_url, *args, **kwargs)
        base = pds_url.strip().rstrip("/").removesuffix("/xrpc")
        if base.startswith("wss://"):
            base = "https://" + base.removeprefix("wss://")
        elif base.startswith("ws://"):
            base = "http://" + base.removeprefix("ws://")
        self.base = base

    async def _get(self, batch: list[str]) -> tuple[int, Any]:
        profiles = []
        for did in batch:
            status, repo = await self._xrpc("com.atproto.repo.describeRepo", repo=did)
            if status == 400:
                continue  # not on this PDS (any more): no profile, like the AppView says
            if status != 200 or not isinstance(repo, dict):
                return status, None  # the PDS is unwell: retry the batch later
            view: dict[str, Any] = {"did": did, "handle": repo.get("handle")}
            status, record = await self._xrpc(
                "com.atproto.repo.getRecord",
                repo=did,
                collection="app.bsky.actor.profile",
                rkey="self",
            )
            value = record.get("value") if status == 200 and isinstance(record, dict) else None
            if isinstance(value, dict):
                if isinstance(value.get("displayName"), str):
                    view["displayName"] = value["displayName"]
                cid = _blob_cid(value.get("avatar"))
                if cid:
                    query = urlencode({"did": did, "cid": cid})
                    view["avatar"] = f"{self.base}/xrpc/com.atproto.sync.getBlob?{query}"
            profiles.append(view)
        return 200, {"profiles": profiles}

    async def _xrpc(self, method: str, **params: str) -> tuple[int, Any]:
        url = f"{self.base}/xrpc/{method}"
        async with self.session.get(url, params=params, timeout=self.timeout) as resp:
            raw = await resp.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise ValueError(f"{method} answer too large")
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None


def _blob_cid(blob: object) -> str | None:
    if not isinstance(blob, dict):
        return None
    ref = blob.get("ref")
    link = ref.get("$link") if isinstance(ref, dict) else None
    return link if isinstance(link, str) and link.isalnum() else None
