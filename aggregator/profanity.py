"""The built-in multilingual profanity lexicon, read once from aggregator/data/profanity."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aggregator.lexicon import Lexicon, build_lexicon


@cache
def builtin_profanity() -> Lexicon:
    folder = resources.files("aggregator").joinpath("data/profanity")
    terms: list[str] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".txt"):
            lines = entry.read_text(encoding="utf-8").splitlines()
            terms += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return build_lexicon(terms)
