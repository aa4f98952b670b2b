"""Automatic moderation rules. Pure: a post, the rules and the bans in; a verdict out.

Terms (blocklist and the built-in profanity list) match whole words only, see
aggregator.lexicon, so "Scunthorpe", "assessment" or "cockpit" never fire. Every verdict
names the rule that decided it, for the moderators' screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields
from typing import Any, Literal
from urllib.parse import urlsplit

from aggregator.lexicon import Lexicon, build_lexicon, find_term
from aggregator.model import Post

Action = Literal["show", "hide", "approve"]
MEDIA_MODES = ("any", "only", "none")

__all__ = [
    "MEDIA_MODES",
    "SHOW",
    "Lexicon",
    "Rules",
    "Verdict",
    "ascii_domain",
    "build_lexicon",
    "evaluate",
    "find_term",
    "normalise_handle",
    "texts_of",
]


@dataclass(frozen=True)
class Verdict:
    action: Action
    rule: str | None = None


SHOW = Verdict("show")


@dataclass(frozen=True)
class Rules:
    blocklist: tuple[str, ...] = ()
    profanity: bool = True
    allowlist: tuple[str, ...] = ()
    hide_replies: bool = False
    hide_boosts: bool = False
    hide_bots: bool = True
    languages: tuple[str, ...] = ()
    media: str = "any"
    hide_sensitive_media: bool = False
    honour_noindex: bool = True

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rules:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"{key}: unknown rule")
            default = getattr(cls(), key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key}: expected true or false")
                values[key] = value
            elif isinstance(default, tuple):
                if not isinstance(value, list | tuple) or not all(
                    isinstance(x, str) for x in value
                ):
                    raise ValueError(f"{key}: expected a list of strings")
                if len(value) > 5000 or any(len(x) > 200 for x in value):
                    raise ValueError(f"{key}: too many or too long entries")
                values[key] = tuple(x.strip() for x in value if x.strip())
            else:
                if value not in MEDIA_MODES:
                    raise ValueError(f"{key}: expected one of {', '.join(MEDIA_MODES)}")
                values[key] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def normalise_handle(handle: str) -> str:
    handle = handle.strip().casefold()
    return handle if handle.startswith(("@", "did:")) else f"@{handle}"


def _handle_domain(handle: str) -> str:
    # "@user@example.org" -> example.org; a Bluesky handle "@name.example.org" is a domain.
    bare = handle.lstrip("@")
    return bare.rsplit("@", 1)[-1] if "@" in bare else bare


def ascii_domain(name: str) -> str:
    """A domain as DNS knows it: casefolded, no stray dots, IDN labels in punycode, so a
    ban on "bücher.example" also catches "xn--bcher-kva.example" and the reverse."""
    name = name.strip().casefold().strip(".@")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:  # an over-long or malformed label: compare it as written
        return name


def _in_domains(host: str, domains: AbstractSet[str]) -> str | None:
    host = ascii_domain(host)
    if not host:
        return None
    for domain in sorted(domains):
        wanted = ascii_domain(domain)
        if wanted and (host == wanted or host.endswith("." + wanted)):
            return domain
    return None


def texts_of(post: Post) -> Iterable[str]:
    """Every piece of a post a screen may show."""
    yield post.text
    yield post.author.name
    yield post.spoiler_text
    for media in post.media:
        yield media.alt
    for link in post.links:
        yield link.title or ""
        yield link.description or ""


def evaluate(
    post: Post,
    rules: Rules,
    banned_authors: AbstractSet[str] = frozenset(),
    banned_domains: AbstractSet[str] = frozenset(),
    profanity: Lexicon | None = None,
    blocklist: Lexicon | None = None,
) -> Verdict:
    """Decide a post: the first rule that fires, in the order of the checks below.

    `profanity` is the built-in lexicon (`aggregator.profanity.builtin_profanity()`); the
    core reads no files, so the caller passes it, and without it `rules.profanity` has
    nothing to match. `blocklist` may be passed pre-built from `rules.blocklist`.
    """
    handle = normalise_handle(post.author.handle)
    author_id = post.provenance.author_id.casefold()
    if handle in banned_authors or (author_id and author_id in banned_authors):
        return Verdict("hide", "banned-author")
    if banned_domains:
        hit = _in_domains(_handle_domain(handle), banned_domains)
        for link in post.links:
            hit = hit or _in_domains(urlsplit(link.url).hostname or "", banned_domains)
        if hit:
            return Verdict("hide", f"banned-domain:{hit}")
    allowed = {normalise_handle(h) for h in rules.allowlist}
    if handle in allowed or (author_id and author_id in allowed):
        return Verdict("approve", "allowlist")
    prov = post.provenance
    if rules.honour_noindex and (prov.noindex or prov.discoverable is False):
        return Verdict("hide", "noindex")
    if rules.hide_bots and prov.bot:
        return Verdict("hide", "bot")
    if rules.hide_replies and post.reply_to:
        return Verdict("hide", "reply")
    if rules.hide_boosts and prov.boosted_by:
        return Verdict("hide", "boost")
    if rules.languages and post.language:
        wanted = {lang.casefold().split("-")[0] for lang in rules.languages}
        if post.language.casefold().split("-")[0] not in wanted:
            return Verdict("hide", f"language:{post.language}")
    if rules.media == "only" and not post.media:
        return Verdict("hide", "text-only")
    if rules.media == "none" and post.media:
        return Verdict("hide", "has-media")
    if rules.hide_sensitive_media and post.sensitive and post.media:
        return Verdict("hide", "sensitive-media")
    block = blocklist if blocklist is not None else build_lexicon(rules.blocklist)
    swear = profanity if rules.profanity else None
    for text in texts_of(post):
        term = find_term(text, block)
        if term:
            return Verdict("hide", f"blocklist:{term}")
        if swear is not None and find_term(text, swear):
            return Verdict("hide", "profanity")
    return SHOW
