"""Generate the bundled synthetic unconference dataset (`unconference.json`).

    python -m aggregator.demo.generate            # rewrite the bundled file
    python -m aggregator.demo.generate --check    # exit 1 if the bundled file is stale

The output is a pure function of the tables in `content.py` and `SEED`: running it twice
gives byte-identical files. Statuses are Mastodon Status entities without the server-local
fields (`id`, `created_at`); the simulator fills those in. Cross references use global
URIs: `in_reply_to_uri` (parent) and `reblog_uri` (boosted original).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator.demo import content as c

SEED = 20261121
DATASET_PATH = Path(__file__).with_name("unconference.json")
EPOCH = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp() * 1000)
BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"

ACCOUNTS = {a.username: a for a in c.ACCOUNTS}
SESSIONS = {s.id: s for s in c.SESSIONS}


@dataclass
class Draft:
    at: int
    account: c.AccountSpec
    text: str
    lang: str = "en"
    session: str | None = None
    spoiler: str = ""
    photos: list[str | None] = field(default_factory=list)
    media_type: str = "image"
    parent: Draft | None = None
    boost_of: Draft | None = None
    card: dict[str, Any] | None = None
    quote: tuple[str, str] | None = None  # (text, speaker)
    writeup: str | None = None  # url of the write-up it links
    kind: str = "post"
    uri: str = ""
    url: str = ""
    number: int = 0
    deleted: bool = False
    edited: bool = False
    has_children: bool = False


# ---------------------------------------------------------------------------- rendering

_TOKEN = re.compile(
    r"(?P<url>https?://[^\s<]+[^\s<.,:;!?)\"'”»])"
    r"|(?P<mention>@(?P<mu>[A-Za-z0-9_]+)@(?P<mh>[A-Za-z0-9.-]+\.[A-Za-z]{2,}))"
    r"|(?P<tag>(?<![\w#/&])#(?P<tn>\w+))"
)
_EMOJI = re.compile(r":([a-z0-9_]+):")


def escape(text: str) -> str:
    """HTML-escape like Rails' `h()` (Mastodon's formatter)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _link_html(url: str) -> str:
    m = re.match(r"(https?://(?:www\.)?)(.*)", url)
    assert m is not None
    prefix, rest = m.groups()
    if len(rest) > 30:
        shown, tail, cls = rest[:30], rest[30:], "ellipsis"
    else:
        shown, tail, cls = rest, "", ""
    return (
        f'<a href="{escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{escape(prefix)}</span><span class="{cls}">{escape(shown)}'
        f'</span><span class="invisible">{escape(tail)}</span></a>'
    )


def render(text: str, host: str) -> tuple[str, list[str], list[str], list[str]]:
    """Mastodon-style HTML for plain `text`; also returns tags, mentioned accts, emoji."""
    tags: list[str] = []
    mentions: list[str] = []
    paragraphs = []
    for para in text.split("\n\n"):
        lines = []
        for line in para.split("\n"):
            out = []
            pos = 0
            for m in _TOKEN.finditer(line):
                out.append(escape(line[pos : m.start()]))
                pos = m.end()
                if m.group("url"):
                    out.append(_link_html(m.group("url")))
                elif m.group("mention"):
                    user, mhost = m.group("mu"), m.group("mh")
                    mentions.append(f"{user}@{mhost}")
                    out.append(
                        f'<span class="h-card" translate="no"><a href="https://{mhost}/@{user}" '
                        f'class="u-url mention">@<span>{user}</span></a></span>'
                    )
                else:
                    name = m.group("tn")
                    tags.append(name)
                    out.append(
                        f'<a href="https://{host}/tags/{name}" class="mention hashtag" '
                        f'rel="tag">#<span>{name}</span></a>'
                    )
            out.append(escape(line[pos:]))
            lines.append("".join(out))
        paragraphs.append("<p>" + "<br />".join(lines) + "</p>")
    emojis = [e for e in _EMOJI.findall(text) if e in c.CUSTOM_EMOJI]
    return "".join(paragraphs), tags, mentions, emojis


