"""Mastodon API Status entity (also Pixelfed, GoToSocial, Akkoma…) -> Post."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aggregator.model import Author, Link, Media, MediaType, Metrics, Post, Provenance
from aggregator.normalise import NormaliseError
from aggregator.normalise import fields as f
from aggregator.sanitise import SHORTCODE_CHARS, html_text_and_links, sanitise_html

_MEDIA_TYPES: dict[str, MediaType] = {"image": "image", "video": "video", "gifv": "gif"}
MAX_URI = 2048


def normalise_mastodon_status(
    status: object,
    *,
    server: str,
    local_to_uri: Mapping[str, str] | None = None,
) -> Post:
    """Normalise one Status as returned by `server` (its base URL or host name).

    A boost is unwrapped: the post is the boosted status, `provenance.boosted_by` the
    booster. `local_to_uri` maps ids local to `server` to global URIs, to resolve
    `in_reply_to_id` (only ids are given for parents). Raises NormaliseError only.
    """
    if not isinstance(status, dict):
        raise NormaliseError(f"Mastodon status must be a JSON object, got {type(status).__name__}")
    host = _server_host(server)
    if not host:
        raise NormaliseError(f"server {server!r} has no host name")

    inner = status
    boosted_by: str | None = None
    reblog = status.get("reblog")
    if isinstance(reblog, dict):
        inner = reblog
        booster = status.get("account")
        boosted_by = _handle(booster, host) if isinstance(booster, dict) else None

    raw_uri = inner.get("uri")
    if not isinstance(raw_uri, str) or not raw_uri.strip():
        raise NormaliseError("Mastodon status has no uri")
    uri = _uri(raw_uri)
    if uri is None:
        raise NormaliseError(f"Mastodon status uri {raw_uri[:100]!r} is not a usable identifier")

    account = inner.get("account")
    if not isinstance(account, dict):
        raise NormaliseError(f"Mastodon status {uri} has no account")
    handle = _handle(account, host)
    if handle is None:
        raise NormaliseError(f"Mastodon status {uri} has an account without acct/username")

    created_at = f.timestamp(inner.get("created_at"))
    if created_at is None:
        raise NormaliseError(f"Mastodon status {uri} has no valid created_at")

    content = inner.get("content")
    content = content if isinstance(content, str) else ""
    text, content_links = html_text_and_links(content)
    html = sanitise_html(content, emojis=_emoji_map(inner.get("emojis")))

    mapping = local_to_uri or {}
    local_id = inner.get("id")
    return Post(
        id=uri,
        platform="mastodon",
        url=f.safe_url(inner.get("url")) or f.safe_url(uri) or "",
        author=Author(
            handle=handle,
            name=f.text(account.get("display_name"), limit=f.MAX_NAME).strip(),
            avatar=f.safe_url(account.get("avatar")),
            url=f.safe_url(account.get("url")) or "",
        ),
        text=text,
        html=html,
        created_at=created_at,
        language=f.language(inner.get("language")),
        tags=f.tags(t.get("name") for t in f.list_field(inner, "tags") if isinstance(t, dict)),
        sensitive=f.flag(inner.get("sensitive")),
        spoiler_text=f.text(inner.get("spoiler_text"), limit=f.MAX_TITLE).strip(),
        media=_media(f.list_field(inner, "media_attachments")),
        links=_links(f.dict_field(inner, "card"), content_links),
        reply_to=_lookup(mapping, inner.get("in_reply_to_id")),
        quote_of=_quote_of(inner, mapping),
        metrics=Metrics(
            likes=f.count(inner.get("favourites_count")),
            reposts=f.count(inner.get("reblogs_count")),
            replies=f.count(inner.get("replies_count")),
        ),
        provenance=Provenance(
            source=f"mastodon:{host}",
            local_id=_local_id(local_id),
            home=f.url_host(uri) == host,
            edited_at=f.timestamp(inner.get("edited_at")),
            bot=f.flag(account.get("bot")),
            discoverable=f.optional_flag(account.get("discoverable")),
            noindex=f.flag(account.get("noindex")),
            boosted_by=boosted_by,
            author_id=f.safe_url(account.get("url")) or f.safe_url(account.get("uri")) or "",
        ),
    )


def _server_host(server: object) -> str:
    if not isinstance(server, str):
        return ""
    server = server.strip()
    if "://" in server:
        return f.url_host(server)
    return f.url_host(f"https://{server}")


def _handle(account: dict[str, Any], server_host: str) -> str | None:
    """'@user@host': `acct` omits the host for accounts local to the server we asked."""
    acct = account.get("acct")
    if not isinstance(acct, str) or not acct.strip("@ "):
        acct = account.get("username")
    if not isinstance(acct, str):
        return None
    acct = f.text(acct, limit=f.MAX_NAME).strip().lstrip("@")
    if not acct or any(c.isspace() for c in acct):
        return None
    user, _, domain = acct.partition("@")
    if not user:
        return None
    return f"@{user}@{(domain or server_host).lower()}"


def _emoji_map(emojis: object) -> dict[str, str]:
    found: dict[str, str] = {}
    if not isinstance(emojis, list):
        return found
    for emoji in emojis:
        if not isinstance(emoji, dict):
            continue
        code = emoji.get("shortcode")
        # Static images: nothing animated should surprise a projected wall.
        url = f.safe_url(emoji.get("static_url")) or f.safe_url(emoji.get("url"))
        if isinstance(code, str) and SHORTCODE_CHARS.fullmatch(code) and url:
            found.setdefault(code, url)
    return found


def _media(attachments: list[Any]) -> tuple[Media, ...]:
    media: list[Media] = []
    for item in attachments:
        if not isinstance(item, dict):
            continue
        # Audio and "unknown" (media the server could not process) have no picture to
        # show on a wall; the post still links to them.
        kind_name = item.get("type")
        kind = _MEDIA_TYPES.get(kind_name) if isinstance(kind_name, str) else None
        url = f.safe_url(item.get("url")) or f.safe_url(item.get("remote_url"))
        if kind is None or url is None:
            continue
        media.append(
            Media(
                type=kind,
                url=url,
                preview_url=f.safe_url(item.get("preview_url")) or "",
                alt=f.text(item.get("description"), limit=f.MAX_ALT).strip(),
            )
        )
        if len(media) >= f.MAX_MEDIA:
            break
    return tuple(media)


def _links(card: dict[str, Any] | None, content_links: list[str]) -> tuple[Link, ...]:
    """The server's preview card first, then other links the author wrote (the card is
    often missing: servers fetch it after the status is first delivered)."""
    links: dict[str, Link] = {}
    if card is not None:
        url = f.safe_url(card.get("url"))
        if url is not None:
            links[url] = Link(
                url=url,
                title=f.optional_text(card.get("title"), limit=f.MAX_TITLE),
                description=f.optional_text(card.get("description"), limit=f.MAX_DESCRIPTION),
                image=f.safe_url(card.get("image")),
            )
    for href in content_links:
        url = f.safe_url(href)
        if url is not None and url not in links:
            links[url] = Link(url=url)
        if len(links) >= f.MAX_LINKS:
            break
    return tuple(links.values())


def _local_id(value: object) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return f.text(value, limit=256).strip()


def _lookup(mapping: Mapping[str, str], local_id: object) -> str | None:
    key = _local_id(local_id)
    if not key:
        return None
    try:
        found = mapping.get(key)
    except Exception:  # a caller's Mapping (e.g. a cache) must not break normalising
        return None
    return found if isinstance(found, str) and found else None


def _quote_of(status: dict[str, Any], mapping: Mapping[str, str]) -> str | None:
    quote = status.get("quote")
    if isinstance(quote, dict):
        # Mastodon 4.4+: Quote {state, quoted_status} or ShallowQuote {state, quoted_status_id}.
        quoted = quote.get("quoted_status")
        if isinstance(quoted, dict):
            uri = _uri(quoted.get("uri"))
            if uri:
                return uri
        # Fedibird/Akkoma style: `quote` is the quoted Status itself.
        uri = _uri(quote.get("uri"))
        if uri:
            return uri
        found = _lookup(mapping, quote.get("quoted_status_id"))
        if found:
            return found
    return _lookup(mapping, status.get("quote_id"))


def _uri(value: object) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        if value and len(value) <= MAX_URI and value.isprintable() and " " not in value:
            return value
    return None
