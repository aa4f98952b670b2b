"""One simulated Mastodon server's view of the dataset: local ids, visibility, paging.

Pure code (no sockets, no asyncio): `ServerTimeline` is built once from the dataset items
and then answered with a virtual time `now` (seconds since the event epoch).

Wire facts mirrored from Mastodon (app/models/concerns/paginable.rb, tag_feed.rb,
REST::StatusSerializer / AccountSerializer):
- ids are snowflakes `(unix_ms << 16) | seq` as decimal strings, local to each server; a
  remote status gets the id of its `created_at`, so a post that federates late can land
  *behind* a `min_id` cursor (see `remote_delay_s`);
- `max_id`/`since_id` give the newest matches below/above the bounds, `min_id` gives the
  matches immediately after it (both newest first);
- `acct` is bare for local accounts, `noindex` is only serialised for local accounts,
  `account.id`, media ids and counts differ per server; remote media is served from the
  asking server's cache with `remote_url` pointing at the origin.
"""

from __future__ import annotations

import hashlib
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Item = Mapping[str, Any]
JSON = dict[str, Any]

_SEQ_MASK = 0xFFFF


def snowflake(unix_ms: int, seq: int) -> int:
    """A Mastodon-style id: milliseconds in the high bits, 16 bits of sequence."""
    return (unix_ms << 16) | (seq & _SEQ_MASK)


def snowflake_ms(snowflake_id: int) -> int:
    return snowflake_id >> 16


