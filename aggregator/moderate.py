"""Automatic moderation rules. Pure: a post, the rules and the bans in; a verdict out.

Terms match whole words only, casefolded and NFKC-normalised, with and without accents,
so "Scunthorpe", "assessment" or "cockpit" never fire. A term may be a phrase. Light
obfuscation is seen through: stretched letters ("fuuuck") and masks ("f*ck").
Every verdict names the rule that decided it, for the moderators' screen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields
from typing import Any, Literal
from urllib.parse import urlsplit

from aggregator.model import Post

Action = Literal["show", "hide", "approve"]
MEDIA_MODES = ("any", "only", "none")

_NON_WORD = re.compile(r"[^\w*]+")
_STRETCH = re.compile(r"(\w)\1{2,}")
_MASKED = re.compile(r"^\w+\*+\w*$|^\w*\*+\w+$")


@dataclass(frozen=True)
class Verdict:
    action: Action
    rule: str | None = None


SHOW = Verdict("show")


@dataclass(frozen=True)
class Lexicon:
    """Terms prepared for whole-word matching."""

    words: frozenset[str]
    phrases: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)


def fold(text: str) -> str:
    """Casefold + NFKC, punctuation to single spaces (keeping '*' for masks)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def build_lexicon(terms: Iterable[str]) -> Lexicon:
    words: set[str] = set()
    phrases: set[str] = set()
    for term in terms:
        for variant in {fold(term), strip_accents(fold(term))}:
            if not variant:
                continue
            (phrases if " " in variant else words).add(variant)
    return Lexicon(frozenset(words), tuple(sorted(phrases)))


def find_term(text: str, lexicon: Lexicon) -> str | None:
    """The first lexicon term that `text` contains as whole words, or None."""
    if not text or not lexicon:
        return None
    base = fold(text)
    for candidate in {base, strip_accents(base), _STRETCH.sub(r"\1", base)}:
        tokens = candidate.split()
        for token in tokens:
            if token in lexicon.words:
                return token
            if "*" in token and _MASKED.match(token):
                hit = _unmask(token, lexicon)
                if hit:
                    return hit
        padded = f" {candidate} "
        for phrase in lexicon.phrases:
            if f" {phrase} " in padded:
                return phrase
    return None


def _unmask(token: str, lexicon: Lexicon) -> str | None:
    pattern = re.compile(
        "".join(r"\w{1,3}" if c == "*" else re.escape(c) for c in re.sub(r"\*+", "*", token))
    )
    for word in lexicon.words:
        if abs(len(word) - len(token)) <= 2 and pattern.fullmatch(word):
            return word
    return None


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


def _in_domains(host: str, domains: AbstractSet[str]) -> str | None:
    host = host.casefold().strip(".")
    for domain in domains:
        if host == domain or host.endswith("." + domain):
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
    """Decide a post. `blocklist` may be passed pre-built from `rules.blocklist`."""
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
    if handle in allowed:
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
