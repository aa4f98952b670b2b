"""Make untrusted post HTML safe to project, and readable as plain text.

Everything here is pure: strings in, strings out. Remote servers send arbitrary HTML
(Mastodon passes through what the author's server produced), so the output of
`sanitise_html` is the only HTML the web layer may insert unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from html.parser import HTMLParser

import nh3

# Real posts are a few KB; long-form fediverse articles stay well under this. Anything
# bigger is truncated before parsing so a hostile 5 MB payload costs no more than 100 KB.
MAX_HTML_CHARS = 100_000
# html5ever's cost grows with nesting depth (deeply nested lists take ~1 s at 100 KB), and
# depth needs tags: cutting at this many '<' keeps the worst case in the tens of ms.
MAX_TAGS = 3_000

ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "a",
        "span",
        "strong",
        "em",
        "b",
        "i",
        "u",
        "s",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
    }
)
LINK_REL = "nofollow noopener noreferrer"
URL_SCHEMES = frozenset({"http", "https", "mailto"})

# Classes Mastodon itself emits and the wall's CSS can use: microformats on mentions,
# `invisible`/`ellipsis` to shorten long URLs, `quote-inline` for the 4.4+ quote fallback.
_ALLOWED_CLASSES: dict[str, set[str]] = {
    "a": {"mention", "hashtag", "u-url", "status-link"},
    "span": {"h-card", "invisible", "ellipsis"},
    "p": {"quote-inline"},
}
_ATTRIBUTES: dict[str, set[str]] = {
    # An explicit empty "*" entry: otherwise ammonia keeps `lang` and `title` everywhere.
    "*": set(),
    "a": {"href"},
    "ol": {"start", "reversed"},
}
# Script/style text is code, not content: drop it rather than unwrap it into the post.
_DROP_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "iframe", "object"})

_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes=_ATTRIBUTES,
    link_rel=LINK_REL,
    url_schemes=set(URL_SCHEMES),
    allowed_classes=_ALLOWED_CLASSES,
    # A relative href from a remote server would resolve against the wall's own origin.
    url_relative="deny",
    strip_comments=True,
)


def _emoji_attribute_filter(element: str, attribute: str, value: str) -> str | None:
    # mailto: is fine for links but meaningless (and a tracking vector) as an image source.
    if element == "img" and attribute == "src":
        lowered = value.lower()
        return value if lowered.startswith(("https://", "http://")) else None
    return value


# Second pass for HTML we have decorated with custom emoji: the only <img> it can contain is
# one we produced, because the first pass (`_CLEANER`) removes every <img> from the input.
_EMOJI_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS | {"img"}),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes={**_ATTRIBUTES, "img": {"src", "alt", "title", "draggable"}},
    attribute_filter=_emoji_attribute_filter,
    link_rel=LINK_REL,
    url_schemes=set(URL_SCHEMES),
    allowed_classes={**_ALLOWED_CLASSES, "img": {"emoji"}},
    url_relative="deny",
    strip_comments=True,
)

_SURROGATES = re.compile("[\ud800-\udfff]")
# Mastodon shortcodes are [A-Za-z0-9_]{2,}; like Mastodon, don't render inside words.
_SHORTCODE = re.compile(r"(?<![A-Za-z0-9]):([A-Za-z0-9_]{2,}):(?![A-Za-z0-9])")
SHORTCODE_CHARS = re.compile(r"[A-Za-z0-9_]{2,64}")


def replace_surrogates(text: str) -> str:
    """Lone surrogates (legal in a decoded JSON string, never encodable as UTF-8) become
    U+FFFD, which is as long in UTF-8 as their surrogatepass encoding: byte offsets hold."""
    if _SURROGATES.search(text) is not None:
        return _SURROGATES.sub("\ufffd", text)
    return text


def scrub_text(text: str) -> str:
    """Remove what no downstream consumer can carry: lone surrogates and NUL.

    Lone surrogates (legal in a decoded JSON string) cannot be encoded as UTF-8, so they
    would crash nh3, json.dumps to bytes and the websocket; PostgreSQL rejects NUL in text.
    """
    text = replace_surrogates(text)
    return text.replace("\x00", "") if "\x00" in text else text


def cap_markup(html: str) -> str:
    """Truncate oversized HTML before any parser sees it (see MAX_HTML_CHARS, MAX_TAGS)."""
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
    if html.count("<") > MAX_TAGS:
        cut = -1
        for _ in range(MAX_TAGS + 1):
            cut = html.find("<", cut + 1)
        html = html[:cut]
    return scrub_text(html)


def sanitise_html(html: str, *, emojis: Mapping[str, str] | None = None) -> str:
    """Return a safe subset of `html`: allowed tags only, http(s)/mailto links with
    rel="nofollow noopener noreferrer", no styles, scripts, event handlers or images.

    `emojis` maps custom emoji shortcodes (without colons) to image URLs; `:shortcode:`
    in text (not inside code/pre or attributes) becomes `<img class="emoji">`.
    """
    if not isinstance(html, str) or not html:
        return ""
    cleaned: str = _CLEANER.clean(cap_markup(html))
    if not emojis or ":" not in cleaned:
        return cleaned
    usable = {
        code: url
        for code, url in emojis.items()
        if isinstance(code, str)
        and isinstance(url, str)
        and SHORTCODE_CHARS.fullmatch(code)
        and url.lower().startswith(("https://", "http://"))
    }
    if not usable:
        return cleaned
    renderer = _EmojiRenderer(usable)
    renderer.feed(cleaned)
    renderer.close()
    if not renderer.replaced:
        return cleaned
    return str(_EMOJI_CLEANER.clean("".join(renderer.out)))


def emoji_img(shortcode: str, url: str) -> str:
    label = escape(f":{shortcode}:", quote=True)
    return (
        f'<img class="emoji" src="{escape(url, quote=True)}" alt="{label}" '
        f'title="{label}" draggable="false">'
    )


class _EmojiRenderer(HTMLParser):
    """Re-serialises already-sanitised HTML, replacing shortcodes in text nodes only.

    Working on parsed text nodes (rather than a regex over the markup) guarantees a
    shortcode inside an href or attribute is never touched.
    """

    _LITERAL = frozenset({"code", "pre"})

    def __init__(self, emojis: Mapping[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.replaced = 0
        self._emojis = emojis
        self._literal_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._LITERAL:
            self._literal_depth += 1
        self.out.append(_start_tag(tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(_start_tag(tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._LITERAL and self._literal_depth:
            self._literal_depth -= 1
        if tag != "br":
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        text = escape(data, quote=False)
        if self._literal_depth == 0 and ":" in text:
            text = _SHORTCODE.sub(self._replace, text)
        self.out.append(text)

    def _replace(self, match: re.Match[str]) -> str:
        code = match.group(1)
        url = self._emojis.get(code)
        if url is None:
            return match.group(0)
        self.replaced += 1
        return emoji_img(code, url)


def _start_tag(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    rendered = "".join(
        f' {name}="{escape(value or "", quote=True)}"' for name, value in attrs if name.isalpha()
    )
    return f"<{tag}{rendered}>"


# --- plain text -----------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "tr",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "hr",
    }
)
# Python's HTMLParser raises on some malformed input ("<![ x"), so text extraction reads
# html5ever's well-formed output instead of the raw markup: only what carries structure
# (blocks, breaks, links and the classes that qualify them) is kept for it.
_TEXT_CLEANER = nh3.Cleaner(
    tags=set(_BLOCK_TAGS | {"br", "a"}),
    clean_content_tags=set(_DROP_WITH_CONTENT | {"title"}),
    attributes={"*": set(), "a": {"href", "rel"}},
    link_rel=None,
    url_schemes={"http", "https"},
    allowed_classes={"a": {"mention", "hashtag"}, "p": {"quote-inline"}},
    url_relative="deny",
    strip_comments=True,
)
_WHITESPACE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    """Collects readable text and the outbound links of a post."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._pending_breaks = 0
        self._pre_depth = 0
        self._quote_inline_depth = 0
        self._at_line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._breaks(1, additive=True)
            return
        if tag in _BLOCK_TAGS:
            self._breaks(2 if tag != "li" else 1)
            if tag == "pre":
                self._pre_depth += 1
            if tag == "li":
                self._emit("- ")
        if tag == "p" and _has_class(attrs, "quote-inline"):
            self._quote_inline_depth += 1
        if tag == "a" and self._quote_inline_depth == 0:
            self._collect_link(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._breaks(1, additive=True)
        elif tag in _BLOCK_TAGS:
            self._breaks(2)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
            if tag == "p" and self._quote_inline_depth:
                self._quote_inline_depth -= 1
            self._breaks(2 if tag != "li" else 1)

    def handle_data(self, data: str) -> None:
        if not self._pre_depth:
            data = _WHITESPACE.sub(" ", data)
            if self._at_line_start or (self.parts and self.parts[-1].endswith(" ")):
                data = data.lstrip(" ")
        if data:
            self._emit(data)

    def _emit(self, text: str) -> None:
        if self._pending_breaks and self.parts:
            self.parts[-1] = self.parts[-1].rstrip(" ")
            self.parts.append("\n" * self._pending_breaks)
        self._pending_breaks = 0
        self.parts.append(text)
        self._at_line_start = False

    def _breaks(self, count: int, *, additive: bool = False) -> None:
        # Consecutive <br> add up (a blank line is meaningful); block edges do not stack,
        # and nothing beyond one blank line survives.
        total = self._pending_breaks + count if additive else max(self._pending_breaks, count)
        self._pending_breaks = min(2, total)
        self._at_line_start = True

    def _collect_link(self, attrs: list[tuple[str, str | None]]) -> None:
        href = next((value for name, value in attrs if name == "href"), None)
        classes = _classes(attrs)
        rel = next((value or "" for name, value in attrs if name == "rel"), "").split()
        # Mentions and hashtags are navigation inside the fediverse, not shared links.
        if href is None or {"mention", "hashtag"} & classes or "tag" in rel:
            return
        if href.lower().startswith(("https://", "http://")) and href not in self.links:
            self.links.append(href)

    def text(self) -> str:
        joined = "".join(self.parts)
        return "\n".join(line.rstrip() for line in joined.split("\n")).strip()


def _classes(attrs: list[tuple[str, str | None]]) -> set[str]:
    return {name for key, value in attrs if key == "class" and value for name in value.split()}


def _has_class(attrs: list[tuple[str, str | None]], wanted: str) -> bool:
    return wanted in _classes(attrs)


def _extract(html: str) -> _TextExtractor:
    extractor = _TextExtractor()
    if isinstance(html, str) and html:
        extractor.feed(_TEXT_CLEANER.clean(cap_markup(html)))
        extractor.close()
    return extractor


def html_to_text(html: str) -> str:
    """Readable plain text: blocks and <br> become newlines, entities decoded, scripts and
    styles dropped, whitespace collapsed (except in <pre>)."""
    return scrub_text(_extract(html).text())


def html_text_and_links(html: str) -> tuple[str, list[str]]:
    """`html_to_text` plus the http(s) links the author wrote (not mentions/hashtags, not
    the Mastodon 4.4 quote fallback), in order, without duplicates — one parse for both."""
    extractor = _extract(html)
    return scrub_text(extractor.text()), extractor.links