def format_time(when: datetime) -> str:
    """Mastodon's timestamp format: `2026-11-21T09:15:00.000Z`."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def normalise_tag(name: str) -> str:
    """How a tag name is compared: without '#', NFKC, casefolded."""
    return unicodedata.normalize("NFKC", name.strip().lstrip("#")).casefold()


def stable_hash(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class SimStatus:
    """A status as one server stores it."""

    uid: int
    uri: str
    raw: Item  # the dataset Status (without id/created_at)
    at: float  # created, seconds since epoch
    visible_at: float  # when this server has it
    local: bool
    deleted_at: float | None = None
    edits: list[tuple[float, float, Item]] = field(default_factory=list)  # (visible, at, patch)
    boost_of: SimStatus | None = None
    all_tags: frozenset[str] = frozenset()  # every tag any version carries (index key)

    def visible(self, now: float) -> bool:
        return self.visible_at <= now and (self.deleted_at is None or now < self.deleted_at)

    def version(self, now: float) -> int:
        """How many edits this server has applied at `now`."""
        return sum(1 for visible, _, _ in self.edits if visible <= now)

    def current(self, now: float) -> tuple[Item, float | None]:
        """The raw status with applicable edits merged, and the last edit time."""
        n = self.version(now)
        if n == 0:
            return self.raw, None
        merged = dict(self.raw)
        for _, _, patch in self.edits[:n]:
            merged.update(patch)
        return merged, self.edits[n - 1][1]

    def tags(self, now: float) -> frozenset[str]:
        source = self.boost_of if self.boost_of is not None else self
        status, _ = source.current(now)
        return frozenset(normalise_tag(t["name"]) for t in status.get("tags") or ())

    def has_media(self) -> bool:
        return bool(self.raw.get("media_attachments"))


@dataclass(frozen=True)
class TimelineQuery:
    tag: str
    limit: int = 20
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    any_: tuple[str, ...] = ()
    all_: tuple[str, ...] = ()
    none_: tuple[str, ...] = ()
    local: bool = False
    remote: bool = False
    only_media: bool = False


class ServerTimeline:
    """Statuses one server knows, indexed by tag, rendered as that server would."""

    LIMIT_PER_MODE = 4  # any[]/all[]/none[] entries Mastodon honours

    def __init__(
        self,
        items: Sequence[Item],
        *,
        host: str,
        epoch: datetime,
        sees: Callable[[Item], bool] | None = None,
        include_boosts: bool = True,
        remote_delay_s: float = 0.0,
        accounts: Iterable[Item] = (),
    ) -> None:
        self.host = host
        self.epoch = epoch.astimezone(UTC)
        self.epoch_ms = int(self.epoch.timestamp() * 1000)
        self.include_boosts = include_boosts
        self.remote_delay_s = remote_delay_s
        self.accounts: dict[str, Item] = {str(a["acct"]): a for a in accounts}
        self.by_uid: dict[int, SimStatus] = {}
        self.by_uri: dict[str, SimStatus] = {}
        self.index: dict[str, list[int]] = {}
        self._union_cache: dict[frozenset[str], list[int]] = {}
        self._render_cache: dict[tuple[int, int, int, bool, bool], JSON] = {}
        self._build(items, sees)

    # ------------------------------------------------------------------ building
    def _build(self, items: Sequence[Item], sees: Callable[[Item], bool] | None) -> None:
        creates = [it for it in items if it.get("op") == "create"]
        wanted = {str(it["status"]["uri"]) for it in creates if sees is None or sees(it)}
        for it in creates:  # a server that has a boost also has the boosted original
            target = it["status"].get("reblog_uri")
            if str(it["status"]["uri"]) in wanted and target:
                wanted.add(str(target))
        used: set[int] = set()
        for it in sorted(creates, key=lambda i: float(i["at"])):
            status = it["status"]
            uri = str(status["uri"])
            if uri not in wanted or uri in self.by_uri:
                continue
            at = float(it["at"])
            local = self._host_of(status) == self.host
            h = stable_hash(self.host, uri)
            uid = snowflake(self.epoch_ms + round(at * 1000) + h % 1000, h >> 16)
            while uid in used:
                uid += 1
            used.add(uid)
            st = SimStatus(
                uid=uid,
                uri=uri,
                raw=status,
                at=at,
                visible_at=at + (0.0 if local else self.remote_delay_s),
                local=local,
            )
            target = status.get("reblog_uri")
            if target:
                st.boost_of = self.by_uri.get(str(target))
                if st.boost_of is None:
                    continue  # boost of something never created: ignore
            self.by_uid[uid] = st
            self.by_uri[uri] = st
        for it in items:
            target_st = self.by_uri.get(str(it.get("uri", "")))
            if target_st is None:
                continue
            delay = 0.0 if target_st.local else self.remote_delay_s
            when = float(it["at"])
            if it.get("op") == "edit":
                edit: Item = {k: v for k, v in it.items() if k not in ("at", "op", "uri")}
                target_st.edits.append((when + delay, when, edit))
            elif it.get("op") == "delete":
                self._delete(target_st, when + delay)
        for st in self.by_uid.values():
            st.edits.sort(key=lambda e: e[0])
            source = st.boost_of if st.boost_of is not None else st
            names = [t["name"] for t in source.raw.get("tags") or ()]
            for _, _, patch in source.edits:
                names += [t["name"] for t in patch.get("tags") or ()]
            st.all_tags = frozenset(normalise_tag(n) for n in names)
            if st.boost_of is not None and not self.include_boosts:
                continue
            for tag in st.all_tags:
                self.index.setdefault(tag, []).append(st.uid)
        for uids in self.index.values():
            uids.sort()

    def _delete(self, st: SimStatus, when: float) -> None:
        if st.deleted_at is None or when < st.deleted_at:
            st.deleted_at = when
        for other in self.by_uid.values():  # boosts go with their original
            if other.boost_of is st:
                self._delete(other, when)

    @staticmethod
    def _host_of(status: Item) -> str:
        acct = str(status["account"]["acct"])
        return acct.split("@", 1)[1] if "@" in acct else ""

    # ------------------------------------------------------------------ querying
    def candidates(self, tags: Iterable[str]) -> list[int]:
        key = frozenset(tags)
        if len(key) == 1:
            return self.index.get(next(iter(key)), [])
        cached = self._union_cache.get(key)
        if cached is None:
            merged: set[int] = set()
            for tag in key:
                merged.update(self.index.get(tag, ()))
            cached = self._union_cache[key] = sorted(merged)
        return cached

    def query(self, q: TimelineQuery, now: float) -> list[SimStatus]:
        """Statuses for a tag timeline request, newest first (like Mastodon)."""
        main = normalise_tag(q.tag)
        any_ = {normalise_tag(t) for t in q.any_[: self.LIMIT_PER_MODE]}
        all_ = {normalise_tag(t) for t in q.all_[: self.LIMIT_PER_MODE]}
        none_ = {normalise_tag(t) for t in q.none_[: self.LIMIT_PER_MODE]}
        wanted = {main} | any_
        uids = self.candidates(wanted)
        if q.limit <= 0 or not uids:
            return []
        # nothing created after `now` can be visible: bound the scan by id
        ceiling = snowflake(self.epoch_ms + int(now * 1000) + 1000, _SEQ_MASK)

        def ok(st: SimStatus) -> bool:
            if not st.visible(now):
                return False
            if (q.local and not st.local) or (q.remote and st.local):
                return False
            if q.only_media and not st.has_media():
                return False
            tags = st.tags(now)
            return bool(tags & wanted) and all_ <= tags and not tags & none_

        out: list[SimStatus] = []
        if q.min_id is not None:
            start = bisect_right(uids, q.min_id)
            stop = bisect_right(uids, ceiling)
            if q.max_id is not None:
                stop = min(stop, bisect_left(uids, q.max_id))
            for uid in uids[start:stop]:
                st = self.by_uid[uid]
                if ok(st):
                    out.append(st)
                    if len(out) >= q.limit:
                        break
            out.reverse()
            return out
        stop = bisect_right(uids, ceiling)
        if q.max_id is not None:
            stop = min(stop, bisect_left(uids, q.max_id))
        start = bisect_right(uids, q.since_id) if q.since_id is not None else 0
        for uid in reversed(uids[start:stop]):
            st = self.by_uid[uid]
            if ok(st):
                out.append(st)
                if len(out) >= q.limit:
                    break
        return out

    def get(self, uid: int, now: float) -> SimStatus | None:
        st = self.by_uid.get(uid)
        return st if st is not None and st.visible(now) else None

    def visible(self, now: float) -> Iterator[SimStatus]:
        """Everything this server would list in some tag timeline at `now`."""
        for st in self.by_uid.values():
            if st.visible(now) and (st.boost_of is None or self.include_boosts):
                yield st

    # ------------------------------------------------------------------ rendering
    def account_id(self, acct: str, fallback: str | None = None) -> str:
        host = acct.split("@", 1)[1] if "@" in acct else self.host
        if host == self.host and fallback:
            return fallback
        full = self.accounts.get(acct)
        created_ms = self.epoch_ms - 400 * 86400 * 1000
        if full and full.get("created_at"):
            created = datetime.fromisoformat(str(full["created_at"]).replace("Z", "+00:00"))
            created_ms = int(created.timestamp() * 1000)
        h = stable_hash(self.host, "account", acct)
        return str(snowflake(created_ms + h % 86_400_000, h >> 16))

    def _acct(self, acct: str) -> str:
        user, _, host = acct.partition("@")
        return user if host == self.host else acct

    def render_account(self, embedded: Item) -> JSON:
        acct = str(embedded["acct"])
        full = dict(self.accounts.get(acct) or {})
        merged: JSON = {**full, **{k: v for k, v in embedded.items() if k not in full}}
        local = "@" not in acct or acct.endswith("@" + self.host)
        user = acct.split("@", 1)[0]
        out: JSON = {
            "id": self.account_id(acct, str(embedded.get("id") or "") or None),
            "username": merged.get("username", user),
            "acct": self._acct(acct),
            "display_name": merged.get("display_name", ""),
            "locked": merged.get("locked", False),
            "bot": merged.get("bot", False),
            "discoverable": merged.get("discoverable", True),
            "indexable": merged.get("indexable", False),
            "group": merged.get("group", False),
            "created_at": merged.get("created_at", "2024-01-01T00:00:00.000Z"),
            "note": merged.get("note", ""),
            "url": merged.get("url", ""),
            "uri": merged.get("uri", merged.get("url", "")),
            "avatar": merged.get("avatar", ""),
            "avatar_static": merged.get("avatar_static", merged.get("avatar", "")),
            "header": merged.get("header", ""),
            "header_static": merged.get("header_static", merged.get("header", "")),
            "followers_count": merged.get("followers_count", 0),
            "following_count": merged.get("following_count", 0),
            "statuses_count": merged.get("statuses_count", 0),
            "last_status_at": merged.get("last_status_at"),
            "hide_collections": merged.get("hide_collections", False),
            "emojis": merged.get("emojis", []),
            "fields": merged.get("fields", []),
        }
        if local:  # Mastodon only serialises noindex for its own accounts
            out["noindex"] = merged.get("noindex", False)
        return out

    def _media(self, st: SimStatus, media: Sequence[Item]) -> list[JSON]:
        out = []
        for m in media:
            m2 = dict(m)
            if not st.local:
                h = stable_hash(self.host, "media", str(m.get("id")))
                m2["id"] = str(snowflake(self.epoch_ms + round(st.at * 1000), h))
                for key, remote_key in (
                    ("url", "remote_url"),
                    ("preview_url", "preview_remote_url"),
                ):
                    original = str(m.get(key) or "")
                    m2[remote_key] = original or None
                    path = original.split("/", 3)[3] if original.count("/") >= 3 else ""
                    m2[key] = f"https://media.{self.host}/cache/{path}" if path else None
            out.append(m2)
        return out

    def _count(self, st: SimStatus, value: Any) -> int:
        n = int(value or 0)
        return n if st.local else n * 2 // 3  # remote servers know fewer interactions

    def render(self, st: SimStatus, now: float, *, authed: bool = False) -> JSON:
        parent = self.by_uri.get(str(st.raw.get("in_reply_to_uri") or ""))
        parent_known = parent is not None and parent.visible_at <= now
        inner = st.boost_of.version(now) if st.boost_of is not None else 0
        key = (st.uid, st.version(now), inner, parent_known, authed)
        cached = self._render_cache.get(key)
        if cached is None:
            cached = self._render_cache[key] = self._render(st, now, parent_known, authed)
        return cached

    def _render(self, st: SimStatus, now: float, parent_known: bool, authed: bool) -> JSON:
        status, edited = st.current(now)
        parent = self.by_uri.get(str(status.get("in_reply_to_uri") or "")) if parent_known else None
        out: JSON = {
            "id": str(st.uid),
            "created_at": format_time(self.epoch + timedelta(seconds=st.at)),
            "in_reply_to_id": str(parent.uid) if parent else None,
            "in_reply_to_account_id": (
                self.account_id(
                    str(parent.raw["account"]["acct"]),
                    str(parent.raw["account"].get("id") or "") or None,
                )
                if parent
                else None
            ),
            "sensitive": bool(status.get("sensitive") or status.get("spoiler_text")),
            "spoiler_text": status.get("spoiler_text") or "",
            "visibility": status.get("visibility") or "public",
            "language": status.get("language"),
            "uri": st.uri,
            "url": status.get("url") or st.uri,
            "replies_count": self._count(st, status.get("replies_count")),
            "reblogs_count": self._count(st, status.get("reblogs_count")),
            "favourites_count": self._count(st, status.get("favourites_count")),
            "edited_at": (
                format_time(self.epoch + timedelta(seconds=edited)) if edited is not None else None
            ),
            "content": status.get("content") or "",
            "reblog": self.render(st.boost_of, now, authed=authed) if st.boost_of else None,
            "account": self.render_account(status["account"]),
            "media_attachments": self._media(st, status.get("media_attachments") or ()),
            "mentions": [
                {
                    "id": self.account_id(str(m["acct"]), str(m.get("id") or "") or None),
                    "username": m.get("username"),
                    "url": m.get("url"),
                    "acct": self._acct(str(m["acct"])),
                }
                for m in status.get("mentions") or ()
            ],
            "tags": [
                {"name": t["name"], "url": f"https://{self.host}/tags/{t['name']}"}
                for t in status.get("tags") or ()
            ],
            "emojis": list(status.get("emojis") or ()),
            "card": status.get("card"),
            "poll": status.get("poll"),
        }
        if authed:
            out.update(
                favourited=False, reblogged=False, muted=False, bookmarked=False, filtered=[]
            )
        return out
