"""Turn raw platform payloads into `aggregator.model.Post`.

Normalisers are pure functions over decoded JSON. They raise `NormaliseError` for a
payload they cannot use and nothing else, whatever they are given, so a source can
skip one bad event without a catch-all `except Exception`.
"""

from __future__ import annotations


class NormaliseError(ValueError):
    """A platform payload is unusable (wrong shape, missing identity, bad timestamp)."""


__all__ = ["NormaliseError"]
