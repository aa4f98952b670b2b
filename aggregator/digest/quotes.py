"""Find the lines people quoted from speakers. Pure: posts and session leaders in.

A quote is text in paired quotation marks of one of many languages, of a sensible
length, that is not just a session title. It is *confident* when it is attributed to a
known speaker: "— Name" after it, "Name:" or "@name says" before it, or a session leader
named in the same post. Unattributed candidates are listed for the organiser, never
published. Near-identical quotes from several people are grouped ("quoted by 4 people").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from aggregator.model import Post

PAIRS = (("“", "”"), ("„", "“"), ("«", "»"), ("「", "」"), ("”", "”"), ('"', '"'), ("‘", "’"))
MIN_CHARS, MAX_CHARS = 12, 300


def _pair_pattern(i: int, opening: str, closing: str) -> str:
    inner = rf"[^{re.escape(opening + closing)}\n]{{{MIN_CHARS},{MAX_CHARS}}}?"
    return rf"{re.escape(opening)}\s?(?P<q{i}>{inner})\s?{re.escape(closing)}"


_QUOTE = re.compile("|".join(_pair_pattern(i, a, b) for i, (a, b) in enumerate(PAIRS)))
_DASH_NAME = re.compile(r"^\s*[—–-]{1,2}\s*(@?[\w.@-]+(?:\s+[\w'-]+){0,3})")


@dataclass(frozen=True)
class Speaker:
    name: str
    handles: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuoteHit:
    text: str
    speaker: str | None
    post_id: str
    confident: bool


@dataclass
class Quote:
    text: str
    speaker: str | None
    posts: list[str] = field(default_factory=list)
    score: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "speaker": self.speaker, "posts": list(self.posts)}


@functools.lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    # Cached: session titles, rooms, leader and speaker names are folded for every post.
    if text.isascii():
        return text.lower()  # NFKC, NFKD and the accent strip change nothing in ASCII
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _named(text: str, speakers: Sequence[Speaker]) -> Speaker | None:
    folded = _fold(text)
    for speaker in speakers:
        names = [speaker.name, *speaker.handles]
        for name in names:
            needle = _fold(name).lstrip("@").split("@")[0] if name.startswith("@") else _fold(name)
            if (
                len(needle) >= 3
                and needle in folded
                and re.search(rf"(?<!\w)@?{re.escape(needle)}(?!\w)", folded)
            ):
                return speaker
    return None


def _looks_like_a_quote(text: str) -> bool:
    words = text.split()
    cjk = sum(1 for c in text if "\u3000" <= c <= "\u9fff")
    return len(words) >= 3 or cjk >= 6


def find_quotes(
    post: Post, speakers: Sequence[Speaker], titles: Iterable[str] = ()
) -> list[QuoteHit]:
    """Quotes in one post, attributed where the post says who said them."""
    text = post.text
    title_list = [_fold(t) for t in titles]
    hits = []
    for match in _QUOTE.finditer(text):
        quoted = next(v for k, v in match.groupdict().items() if v is not None).strip()
        if not _looks_like_a_quote(quoted):
            continue
        if any(fuzz.ratio(_fold(quoted), t) >= 90 for t in title_list):
            continue  # a session title in quotation marks, not something someone said
        after, before = text[match.end() :], text[: match.start()]
        speaker = None
        dash = _DASH_NAME.match(after)
        if dash:
            speaker = _named(dash.group(1), speakers)
        if speaker is None:
            lead = re.search(r"([\w@.' -]{2,60})(?::|\s+says|\s+sagt|\s+dit|\s+dice)\s*$", before)
            if lead:
                speaker = _named(lead.group(1), speakers)
        if speaker is None:
            speaker = _named(before + " " + after, speakers)
        hits.append(
            QuoteHit(quoted, speaker.name if speaker else None, post.id, speaker is not None)
        )
    return hits


def group_quotes(
    hits: Iterable[QuoteHit], engagement: Mapping[str, int] | None = None
) -> tuple[list[Quote], list[Quote]]:
    """(confident, candidates): near-identical quotes merged, best first."""
    engagement = engagement or {}
    confident: list[Quote] = []
    candidates: list[Quote] = []
    for hit in hits:
        target = confident if hit.confident else candidates
        for quote in target:
            same_speaker = quote.speaker == hit.speaker or None in (quote.speaker, hit.speaker)
            if same_speaker and fuzz.ratio(_fold(quote.text), _fold(hit.text)) >= 88:
                if hit.post_id not in quote.posts:
                    quote.posts.append(hit.post_id)
                quote.speaker = quote.speaker or hit.speaker
                break
        else:
            target.append(Quote(hit.text, hit.speaker, [hit.post_id]))
    for quote in (*confident, *candidates):
        quote.score = len(quote.posts) * 10 + sum(engagement.get(p, 0) for p in quote.posts)
    return (sorted(confident, key=lambda q: -q.score), sorted(candidates, key=lambda q: -q.score))