def unique_casefold(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for n in names:
        if n.casefold() not in seen:
            seen.add(n.casefold())
            out.append(n)
    return out


# ---------------------------------------------------------------------------- generator


class Generator:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.drafts: list[Draft] = []
        self.edits: list[dict[str, Any]] = []
        self.deletes: list[tuple[int, Draft]] = []
        self.used_numbers: set[int] = set()
        self.posters = [a for a in c.ACCOUNTS if a.weight > 0]

    # -- helpers
    def pick_account(self, exclude: tuple[str, ...] = ()) -> c.AccountSpec:
        pool = [a for a in self.posters if a.username not in exclude]
        return self.rng.choices(pool, weights=[a.weight for a in pool])[0]

    def event_tags(self) -> str:
        return self.rng.choices(
            ["#blc26", "#BlueLightCamp", "#bluelightcamp #blc26", "#BLC26", "#bluelightcamp"],
            weights=[40, 20, 15, 8, 17],
        )[0]

    def leader_ref(self, session: c.SessionSpec, poster: c.AccountSpec) -> str:
        leader = self.rng.choice(session.leaders)
        if leader.account and leader.account != poster.username and self.rng.random() < 0.4:
            return "@" + ACCOUNTS[leader.account].acct
        return leader.name

    def add(self, draft: Draft) -> Draft:
        self.drafts.append(draft)
        return draft

    # -- content
    def session_posts(self, s: c.SessionSpec) -> None:
        rng = self.rng
        leader_accounts = [ACCOUNTS[ld.account] for ld in s.leaders if ld.account]
        for la in leader_accounts[:1]:
            self.add(
                Draft(
                    s.start_s - rng.randint(60, 400),
                    la,
                    rng.choice(c.LEADER_TEMPLATES["start"]).format(title=s.title, room=s.room)
                    + " "
                    + self.event_tags()
                    + (f" #{s.hashtag}" if s.hashtag else ""),
                    session=s.id,
                )
            )
            self.add(
                Draft(
                    s.end_s + rng.randint(120, 900),
                    la,
                    rng.choice(c.LEADER_TEMPLATES["end"]).format(
                        title=s.title, room=s.room, point=rng.choice(s.points)
                    )
                    + " "
                    + self.event_tags(),
                    session=s.id,
                )
            )
        # quotes: each at least once, some twice (by different people)
        for lang, text, idx in s.quotes:
            speaker = s.leaders[idx]
            for _ in range(2 if rng.random() < 0.3 else 1):
                exclude: tuple[str, ...] = (speaker.account,) if speaker.account else ()
                acc = self.pick_account(exclude)
                style = rng.choice(c.QUOTE_STYLES.get(lang, c.QUOTE_STYLES["en"]))
                body = style.format(q=text, name=speaker.name, room=s.room, title=s.title)
                tags = self.event_tags()
                if s.hashtag and rng.random() < 0.5:
                    tags += f" #{s.hashtag}"
                self.add(
                    Draft(
                        rng.randint(s.start_s + 300, s.end_s - 60),
                        acc,
                        f"{body}\n\n{tags}",
                        lang=lang,
                        session=s.id,
                        quote=(text, speaker.name),
                        kind="quote",
                    )
                )
        n = s.weight - len(s.quotes) - 2 * len(leader_accounts[:1]) + rng.randint(-2, 2)
        photos = list(s.photos)
        for i in range(max(n, 4)):
            exclude = tuple(ld.account for ld in s.leaders if ld.account)
            acc = self.pick_account(exclude)
            at = rng.randint(s.start_s + 60, s.end_s + 240)
            point, point2 = rng.sample(s.points, 2)
            lang = "en"
            if acc.lang in c.SESSION_TEMPLATES and acc.lang != "en" and rng.random() < 0.55:
                lang = acc.lang
            templates = c.SESSION_TEMPLATES[lang]
            if lang == "en" and not s.questions:
                templates = tuple(t for t in templates if "{question}" not in t)
            body = rng.choice(templates).format(
                title=s.title,
                room=s.room,
                leader=self.leader_ref(s, acc),
                point=point,
                point2=point2,
                question=rng.choice(s.questions) if s.questions else "",
            )
            tags = self.event_tags()
            if s.hashtag and rng.random() < 0.5:
                tags = f"#{s.hashtag} {tags}" if rng.random() < 0.3 else f"{tags} #{s.hashtag}"
            sep = "\n\n" if "\n" in body or rng.random() < 0.3 else " "
            d = Draft(at, acc, body + sep + tags, lang=lang, session=s.id)
            if photos and (i % 4 == 1 or rng.random() < 0.1):
                d.photos = [photos.pop(0)]
            self.add(d)

    def general_posts(self) -> None:
        rng = self.rng
        windows = {
            "before": [(-5400, -600)],
            "morning": [(300, 2600)],
            "break": [(2700, 3000), (5700, 6600), (16200, 17100)],
            "lunch": [(9300, 13500)],
            "open_space": [(19800, 27000)],
            "after": [(30600, 40000)],
        }
        for bucket, texts in c.GENERAL_POSTS.items():
            for text in texts:
                lo, hi = rng.choice(windows[bucket])
                lang = "en"
                if text.startswith(("Morgen", "Danke")):
                    lang = "de"
                elif text.startswith("Merci"):
                    lang = "fr"
                acc = self.pick_account()
                if lang != "en":
                    acc = self.rng.choice([a for a in self.posters if a.lang == lang])
                d = self.add(Draft(rng.randint(lo, hi), acc, text, lang=lang))
                if bucket in ("lunch", "morning", "open_space") and rng.random() < 0.35:
                    d.photos = [rng.choice(c.PHOTO_GENERAL)]
        for spoiler, text, bucket in c.CW_POSTS:
            if bucket in SESSIONS:
                s = SESSIONS[bucket]
                lo, hi, session = s.end_s - 600, s.end_s + 1200, bucket
            else:
                lo, hi = rng.choice(windows[bucket])
                session = None
            d = self.add(
                Draft(
                    rng.randint(lo, hi), self.pick_account(), text, spoiler=spoiler, session=session
                )
            )
            if spoiler in ("lunch pics", "eye contact"):
                d.photos = [rng.choice(c.PHOTO_GENERAL), rng.choice(c.PHOTO_GENERAL)]
                if spoiler == "eye contact":
                    d.photos = d.photos[:1]
        official = ACCOUNTS["bluelightcamp"]
        for at, text in c.OFFICIAL_POSTS:
            d = self.add(Draft(at, official, text + " :blc_lamp:" * (at < 0)))
        # the schedule bot, five minutes before each slot
        for slot in c.SLOT_STARTS:
            sessions = [s for s in c.SESSIONS if s.start_s == slot]
            hh, mm = divmod(9 * 60 + slot // 60, 60)
            lines = "\n".join(
                f"{s.room}: {s.title}" + (f" #{s.hashtag}" if s.hashtag else "") for s in sessions
            )
            text = c.BOT_TEMPLATE.format(time=f"{hh:02d}:{mm:02d}", lines=lines) + "\n\n#blc26"
            self.add(Draft(slot - 300, ACCOUNTS["blcbot"], text))
        # a short gif and a video
        self.add(
            Draft(
                rng.randint(27200, 29000),
                ACCOUNTS["samwise"],
                "The closing circle, sped up. #BlueLightCamp",
                photos=["Time-lapse of a hundred people forming a circle in a hall."],
                media_type="gifv",
                session="close",
            )
        )
        self.add(
            Draft(
                rng.randint(13600, 16000),
                ACCOUNTS["priya"],
                "Listen to what the kids' club coded last month! #blc26",
                photos=["A short video of a laptop playing a drum loop while code scrolls."],
                media_type="video",
                session="C2",
            )
        )

    def writeups(self) -> None:
        rng = self.rng
        for user, url, title, desc, covers in c.WRITEUPS:
            acc = ACCOUNTS[user]
            first = covers.split(",")[0]
            session_titles = [SESSIONS[x].title for x in covers.split(",") if x in SESSIONS]
            lang = {"jonas": "de", "camille": "fr"}.get(user, "en")
            if lang == "de":
                text = f"Mein Rückblick auf das #BlueLightCamp ist online: {url}"
            elif lang == "fr":
                text = f"Mon compte rendu du #BlueLightCamp est en ligne : {url}"
            else:
                text = rng.choice(
                    [
                        "I wrote up my notes from #BlueLightCamp, mostly about “{t}”: {u}",
                        "Blog post: {u} — everything I remember from “{t}” at #blc26",
                        "New post on my blog about #BlueLightCamp and “{t}”. {u}",
                    ]
                ).format(t=session_titles[0] if session_titles else "the day", u=url)
            at = c.EVENT_DURATION_S + rng.randint(1500, 4 * 3600)
            if user == "sigrid":  # slides go up right after the session
                at = SESSIONS["C3"].end_s + rng.randint(600, 1800)
            host = url.split("/")[2]
            card = {
                "url": url,
                "title": title,
                "description": desc,
                "language": lang,
                "type": "link",
                "author_name": acc.display_name.split(" :")[0],
                "author_url": "",
                "provider_name": host,
                "provider_url": "",
                "html": "",
                "width": 1200,
                "height": 630,
                "image": f"https://{host}/og-image.png",
                "image_description": "",
                "embed_url": "",
                "blurhash": self.blurhash(),
                "published_at": (EPOCH + timedelta(seconds=at - 600)).strftime(
                    "%Y-%m-%dT%H:%M:%S.000Z"
                ),
                "authors": [],
            }
            d = self.add(
                Draft(
                    at,
                    acc,
                    text,
                    lang=lang,
                    session=first if "," not in covers else None,
                    card=card,
                    writeup=url,
                    kind="writeup",
                )
            )
            # someone else shares it later
            if rng.random() < 0.6:
                other = self.pick_account((user,))
                share = f"Great recap by @{acc.acct}: {url} #blc26"
                self.add(
                    Draft(
                        d.at + rng.randint(300, 5400),
                        other,
                        share,
                        session=d.session,
                        card=card,
                        writeup=url,
                        kind="writeup",
                    )
                )

    def custom_emoji(self) -> None:
        rng = self.rng
        for d in self.drafts:
            shortcodes = [k for k, h in c.CUSTOM_EMOJI.items() if h == d.account.host]
            if shortcodes and d.kind == "post" and not d.account.bot and rng.random() < 0.12:
                d.text = d.text.replace(" #", f" :{rng.choice(shortcodes)}: #", 1)

    def replies(self) -> None:
        rng = self.rng
        candidates = [
            d
            for d in self.drafts
            if not d.account.bot and d.kind in ("post", "quote") and 0 <= d.at < c.EVENT_DURATION_S
        ]
        parents = rng.sample(candidates, 42)
        parents.sort(key=lambda d: d.at)
        new: list[Draft] = []
        for p in parents:
            for depth in range(2 if rng.random() < 0.25 else 1):
                parent = p if depth == 0 else new[-1]
                acc = self.pick_account((parent.account.username,))
                s = SESSIONS.get(parent.session or "")
                other_rooms = [r for r in c.ROOMS if s is None or r != s.room]
                text = rng.choice(c.REPLY_TEMPLATES).format(
                    point=rng.choice(s.points) if s else "the coffee was excellent",
                    other_room=rng.choice(other_rooms),
                    leader=s.leaders[0].name if s else "the organisers",
                )
                body = f"@{parent.account.acct} {text} {self.event_tags()}"
                r = Draft(
                    parent.at + rng.randint(60, 1500),
                    acc,
                    body,
                    session=parent.session,
                    parent=parent,
                    kind="reply",
                )
                parent.has_children = True
                new.append(r)
        self.drafts.extend(new)

    def boosts(self) -> None:
        rng = self.rng
        candidates = [
            d for d in self.drafts if not d.account.bot and d.kind != "reply" and d.at >= 0
        ]
        for orig in rng.sample(candidates, 36):
            acc = self.pick_account((orig.account.username,))
            self.add(
                Draft(
                    orig.at + rng.randint(90, 2400),
                    acc,
                    "",
                    lang="",
                    boost_of=orig,
                    session=orig.session,
                    kind="boost",
                )
            )

    def mistakes(self) -> None:
        """Edits and deletes."""
        rng = self.rng
        ordered = sorted(self.drafts, key=lambda d: d.at)
        plain = [
            d
            for d in ordered
            if d.kind == "post"
            and d.lang == "en"
            and not d.account.bot
            and 0 < d.at < 27000
            and not d.spoiler
            and not d.photos
        ]
        boosted = {id(d.boost_of) for d in ordered if d.boost_of is not None}
        # 1. a duplicate post, deleted a minute later
        dup_src = plain[5]
        dup = self.add(
            Draft(dup_src.at + 15, dup_src.account, dup_src.text, session=dup_src.session)
        )
        self.deletes.append((dup.at + 75, dup))
        # 2. wrong room, deleted and corrected
        b2 = SESSIONS["B2"]
        wrong = self.add(
            Draft(
                b2.start_s - 500,
                ACCOUNTS["samwise"],
                f"“{b2.title}” is in Beacon! #blc26 #{b2.hashtag}",
                session="B2",
            )
        )
        self.deletes.append((wrong.at + 240, wrong))
        self.add(
            Draft(
                wrong.at + 250,
                ACCOUNTS["samwise"],
                f"Correction: “{b2.title}” is in {b2.room}, not Beacon. Sorry! "
                f"#blc26 #{b2.hashtag}",
                session="B2",
            )
        )
        # 3. a boosted post deleted later (its boosts disappear with it)
        victim = next(
            d
            for d in ordered
            if id(d) in boosted and d.kind == "post" and not d.has_children and d.at > 9000
        )
        last_boost = max(b.at for b in self.drafts if b.boost_of is victim)
        self.deletes.append((last_boost + 600, victim))
        # 4. a reply deleted
        reply = next(
            d
            for d in ordered
            if d.kind == "reply" and not d.has_children and id(d) not in boosted and d.at > 15000
        )
        self.deletes.append((reply.at + 300, reply))
        # 5. an unboost
        boost = next(
            d for d in ordered if d.kind == "boost" and d.boost_of is not victim and d.at > 20000
        )
        self.deletes.append((boost.at + 900, boost))
        # 6. a lunch photo deleted in the evening
        lunch = next(
            d
            for d in ordered
            if d.photos
            and 9300 < d.at < 13500
            and id(d) not in boosted
            and not d.has_children
            and d.kind == "post"
        )
        self.deletes.append((36000, lunch))
        for _, d in self.deletes:
            d.deleted = True

        # edits: typo fixes, session hashtags added, a CW, alt text added, an appended note
        free = [d for d in plain if not d.deleted and not d.has_children and " the " in d.text]
        for d in free[3:6]:
            d.text = d.text.replace(" the ", " teh ", 1)
            d.edited = True
            self.edits.append({"at": d.at + rng.randint(60, 400), "draft": d, "kind": "typo"})
        tagless = [
            d
            for d in plain
            if d.session
            and SESSIONS[d.session].hashtag
            and not d.deleted
            and not d.edited
            and f"#{SESSIONS[d.session].hashtag}" not in d.text
        ]
        for d in tagless[10:13]:
            d.edited = True
            self.edits.append({"at": d.at + rng.randint(120, 900), "draft": d, "kind": "tag"})
        cw = next(d for d in plain if not d.deleted and not d.edited and d.at > 14000)
        cw.edited = True
        self.edits.append({"at": cw.at + 180, "draft": cw, "kind": "cw"})
        photo_posts = [
            d
            for d in ordered
            if d.photos
            and d.kind == "post"
            and not d.deleted
            and not d.spoiler
            and len(d.photos) == 1
            and d.media_type == "image"
        ]
        for d in photo_posts[2:4]:
            d.edited = True
            d.photos = [None]  # posted without alt text first
            self.edits.append(
                {
                    "at": d.at + rng.randint(240, 900),
                    "draft": d,
                    "kind": "alt",
                    "alt": rng.choice(c.PHOTO_GENERAL),
                }
            )
        note = next(d for d in plain if not d.deleted and not d.edited and d.at > 20000)
        note.edited = True
        self.edits.append({"at": note.at + 420, "draft": note, "kind": "note"})
        # two more images without any alt text, never fixed
        for d in photo_posts[6:8]:
            if not d.edited:
                d.photos = [None]

    # -- ids and entities
    def snowflake(self, at_ms: int) -> int:
        while True:
            n = (at_ms << 16) | self.rng.randint(0, 0xFFFF)
            if n not in self.used_numbers:
                self.used_numbers.add(n)
                return n

    def blurhash(self) -> str:
        return "".join(self.rng.choice(BASE83) for _ in range(28))

    def media(self, host: str, alt: str | None, kind: str, at: int) -> dict[str, Any]:
        rng = self.rng
        mid = self.snowflake(EPOCH_MS + at * 1000)
        digits = f"{mid:018d}"
        path = "/".join(digits[i : i + 3] for i in range(0, 9, 3))
        name = f"{rng.getrandbits(64):016x}"
        ext = {"image": "jpg", "gifv": "mp4", "video": "mp4"}[kind]
        w, h = rng.choice([(1600, 1200), (1200, 1600), (1920, 1080), (1080, 1080)])
        small = (640, round(640 * h / w))
        meta: dict[str, Any] = {
            "original": {"width": w, "height": h, "size": f"{w}x{h}", "aspect": round(w / h, 6)},
            "small": {
                "width": small[0],
                "height": small[1],
                "size": f"{small[0]}x{small[1]}",
                "aspect": round(w / h, 6),
            },
        }
        if kind != "image":
            meta["original"].update({"frame_rate": "30/1", "duration": 7.5, "bitrate": 1200000})
        return {
            "id": str(mid),
            "type": kind,
            "url": f"https://media.{host}/media_attachments/files/{path}/original/{name}.{ext}",
            "preview_url": f"https://media.{host}/media_attachments/files/{path}/small/{name}.png",
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": meta,
            "description": alt,
            "blurhash": self.blurhash(),
        }

    def account_entity(self, a: c.AccountSpec, full: bool) -> dict[str, Any]:
        rng = random.Random(f"{SEED}:{a.acct}")
        created = datetime(2022, 11, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 1000))
        aid = (int(created.timestamp() * 1000) << 16) | rng.randint(0, 0xFFFF)
        digits = f"{aid:018d}"
        path = "/".join(digits[i : i + 3] for i in range(0, 9, 3))
        avatar = f"https://media.{a.host}/accounts/avatars/{path}/original/{rng.getrandbits(64):016x}.png"
        emojis = []
        if a.name_emoji:
            emojis.append(self.emoji_entity(a.name_emoji))
        entity: dict[str, Any] = {
            "id": str(aid),
            "username": a.username,
            "acct": a.acct,
            "display_name": a.display_name,
            "url": f"https://{a.host}/@{a.username}",
            "avatar": avatar,
            "avatar_static": avatar,
            "bot": a.bot,
            "discoverable": a.discoverable,
            "noindex": a.noindex,
            "emojis": emojis,
        }
        if full:
            header = avatar.replace("/avatars/", "/headers/")
            entity.update(
                {
                    "uri": f"https://{a.host}/users/{a.username}",
                    "locked": False,
                    "group": False,
                    "indexable": a.discoverable and not a.noindex,
                    "created_at": created.strftime("%Y-%m-%dT00:00:00.000Z"),
                    "note": f"<p>{escape(a.note)}</p>" if a.note else "",
                    "header": header,
                    "header_static": header,
                    "followers_count": rng.randint(20, 2400),
                    "following_count": rng.randint(20, 900),
                    "statuses_count": rng.randint(50, 9000),
                    "last_status_at": "2026-11-21",
                    "hide_collections": False,
                    "fields": [],
                    "roles": [],
                }
            )
        return entity

    @staticmethod
    def emoji_entity(shortcode: str) -> dict[str, Any]:
        host = c.CUSTOM_EMOJI[shortcode]
        url = f"https://media.{host}/custom_emojis/images/original/{shortcode}.png"
        return {
            "shortcode": shortcode,
            "url": url,
            "static_url": url.replace("/original/", "/static/"),
            "visible_in_picker": True,
        }

    def status(self, d: Draft) -> dict[str, Any]:
        rng = self.rng
        html, tags, mention_accts, emojis = render(d.text, d.account.host)
        tag_names = unique_casefold(tags)
        mentions = []
        for acct in unique_casefold(mention_accts):
            user, host = acct.split("@", 1)
            ent = self.account_entity(ACCOUNTS[user], False) if user in ACCOUNTS else None
            mentions.append(
                {
                    "id": ent["id"] if ent else str(rng.getrandbits(60)),
                    "username": user,
                    "url": f"https://{host}/@{user}",
                    "acct": acct,
                }
            )
        media = [self.media(d.account.host, alt, d.media_type, d.at) for alt in d.photos]
        sensitive = bool(d.spoiler)
        reply_count = 0
        status: dict[str, Any] = {
            "uri": d.uri,
            "url": d.url,
            "account": self.account_entity(d.account, False),
            "in_reply_to_uri": d.parent.uri if d.parent else None,
            "reblog_uri": d.boost_of.uri if d.boost_of else None,
            "reblog": None,
            "content": html if not d.boost_of else "",
            "spoiler_text": d.spoiler,
            "sensitive": sensitive,
            "visibility": "public",
            "language": (d.lang or None) if not d.boost_of else None,
            "edited_at": None,
            "favourites_count": 0 if d.boost_of else rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21]),
            "reblogs_count": 0,
            "replies_count": reply_count,
            "tags": [
                {"name": t.lower(), "url": f"https://{d.account.host}/tags/{t.lower()}"}
                for t in tag_names
            ],
            "mentions": mentions,
            "emojis": [self.emoji_entity(e) for e in unique_casefold(emojis)],
            "media_attachments": media,
            "card": d.card,
            "poll": None,
        }
        return status

    # -- driver
    def build(self) -> dict[str, Any]:
        for s in c.SESSIONS:
            self.session_posts(s)
        self.general_posts()
        self.writeups()
        self.custom_emoji()
        self.drafts.sort(key=lambda d: d.at)
        self.replies()
        self.drafts.sort(key=lambda d: d.at)
        self.boosts()
        self.drafts.sort(key=lambda d: d.at)
        self.mistakes()
        self.drafts.sort(key=lambda d: d.at)

        for d in self.drafts:
            n = self.snowflake(EPOCH_MS + d.at * 1000 + self.rng.randint(0, 999))
            d.number = n
            base = f"https://{d.account.host}/users/{d.account.username}/statuses/{n}"
            if d.boost_of:
                d.uri = d.url = base + "/activity"
            else:
                d.uri = base
                d.url = f"https://{d.account.host}/@{d.account.username}/{n}"

        statuses = {id(d): self.status(d) for d in self.drafts}
        for d in self.drafts:  # counts the origin server knows about
            if d.parent is not None:
                statuses[id(d.parent)]["replies_count"] += 1
            if d.boost_of is not None:
                statuses[id(d.boost_of)]["reblogs_count"] += 1

        items: list[dict[str, Any]] = [
            {"at": d.at, "op": "create", "session": d.session, "status": statuses[id(d)]}
            for d in self.drafts
        ]
        for e in self.edits:
            items.append(self.edit_item(e, statuses[id(e["draft"])]))
        for at, d in self.deletes:
            items.append({"at": at, "op": "delete", "uri": d.uri})
        order = {"create": 0, "edit": 1, "delete": 2}
        items.sort(key=lambda it: (it["at"], order[it["op"]]))
        return {
            "event": {
                "name": c.EVENT_NAME,
                "hashtags": list(c.EVENT_HASHTAGS),
                "timezone": c.EVENT_TIMEZONE,
                "start": c.EVENT_START_LOCAL,
                "duration_s": c.EVENT_DURATION_S,
            },
            "sessions": [self.session_entity(s) for s in c.SESSIONS],
            "accounts": [self.account_entity(a, True) for a in c.ACCOUNTS],
            "items": items,
            "expected": self.expected(),
        }

    def edit_item(self, e: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        d: Draft = e["draft"]
        item: dict[str, Any] = {"at": e["at"], "op": "edit", "uri": d.uri}
        kind = e["kind"]
        if kind == "typo":
            item["content"] = render(d.text.replace(" teh ", " the ", 1), d.account.host)[0]
        elif kind == "tag":
            assert d.session is not None
            tag = SESSIONS[d.session].hashtag
            text = f"{d.text} #{tag}"
            html, tags, _, _ = render(text, d.account.host)
            item["content"] = html
            item["tags"] = [
                {"name": t.lower(), "url": f"https://{d.account.host}/tags/{t.lower()}"}
                for t in unique_casefold(tags)
            ]
        elif kind == "cw":
            item["content"] = status["content"]
            item["spoiler_text"] = "long, sorry"
            item["sensitive"] = True
        elif kind == "alt":
            media = [dict(m) for m in status["media_attachments"]]
            media[0]["description"] = e["alt"]
            item["content"] = status["content"]
            item["media_attachments"] = media
        else:
            item["content"] = render(
                d.text + "\n\nEdit: slides are online now, see the session board.", d.account.host
            )[0]
        return item

    def session_entity(self, s: c.SessionSpec) -> dict[str, Any]:
        return {
            "id": s.id,
            "title": s.title,
            "room": s.room,
            "start_s": s.start_s,
            "end_s": s.end_s,
            "leaders": [
                {"name": ld.name, "handle": f"@{ACCOUNTS[ld.account].acct}" if ld.account else None}
                for ld in s.leaders
            ],
            "hashtag": s.hashtag,
        }

    def expected(self) -> dict[str, Any]:
        originals = [d for d in self.drafts if d.boost_of is None]
        boosts = [d for d in self.drafts if d.boost_of is not None]
        visible = [d.uri for d in originals if not d.deleted]
        visible_boosts = [
            d.uri for d in boosts if not d.deleted and not (d.boost_of and d.boost_of.deleted)
        ]
        quotes: dict[tuple[str, str], list[str]] = {}
        for d in originals:
            if d.quote and not d.deleted:
                quotes.setdefault(d.quote, []).append(d.uri)
        writeups: dict[str, list[str]] = {}
        for d in originals:
            if d.writeup and not d.deleted:
                writeups.setdefault(d.writeup, []).append(d.uri)
        return {
            "visible_uris": visible,
            "visible_boost_uris": visible_boosts,
            "deleted_uris": [d.uri for _, d in sorted(self.deletes, key=lambda x: x[0])],
            "edited_uris": [e["draft"].uri for e in sorted(self.edits, key=lambda e: e["at"])],
            "pre_event_uris": [d.uri for d in originals if d.at < 0 and not d.deleted],
            "after_event_uris": [
                d.uri for d in originals if d.at >= c.EVENT_DURATION_S and not d.deleted
            ],
            "quotes": [
                {"text": t, "speaker": sp, "uris": uris} for (t, sp), uris in quotes.items()
            ],
            "writeups": [{"url": u, "uris": uris} for u, uris in writeups.items()],
            "counts": {
                "creates": len(self.drafts),
                "posts": len(originals),
                "boosts": len(boosts),
                "replies": sum(1 for d in originals if d.parent is not None),
                "edits": len(self.edits),
                "deletes": len(self.deletes),
                "authors": len({d.account.acct for d in self.drafts}),
                "instances": len({d.account.host for d in self.drafts}),
            },
        }


def build_dataset(seed: int = SEED) -> dict[str, Any]:
    """The dataset as a dict (deterministic for a given seed)."""
    return Generator(seed).build()


def dumps_dataset(data: dict[str, Any]) -> str:
    """Serialise with one list element per line: stable, diffable, compact."""

    def one(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            body = ",\n".join(one(v) for v in value)
            parts.append(f"{one(key)}:[\n{body}\n]")
        elif key == "expected":
            parts.append(f"{one(key)}:{json.dumps(value, ensure_ascii=False, indent=1)}")
        else:
            parts.append(f"{one(key)}:{one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DATASET_PATH, help="where to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    text = dumps_dataset(build_dataset())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale; run python -m aggregator.demo.generate", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    counts = json.loads(text)["expected"]["counts"]
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
