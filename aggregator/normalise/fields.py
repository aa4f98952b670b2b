"""Defensive readers for fields of untrusted decoded JSON.

Each reader accepts any object and returns a value of one type, so a normaliser never
trips over `None`, a number where a string belongs, or a hostile URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from aggregator.match import normalise_tag
from aggregator.model import format_timestamp, parse_timestamp
from aggregator.sanitise import scrub_text

MAX_URL = 2048
# Generous versus every platform's limits; a hostile server must not bloat the store.
MAX_NAME = 200
MAX_ALT = 5_000
MAX_TITLE = 500
MAX_DESCRIPTION = 2_000
MAX_MEDIA = 16
MAX_LINKS = 20
MAX_TAGS = 64

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
_URL_FORBIDDEN = re.compile(r'[\x00-\x20\x7f<>"\\]')
# Year 1970..9999: older dates are corrupt and format_timestamp needs four-digit years.
_MIN_YEAR = 1970


def dict_field(container: object, key: str) -> dict[str, Any] | None:
    if isinstance(container, dict):
        value = container.get(key)
        if isinstance(value, dict):
            return value
    return None


def list_field(container: object, key: str) -> list[Any]:
    if isinstance(container, dict):
        value = container.get(key)
        if isinstance(value, list):
            return value
    return []


def text(value: object, *, limit: int | None = None) -> str:
    """A string field as clean text ('' when absent or not a string)."""
    if not isinstance(value, str):
        return ""
    cleaned = scrub_text(value)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def optional_text(value: object, *, limit: int | None = None) -> str | None:
    cleaned = text(value, limit=limit).strip()
    return cleaned or None


def safe_url(value: object) -> str | None:
    """An absolute http(s) URL fit for an href/src, or None.

    Templates escape quotes, but only a scheme check stops `javascript:`; whitespace,
    quotes and control characters have no business in a URL a platform gives us.
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > MAX_URL or _URL_FORBIDDEN.search(url) or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


def url_host(value: object) -> str:
    """The lower-case host of a URL, or '' (never raises)."""
    if not isinstance(value, str):
        return ""
    try:
        return (urlsplit(value.strip()).hostname or "").lower()
    except ValueError:
        return ""


def count(value: object) -> int:
    """A non-negative counter; anything unusable is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return max(0, int(value))
    if isinstance(value, str) and value.isascii() and value.strip().isdigit():
        return int(value.strip()) if len(value) < 20 else 0
    return 0


def flag(value: object) -> bool:
    """True only for a real JSON true: "false" or 1 from a sloppy server is not consent."""
    return value is True


def optional_flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def language(value: object) -> str | None:
    if isinstance(value, str) and _LANGUAGE.fullmatch(value.strip()):
        return value.strip()
    return None


def timestamp(value: object) -> str | None:
    """A platform timestamp in the post JSON format, or None if unusable."""
    parsed = parse_timestamp(value)
    if parsed is None or not _MIN_YEAR <= parsed.year <= 9999:
        return None
    return format_timestamp(parsed)


def tags(values: Iterable[object]) -> tuple[str, ...]:
    """Normalised, de-duplicated tags in first-seen order."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and len(value) <= 640:
            tag = scrub_text(normalise_tag(value))
            if tag:
                seen.setdefault(tag, None)
                if len(seen) >= MAX_TAGS:
                    break
    return tuple(seen)
