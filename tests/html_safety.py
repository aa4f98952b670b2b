"""Checks that HTML is safe to insert into the wall, by parsing it as a browser would."""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser

from aggregator.sanitise import ALLOWED_TAGS

REL = "nofollow noopener noreferrer"
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.comments: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag == "br":
            self.text.append("\n")

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_decl(self, decl: str) -> None:
        self.comments.append(decl)


def _parse(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    assert not collector.comments, "comments/declarations must not survive"
    return collector


def elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    """Every element a browser would build from `markup`, with its attributes."""
    return _parse(markup).elements


def text_of(markup: str) -> str:
    """The characters a reader sees, with <br> as a newline."""
    return "".join(_parse(markup).text)


def scheme_of(url: str) -> str:
    # Browsers ignore control characters and whitespace inside a scheme: strip them the
    # same way before judging it.
    cleaned = _URL_NOISE.sub("", htmllib.unescape(url)).lower()
    return cleaned.split(":", 1)[0] if ":" in cleaned else ""


def assert_safe(markup: str, *, emoji_allowed: bool = False) -> None:
    """No script, no event handler, no style, no dangerous URL, only allowed tags."""
    assert "<script" not in markup.lower()
    for tag, attrs in elements(markup):
        if tag == "img":
            assert emoji_allowed, f"unexpected <img> in {markup!r}"
            assert attrs.get("class") == "emoji"
            assert set(attrs) <= {"class", "src", "alt", "title", "draggable"}
            assert scheme_of(attrs.get("src", "https:")) in ("http", "https")
        else:
            assert tag in ALLOWED_TAGS, f"tag {tag!r} survived in {markup!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler {name} in {markup!r}"
            assert name != "style"
            if name in ("href", "src"):
                assert scheme_of(value) in ("http", "https", "mailto"), value
        if tag == "a":
            assert attrs.get("rel") == REL
