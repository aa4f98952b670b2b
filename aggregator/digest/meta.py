"""Page metadata from HTML: title, author, site, published date, description, image.

Sources, most specific first: OpenGraph (`og:*`, `article:published_time`), JSON-LD
(`BlogPosting`, `Article`, `NewsArticle`… also inside `@graph`), microformats2 `h-entry`,
then plain `<meta>`/`<title>`/`<time>`. Pure: parses the bytes it is given, no I/O.

Parser: `selectolax` (Lexbor). One small wheel, no dependencies, a real HTML5 parser with
CSS selectors, and fast enough to parse every linked page of an event in well under a
second. The alternatives were heavier for what we need: `extruct` pulls lxml, rdflib and
several syntax libraries; `trafilatura` (text extraction) pulls lxml, justext, courlan
and htmldate; `htmldate` alone pulls dateparser for guessing dates from free text, which
we do not want (a guessed date can turn an old article into a "write-up"); `mf2py`
pulls beautifulsoup4, html5lib and requests for a full microformats parse, while we read
only the handful of h-entry properties below. Dates are taken only where the page states
them in machine-readable form.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

ARTICLE_TYPES = frozenset(
    {
        "article",
        "blogposting",
        "newsarticle",
        "techarticle",
        "report",
        "scholarlyarticle",
        "liveblogposting",
        "socialmediaposting",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "reportagenewsarticle",
    }
)
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
MAX_TEXT = 300


@dataclass
class PageMeta:
    url: str  # where the page was found (after redirects)
    canonical: str | None = None  # its rel=canonical, as written (resolved)
    title: str | None = None
    author: str | None = None
    site: str | None = None
    published: str | None = None  # ISO 8601, UTC when the page gave a time zone
    description: str | None = None
    image: str | None = None
    og_type: str | None = None
    schema_types: list[str] = field(default_factory=list)  # JSON-LD @type values, lowercase
    h_entry: bool = False
    feeds: list[str] = field(default_factory=list)
    text: str = ""  # the start of the page's visible text, to look for the event's name

    @property
    def is_article(self) -> bool:
        return (
            (self.og_type or "").lower() == "article"
            or bool(ARTICLE_TYPES & set(self.schema_types))
            or self.h_entry
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["text"] = self.text[:MAX_TEXT]
        return data


def parse_html(html: bytes | str) -> LexborHTMLParser:
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    return LexborHTMLParser(html)


def extract_meta(html: bytes | str, url: str) -> PageMeta:
    tree = parse_html(html)
    base = _base_url(tree, url)
    meta = _meta_tags(tree)
    ld = _json_ld_article(tree)
    entry = tree.css_first(".h-entry")
    page = PageMeta(url=url)
    canonical = _attr(tree.css_first('link[rel~="canonical"]'), "href")
    page.canonical = _absolute(base, canonical)
    page.og_type = meta.get("og:type")
    page.schema_types = sorted({t.lower() for t in ld.get("@types", [])})
    page.h_entry = entry is not None
    page.title = _first(
        meta.get("og:title"),
        _text(ld.get("headline")) or _text(ld.get("name")),
        _node_text(entry, ".p-name"),
        meta.get("twitter:title"),
        _node_text(tree, "title"),
    )
    page.author = _first(
        _person(ld.get("author")),
        _node_text(entry, ".p-author .p-name") or _node_text(entry, ".p-author"),
        meta.get("author"),
        _not_url(meta.get("article:author")),
        _not_url(meta.get("twitter:creator")),
    )
    page.site = _first(
        meta.get("og:site_name"), _person(ld.get("publisher")), meta.get("application-name")
    )
    page.published = _first(
        _iso(meta.get("article:published_time")),
        _iso(_text(ld.get("datePublished"))),
        _iso(_attr(entry.css_first(".dt-published") if entry else None, "datetime")),
        _iso(_node_text(entry, ".dt-published")),
        _iso(meta.get("date") or meta.get("dc.date") or meta.get("dcterms.created")),
        _iso(meta.get("citation_publication_date") or meta.get("pubdate")),
        _iso(_attr(tree.css_first("article time[datetime]"), "datetime")),
    )
    page.description = _first(
        meta.get("og:description"),
        meta.get("description"),
        _text(ld.get("description")),
        _node_text(entry, ".p-summary"),
        meta.get("twitter:description"),
        _node_text(tree, "article p") or _node_text(tree, "main p"),
    )
    page.image = _absolute(
        base,
        _first(meta.get("og:image"), _image(ld.get("image")), meta.get("twitter:image")),
    )
    page.feeds = [
        href
        for node in tree.css('link[rel~="alternate"]')
        if (_attr(node, "type") or "").lower() in FEED_TYPES
        and (href := _absolute(base, _attr(node, "href")))
    ]
    body = tree.body
    page.text = " ".join((body.text(separator=" ") if body else "").split())[:MAX_TEXT]
    # Pages are untrusted: keep every text field to a sensible length.
    page.title = _clip(page.title, 200) if page.title else None
    page.author = _clip(page.author, 120) if page.author else None
    page.site = _clip(page.site, 120) if page.site else None
    page.description = _clip(page.description) if page.description else None
    return page


def links_in(html: bytes | str, url: str) -> set[str]:
    """Every `<a href>` and `<link href>` of the page, resolved against it (Webmention)."""
    tree = parse_html(html)
    base = _base_url(tree, url)
    out = set()
    for node in tree.css("a[href], link[href], area[href]"):
        href = _absolute(base, _attr(node, "href"))
        if href:
            out.add(href)
    return out


def _base_url(tree: LexborHTMLParser, url: str) -> str:
    href = _attr(tree.css_first("base[href]"), "href")
    return urljoin(url, href) if href else url


def _meta_tags(tree: LexborHTMLParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        key = _attr(node, "property") or _attr(node, "name") or _attr(node, "itemprop")
        value = " ".join((_attr(node, "content") or "").split())
        if key and value:
            found.setdefault(key.strip().lower(), value)
    return found


def _json_ld_article(tree: LexborHTMLParser) -> dict[str, Any]:
    """The first article-typed JSON-LD object (searching lists and @graph), with
    `@types` = every @type seen on the page."""
    types: list[str] = []
    article: dict[str, Any] | None = None
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(node.text(deep=True) or "null")
        except ValueError:
            continue  # a broken block must not hide the rest of the page's metadata
        for obj in _objects(data):
            kinds = obj.get("@type")
            kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
            names = [k for k in kinds if isinstance(k, str)]
            types += names
            if article is None and ARTICLE_TYPES & {k.lower() for k in names}:
                article = obj
    result = dict(article or {})
    result["@types"] = types
    return result


def _objects(data: Any, depth: int = 0) -> list[dict[str, Any]]:
    if depth > 4:
        return []
    if isinstance(data, list):
        return [o for item in data for o in _objects(item, depth + 1)]
    if isinstance(data, dict):
        return [data, *_objects(data.get("@graph"), depth + 1)]
    return []


def _attr(node: LexborNode | None, name: str) -> str | None:
    if node is None:
        return None
    value = node.attributes.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _node_text(root: LexborHTMLParser | LexborNode | None, selector: str) -> str | None:
    if root is None:
        return None
    node = root.css_first(selector)
    if node is None:
        return None
    return " ".join(node.text(separator=" ").split()) or None


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _person(value: Any) -> str | None:
    if isinstance(value, list):
        names = [n for v in value if (n := _person(v))]
        return ", ".join(names) if names else None
    if isinstance(value, dict):
        return _text(value.get("name"))
    return _not_url(_text(value))


def _image(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return _text(value.get("url") or value.get("contentUrl"))
    return _text(value)


def _not_url(value: str | None) -> str | None:
    if value and (value.startswith(("http://", "https://")) or value.startswith("@")):
        return None
    return value


def _absolute(base: str, href: str | None) -> str | None:
    if not href:
        return None
    url = urljoin(base, href)
    return url if urlsplit(url).scheme in ("http", "https") else None


def _first(*values: str | None) -> str | None:
    for value in values:
        if value:
            return value
    return None


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _iso(value: str | None) -> str | None:
    """A machine-readable date as ISO 8601; UTC `Z` when it carries an offset."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.isoformat()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
