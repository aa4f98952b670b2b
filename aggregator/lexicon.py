"""Whole-word term matching for the moderation rules. Pure: strings in, a term out.

Text and terms are compared as whole words after NFKC + casefold, with and without
accents, so "Scunthorpe", "assessment" or "cockpit" never match a listed word. Light
obfuscation is seen through, but only ever by producing extra spellings of the text that
must then match a listed word exactly: stretched letters ("fuuuck"), masks with the right
number of hidden letters ("f*ck", "s**t"), digits and symbols for letters ("sh1t", "b!tch"),
look-alike Cyrillic/Greek letters inside a Latin word, and spaced letters ("f u c k").

A term starting with "=" keeps its accents: "=coño" must not match the Spanish "cono"
(cone), which is what stripping its accent would give.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_NON_WORD = re.compile(r"[^\w*]+")
_STRETCH = re.compile(r"(\w)\1{2,}")
_MASKED = re.compile(r"^\w+\*+\w*$|^\w*\*+\w+$")
_STAR_RUN = re.compile(r"\*+")
_BANG_IN_WORD = re.compile(r"(?<=[^\W\d_])!(?=[^\W\d_])")
# Stand-ins people type for letters. "!" only counts between letters ("b!tch"), never as
# punctuation, and the result only matters if it is a listed word.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "9": "g"})
_LEET_SYMBOLS = str.maketrans({"@": "a", "$": "s"})
# Cyrillic and Greek letters that look like Latin ones once lower-cased. Applied only to
# words that also contain a Latin letter, so real Russian or Greek text is left alone.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "с": "c", "е": "e", "о": "o", "р": "p", "х": "x", "у": "y", "к": "k",
        "і": "i", "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g",
        "ο": "o", "α": "a", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "υ": "u", "χ": "x",
    }
)  # fmt: skip
_CONFUSABLE_CHARS = frozenset("асеорхукіјѕһԁԛԝɡοανικρυχ")
# A stand-in touching a letter: "sh1t", "$hit", "a55"; not "2026" or "post 15".
_LEET_NEXT_TO_LETTER = re.compile(r"[^\W\d_][0134579@$]|[0134579@$][^\W\d_]|[^\W\d_]![^\W\d_]")
_MIN_MASKED = 4  # "f***" is a word with a mask; "pu*" or "*a" could be anything
_MIN_SPACED = 4


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
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def build_lexicon(terms: Iterable[str]) -> Lexicon:
    words: set[str] = set()
    phrases: set[str] = set()
    for raw in terms:
        exact = raw.startswith("=")
        term = fold(raw[1:] if exact else raw)
        for variant in {term} if exact else {term, strip_accents(term)}:
            if variant:
                (phrases if " " in variant else words).add(variant)
    return Lexicon(frozenset(words), tuple(sorted(phrases)))


def find_term(text: str, lexicon: Lexicon) -> str | None:
    """The first lexicon term that `text` contains as whole words, or None."""
    if not text or not lexicon:
        return None
    for candidate in spellings(text):
        tokens = candidate.split()
        for token in tokens:
            if token in lexicon.words:
                return token
            if "*" in token:
                hit = _unmask(token, lexicon)
                if hit:
                    return hit
        padded = f" {candidate} "
        for phrase in lexicon.phrases:
            if f" {phrase} " in padded:
                return phrase
    return None


# Each text is read against the blocklist, then against the profanity list: a small cache
# spares the second reading (small, because a text may be 100 KB).
@lru_cache(maxsize=8)
def spellings(text: str) -> tuple[str, ...]:
    """The folded text and the de-obfuscated readings of it, without repeats."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    base = fold(normal)
    roots = [base, strip_accents(base)]
    if _LEET_NEXT_TO_LETTER.search(normal) or (
        not normal.isascii() and not _CONFUSABLE_CHARS.isdisjoint(normal)
    ):
        clear = fold(" ".join(_clear_word(word) for word in normal.split()))
        roots += [clear, strip_accents(clear)]
    out: dict[str, None] = {}
    for root in roots:
        out[root] = None
        if _STRETCH.search(root):
            out[_STRETCH.sub(r"\1", root)] = None  # fuuuck -> fuck
            out[_STRETCH.sub(r"\1\1", root)] = None  # asssshole -> asshole
    for candidate in list(out):
        joined = _join_spaced_letters(candidate)
        if joined != candidate:
            out[joined] = None
    return tuple(out)


def _clear_word(word: str) -> str:
    if not any(c.isalpha() for c in word):
        return word  # "2026", "$5", "100%" are numbers, not disguised letters
    if any("a" <= c <= "z" for c in word):
        word = word.translate(_CONFUSABLES)
    word = _BANG_IN_WORD.sub("i", word)
    return word.translate(_LEET).translate(_LEET_SYMBOLS)


def _join_spaced_letters(candidate: str) -> str:
    """'f u c k' -> 'fuck': runs of four or more single letters become one word (three
    would turn abbreviations such as "k.u.k." into words)."""
    tokens = candidate.split()
    if sum(len(t) == 1 for t in tokens) < _MIN_SPACED:
        return candidate
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token.isalpha():
            run.append(token)
            continue
        out.extend(["".join(run)] if len(run) >= _MIN_SPACED else run)
        run = []
        if token:
            out.append(token)
    return " ".join(out)


def _unmask(token: str, lexicon: Lexicon) -> str | None:
    """A listed word that a masked token spells: each '*' hides one letter, except that a
    lone '*' may hide two ("f*king")."""
    if len(token) < _MIN_MASKED or not _MASKED.match(token):
        return None
    runs = _STAR_RUN.findall(token)
    lone = len(runs) == 1 and runs[0] == "*"
    pattern = re.compile(
        "".join(_mask_part(part, lone) for part in re.split(r"(\*+)", token) if part)
    )
    # Sorted: the rule shown to moderators must not change from run to run.
    for word in sorted(lexicon.words):
        if pattern.fullmatch(word):
            return word
    return None


def _mask_part(part: str, lone: bool) -> str:
    if not part.startswith("*"):
        return re.escape(part)
    return r"\w{1,2}" if lone else rf"\w{{{len(part)}}}"
