"""Does a post carry one of the event's hashtags?

Matching is exact on normalised tags (NFKC, casefolded, no leading '#'): "#camp" never
matches "#bluelightcamp". `HashtagMatcher.might_match_raw` is a conservative prefilter
for undecoded frames: a False answer means the decoded frame cannot match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Any

BLUESKY_TAG_FEATURE = "app.bsky.richtext.facet#tag"

# Characters JSON encoders may write as short escapes (\" \\ \/ \b ...): a tag containing
# one of them might not appear literally in the raw frame.
_JSON_SHORT_ESCAPED = frozenset('"\\/\b\f\n\r\t')
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def normalise_tag(tag: str) -> str:
    """'#BlueLightCamp ' -> 'bluelightcamp'; NFKC first so full-width '＃ＢＬＣ' folds too."""
    if not isinstance(tag, str):
        return ""
    folded = unicodedata.normalize("NFKC", tag).strip().lstrip("#").casefold()
    return folded.strip()


def _fast_normalise(tag: str) -> str:
    # Almost every tag on the wire is plain ASCII with no '#' or padding: casefold is then
    # all normalise_tag would do, and it skips the NFKC call.
    folded = tag.casefold()
    if (
        folded
        and folded.isascii()
        and folded[0] != "#"
        and not folded[0].isspace()
        and not folded[-1].isspace()
    ):
        return folded
    return normalise_tag(tag)


@cache
def _ascii_lookalikes() -> dict[str, str]:
    """Every non-ASCII character whose NFKC+casefold contains an ASCII character.

    These are the only non-ASCII characters that can take part in spelling an ASCII tag
    (e.g. full-width 'ｂ', mathematical '𝐛', Kelvin sign 'K', 'ß' -> 'ss'). Built once per
    process (~0.2 s).
    """
    found: dict[str, str] = {}
    for code in range(0x80, 0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        if unicodedata.is_normalized("NFKC", char) and char.casefold() == char:
            continue
        folded = unicodedata.normalize("NFKC", char).casefold()
        if any(c.isascii() for c in folded):
            found[char] = folded
    return found


class HashtagMatcher:
    """Matches posts against the configured hashtags."""

    __slots__ = (
        "_alphabet",
        "_bytes_literal",
        "_escape_sensitive",
        "_lookalikes",
        "_non_ascii_tags",
        "_set",
        "_str_literal",
        "_tags",
    )

    def __init__(self, tags: Iterable[str]) -> None:
        ordered: list[str] = []
        for raw in tags:
            tag = normalise_tag(raw)
            if tag and tag not in ordered:
                ordered.append(tag)
        self._tags: tuple[str, ...] = tuple(ordered)
        self._set: frozenset[str] = frozenset(ordered)
        self._non_ascii_tags = any(not t.isascii() for t in ordered)
        self._escape_sensitive = any(
            c in _JSON_SHORT_ESCAPED or ord(c) < 0x20 for t in ordered for c in t
        )
        alphabet = {c for t in ordered for c in t}
        self._alphabet = frozenset(alphabet | {c.upper() for c in alphabet})
        # Built now (once per process, ~0.2 s) rather than on the first non-ASCII frame,
        # which would stall a live source.
        self._lookalikes: frozenset[str] = (
            frozenset(c for c, folded in _ascii_lookalikes().items() if set(folded) & alphabet)
            if ordered and not self._non_ascii_tags
            else frozenset()
        )
        if ordered:
            literal = "|".join(re.escape(t) for t in ordered)
            self._str_literal: re.Pattern[str] | None = re.compile(literal, re.IGNORECASE)
            self._bytes_literal: re.Pattern[bytes] | None = re.compile(
                literal.encode("utf-8", "surrogatepass"), re.IGNORECASE
            )
        else:
            self._str_literal = None
            self._bytes_literal = None

    @property
    def tags(self) -> tuple[str, ...]:
        """The configured tags, normalised, in configuration order."""
        return self._tags

    def __repr__(self) -> str:
        return f"HashtagMatcher({list(self._tags)!r})"

    # --- decoded posts -------------------------------------------------------------------

    def matches_tag(self, tag: str) -> bool:
        return isinstance(tag, str) and _fast_normalise(tag) in self._set

    def matches_tags(self, tags: Iterable[str]) -> bool:
        if isinstance(tags, str):
            tags = (tags,)
        wanted = self._set
        return any(isinstance(t, str) and _fast_normalise(t) in wanted for t in tags)

    def matched(self, tags: Iterable[str]) -> list[str]:
        """The configured tags present in `tags`, in configuration order."""
        if isinstance(tags, str):
            tags = (tags,)
        seen = {_fast_normalise(t) for t in tags if isinstance(t, str)}
        return [t for t in self._tags if t in seen]

    def matches_bluesky_record(self, record: object) -> bool:
        """Tag facets and the `tags` array of a raw app.bsky.feed.post record.

        Hot path (every Jetstream event): exact type checks and early returns, no
        intermediate lists; never raises on malformed records.
        """
        if type(record) is not dict:
            return False
        wanted = self._set
        facets = record.get("facets")
        if type(facets) is list:
            for facet in facets:
                if type(facet) is not dict:
                    continue
                features = facet.get("features")
                if type(features) is not list:
                    continue
                for feature in features:
                    if (
                        type(feature) is dict
                        and feature.get("$type") == BLUESKY_TAG_FEATURE
                        and type(tag := feature.get("tag")) is str
                        and _fast_normalise(tag) in wanted
                    ):
                        return True
        extra = record.get("tags")
        if type(extra) is list:
            for tag in extra:
                if type(tag) is str and _fast_normalise(tag) in wanted:
                    return True
        return False

    def matches_mastodon_status(self, status: object) -> bool:
        """`tags[].name` of a raw Mastodon Status, or of the status it boosts."""
        if type(status) is not dict:
            return False
        if self._status_tags_match(status):
            return True
        reblog = status.get("reblog")
        return type(reblog) is dict and self._status_tags_match(reblog)

    def _status_tags_match(self, status: dict[str, Any]) -> bool:
        tags = status.get("tags")
        if type(tags) is not list:
            return False
        wanted = self._set
        for tag in tags:
            if type(tag) is dict:
                name = tag.get("name")
                if type(name) is str and _fast_normalise(name) in wanted:
                    return True
        return False

    # --- undecoded frames ----------------------------------------------------------------

    def might_match_raw(self, raw: bytes | bytearray | memoryview | str) -> bool:
        """Cheap prefilter on an undecoded JSON frame; False only if no decoding of it can
        carry a configured tag. Spurious True is fine (the decoded check decides)."""
        if not self._tags:
            return False
        if isinstance(raw, str):
            literal = self._str_literal
            if literal is None or literal.search(raw) is not None:
                return True
            text = raw
            plain = raw.isascii()
        elif isinstance(raw, bytes | bytearray | memoryview):
            data = bytes(raw) if not isinstance(raw, bytes) else raw
            binary_literal = self._bytes_literal
            if binary_literal is None or binary_literal.search(data) is not None:
                return True
            plain = data.isascii()
            if plain and b"\\" not in data:
                return False
            text = data.decode("utf-8", "replace")
        else:
            return False
        has_backslash = "\\" in text
        if plain and not has_backslash:
            return False
        if self._escape_sensitive and has_backslash:
            return True
        if self._non_ascii_tags:
            # NFKC composition and full case folding make non-ASCII tags too slippery to
            # prefilter precisely; they are rare, so just let any non-ASCII frame through.
            return not plain or "\\u" in text
        if not plain and self._has_lookalike(text):
            return True
        if "\\u" in text:
            return self._escapes_could_spell_tag(text)
        return False

    def _has_lookalike(self, text: str) -> bool:
        # A set scan of the text runs in C; a regex class of ~700 mostly astral characters is
        # some fifty times slower.
        return not self._lookalikes.isdisjoint(text)

    def _escapes_could_spell_tag(self, text: str) -> bool:
        codes = [int(h, 16) for h in _UNICODE_ESCAPE.findall(text)]
        index = 0
        while index < len(codes):
            code = codes[index]
            # Adjacent \uD8xx\uDCxx escapes are one astral character (e.g. math bold 'b').
            if 0xD800 <= code <= 0xDBFF and index + 1 < len(codes):
                low = codes[index + 1]
                if 0xDC00 <= low <= 0xDFFF:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    index += 1
            index += 1
            char = chr(code)
            if char in self._alphabet or char in self._lookalikes:
                return True
        return False
