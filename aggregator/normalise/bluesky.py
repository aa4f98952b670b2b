"""app.bsky.feed.post record (from Jetstream, the firehose or a PDS) -> Post."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html import escape
from typing import Any, Literal
from urllib.parse import quote

from aggregator.model import Author, Link, Media, Post, Provenance
from aggregator.normalise import NormaliseError
from aggregator.normalise import fields as f
from aggregator.sanitise import replace_surrogates, sanitise_html, scrub_text

POST_COLLECTION = "app.bsky.feed.post"
FACET_LINK = "app.bsky.richtext.facet#link"
FACET_MENTION = "app.bsky.richtext.facet#mention"
FACET_TAG = "app.bsky.richtext.facet#tag"

CDN = "https://cdn.bsky.app/img"
VIDEO_CDN = "https://video.bsky.app/watch"
HASHTAG_PAGE = "https://bsky.app/hashtag/"
PROFILE_PAGE = "https://bsky.app/profile/"

# Self-labels that hide media behind a warning in Bluesky's own app.
SENSITIVE_LABELS = frozenset({"porn", "sexual", "nudity", "graphic-media", "gore"})
WARN_LABEL = "!warn"
# The author asked not to be shown to logged-out viewers, which a wall is.
NO_UNAUTHENTICATED_LABEL = "!no-unauthenticated"

# Bluesky allows 3000 bytes; ten times that leaves room for other clients, not for abuse.
MAX_TEXT = 30_000
MAX_FACETS = 256

_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]{1,2040}")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_CID = re.compile(r"[A-Za-z0-9]{8,256}")
_AT_URI = re.compile(
    r"at://([A-Za-z0-9._:%-]{1,2048})/([A-Za-z0-9.-]{1,317})/([A-Za-z0-9._:~-]{1,512})"
)

FacetKind = Literal["link", "mention", "tag"]


@dataclass(frozen=True, slots=True)
class Facet:
    """One renderable facet: a UTF-8 byte range of the text and what it points to."""

    start: int
    end: int
    kind: FacetKind
    value: str  # the link URL, the mentioned DID or the tag (as written)


def normalise_bluesky_post(
    record: object,
    *,
    did: str,
    rkey: str,
    cid: str | None = None,
    author: Author | None = None,
    fallback_time: str | None = None,
) -> Post:
    """Normalise one post record of repository `did` at record key `rkey`.

    `author` is the hydrated profile (Jetstream/firehose give only the DID).
    `fallback_time` is an ISO 8601 timestamp of when the network saw the post (e.g.
    Jetstream's `time_us`, converted): used when `createdAt` is missing or invalid, and as a
    ceiling, like Bluesky's own "sortAt", so a future-dated post cannot stay on top of the
    wall. `cid` (the record version) becomes `provenance.local_id`. Raises NormaliseError
    only.
    """
    if not isinstance(record, dict):
        raise NormaliseError(f"Bluesky record must be a JSON object, got {type(record).__name__}")
    if not isinstance(did, str) or not valid_did(did):
        raise NormaliseError(f"invalid DID {str(did)[:100]!r}")
    if not isinstance(rkey, str) or not _RKEY.fullmatch(rkey) or rkey in (".", ".."):
        raise NormaliseError(f"invalid record key {str(rkey)[:100]!r}")
    kind = record.get("$type", POST_COLLECTION)
    if kind != POST_COLLECTION:
        raise NormaliseError(f"not a post record: $type {str(kind)[:100]!r}")
    raw_text = record.get("text")
    if not isinstance(raw_text, str):
        raise NormaliseError(f"post {did}/{rkey} has no text")
    uri = f"at://{did}/{POST_COLLECTION}/{rkey}"

    # Byte lengths are unchanged (see replace_surrogates), so facet offsets stay valid;
    # NUL is removed only from the plain text, after the offsets have been used.
    text = replace_surrogates(raw_text[:MAX_TEXT])
    facets_raw = f.list_field(record, "facets")[:MAX_FACETS]
    embed = f.dict_field(record, "embed")
    labels = _self_labels(record)
    sensitive = bool(labels & SENSITIVE_LABELS) or WARN_LABEL in labels

    return Post(
        id=uri,
        platform="bluesky",
        url=f"{PROFILE_PAGE}{did}/post/{rkey}",
        author=author if isinstance(author, Author) else default_author(did),
        text=scrub_text(text),
        html=render_html(text, facets_raw),
        created_at=_created_at(record.get("createdAt"), fallback_time, uri),
        language=_first_language(record.get("langs")),
        tags=f.tags([*_facet_tags(facets_raw), *f.list_field(record, "tags")]),
        sensitive=sensitive,
        spoiler_text="Content warning" if WARN_LABEL in labels else "",
        media=_media(embed, did),
        links=_links(embed, facets_raw, did),
        reply_to=_post_uri(f.dict_field(f.dict_field(record, "reply"), "parent")),
        quote_of=_quoted(embed),
        provenance=Provenance(
            source="bluesky",
            local_id=cid if isinstance(cid, str) and _CID.fullmatch(cid) else "",
            home=True,
            noindex=NO_UNAUTHENTICATED_LABEL in labels,
            author_id=did,
        ),
    )


def default_author(did: str) -> Author:
    return Author(handle=did, name="", avatar=None, url=f"{PROFILE_PAGE}{did}")


def valid_did(value: str) -> bool:
    return bool(_DID.fullmatch(value)) and not value.endswith((":", "%"))


def _created_at(value: object, fallback_time: str | None, uri: str) -> str:
    created = f.timestamp(value)
    fallback = f.timestamp(fallback_time)
    if created is None:
        if fallback is None:
            raise NormaliseError(f"post {uri} has no valid createdAt and no fallback time")
        return fallback
    # Same format, so string order is time order.
    return min(created, fallback) if fallback is not None else created


def _first_language(langs: object) -> str | None:
    if isinstance(langs, list):
        for lang in langs:
            if isinstance(lang, str):
                return f.language(lang)
    return None


def _self_labels(record: dict[str, Any]) -> set[str]:
    values = f.list_field(f.dict_field(record, "labels"), "values")
    return {
        label["val"]
        for label in values
        if isinstance(label, dict) and isinstance(label.get("val"), str)
    }


# --- facets ---------------------------------------------------------------------------


def parse_facets(text_bytes: bytes, facets: list[Any]) -> list[Facet]:
    """The renderable facets, sorted, with every invalid one dropped: offsets that are
    not ints, out of range, empty, inside a multi-byte character, or overlapping an
    earlier facet; features that are unknown or carry an unsafe value."""
    size = len(text_bytes)
    found: list[Facet] = []
    for facet in facets:
        if not isinstance(facet, dict):
            continue
        index = facet.get("index")
        if not isinstance(index, dict):
            continue
        start, end = index.get("byteStart"), index.get("byteEnd")
        if type(start) is not int or type(end) is not int or not 0 <= start < end <= size:
            continue
        if _is_continuation(text_bytes, start) or _is_continuation(text_bytes, end):
            continue
        feature = _renderable_feature(facet.get("features"))
        if feature is not None:
            found.append(Facet(start, end, feature[0], feature[1]))
    found.sort(key=lambda facet: (facet.start, facet.end))
    kept: list[Facet] = []
    last_end = 0
    for facet in found:
        if facet.start >= last_end:
            kept.append(facet)
            last_end = facet.end
    return kept


def _is_continuation(data: bytes, offset: int) -> bool:
    return offset < len(data) and data[offset] & 0xC0 == 0x80


def _renderable_feature(features: object) -> tuple[FacetKind, str] | None:
    if not isinstance(features, list):
        return None
    for feature in features:
        if not isinstance(feature, dict):
            continue
        kind = feature.get("$type")
        if kind == FACET_LINK:
            url = f.safe_url(feature.get("uri"))
            if url is not None:
                return "link", url
        elif kind == FACET_MENTION:
            target = feature.get("did")
            if isinstance(target, str) and valid_did(target):
                return "mention", target
        elif kind == FACET_TAG:
            tag = feature.get("tag")
            if isinstance(tag, str) and 0 < len(tag) <= 640 and tag.strip():
                return "tag", tag
    return None


def render_html(text: str, facets: list[Any]) -> str:
    """Post text as safe HTML: facets become links, newlines <br>, all else escaped."""
    if not text:
        return ""
    data = replace_surrogates(text).encode("utf-8")
    parts: list[str] = []
    cursor = 0
    for facet in parse_facets(data, facets):
        parts.append(_plain(data[cursor : facet.start]))
        parts.append(_anchor(facet, _plain(data[facet.start : facet.end])))
        cursor = facet.end
    parts.append(_plain(data[cursor:]))
    return sanitise_html("<p>" + "".join(parts) + "</p>")


def _plain(chunk: bytes) -> str:
    return escape(chunk.decode("utf-8", "replace"), quote=False).replace("\n", "<br>")


def _anchor(facet: Facet, label: str) -> str:
    if facet.kind == "link":
        href, css = facet.value, ""
    elif facet.kind == "mention":
        href, css = PROFILE_PAGE + facet.value, "u-url mention"
    else:
        href, css = HASHTAG_PAGE + quote(facet.value, safe=""), "mention hashtag"
    klass = f' class="{css}"' if css else ""
    return f'<a href="{escape(href, quote=True)}"{klass}>{label}</a>'


def _facet_tags(facets: list[Any]) -> list[object]:
    # Tags count even if a facet's offsets are broken: the author still tagged the post,
    # and the matcher (which never looks at offsets) agrees.
    return [
        feature.get("tag")
        for facet in facets
        if isinstance(facet, dict)
        for feature in f.list_field(facet, "features")
        if isinstance(feature, dict) and feature.get("$type") == FACET_TAG
    ]


def _facet_links(facets: list[Any]) -> list[str]:
    urls: list[str] = []
    for facet in facets:
        for feature in f.list_field(facet, "features"):
            if isinstance(feature, dict) and feature.get("$type") == FACET_LINK:
                url = f.safe_url(feature.get("uri"))
                if url is not None:
                    urls.append(url)
    return urls


# --- embeds ---------------------------------------------------------------------------


def blob_cid(blob: object) -> str | None:
    """The CID of a blob in any shape it arrives in.

    JSON (Jetstream, XRPC): {"ref": {"$link": cid}}; legacy blobs: {"cid": cid};
    DAG-CBOR via libipld: ref is the CID's bytes; atproto models: an object with `.link`
    or a CID object whose str() is the CID.
    """
    if isinstance(blob, dict):
        ref = blob.get("ref")
        if ref is None:
            ref = blob.get("cid")
    elif blob is None or isinstance(blob, str | int | float | list):
        return None
    else:
        try:
            ref = getattr(blob, "ref", None)
        except Exception:  # a foreign object's property may do anything
            return None
    return _cid_string(ref)


def _cid_string(ref: object) -> str | None:
    candidate: object = ref
    if isinstance(ref, dict):
        candidate = ref.get("$link")
    elif isinstance(ref, bytes | bytearray):
        raw = bytes(ref)
        # A DAG-CBOR CID link carries a leading 0x00 (identity multibase) byte.
        if raw[:1] == b"\x00":
            raw = raw[1:]
        if not raw or len(raw) > 128:
            return None
        candidate = "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    elif ref is not None and not isinstance(ref, str | int | float | list | bool):
        try:
            link = getattr(ref, "link", None)
            candidate = link if isinstance(link, str) else str(ref)
        except Exception:  # a foreign object's __str__ may do anything
            return None
    if isinstance(candidate, str) and _CID.fullmatch(candidate):
        return candidate
    return None


def _image_urls(did: str, cid: str) -> tuple[str, str]:
    return (
        f"{CDN}/feed_fullsize/plain/{did}/{cid}@jpeg",
        f"{CDN}/feed_thumbnail/plain/{did}/{cid}@jpeg",
    )


def _media_embed(embed: dict[str, Any] | None) -> dict[str, Any] | None:
    """recordWithMedia nests its images/video/external under `media`."""
    if embed is None:
        return None
    media = f.dict_field(embed, "media")
    return media if media is not None else embed


def _media(embed: dict[str, Any] | None, did: str) -> tuple[Media, ...]:
    holder = _media_embed(embed)
    if holder is None:
        return ()
    media: list[Media] = []
    for image in f.list_field(holder, "images")[: f.MAX_MEDIA]:
        if not isinstance(image, dict):
            continue
        cid = blob_cid(image.get("image"))
        if cid is None:
            continue
        full, thumb = _image_urls(did, cid)
        media.append(
            Media(
                type="image",
                url=full,
                preview_url=thumb,
                alt=f.text(image.get("alt"), limit=f.MAX_ALT).strip(),
            )
        )
    video = holder.get("video")
    if video is not None:
        cid = blob_cid(video)
        if cid is not None:
            base = f"{VIDEO_CDN}/{quote(did, safe='')}/{cid}"
            media.append(
                Media(
                    type="video",
                    url=f"{base}/playlist.m3u8",
                    preview_url=f"{base}/thumbnail.jpg",
                    alt=f.text(holder.get("alt"), limit=f.MAX_ALT).strip(),
                )
            )
    return tuple(media)


def _links(embed: dict[str, Any] | None, facets: list[Any], did: str) -> tuple[Link, ...]:
    links: dict[str, Link] = {}
    external = f.dict_field(_media_embed(embed), "external")
    if external is not None:
        url = f.safe_url(external.get("uri"))
        if url is not None:
            thumb_cid = blob_cid(external.get("thumb"))
            links[url] = Link(
                url=url,
                title=f.optional_text(external.get("title"), limit=f.MAX_TITLE),
                description=f.optional_text(external.get("description"), limit=f.MAX_DESCRIPTION),
                image=_image_urls(did, thumb_cid)[1] if thumb_cid else None,
            )
    for url in _facet_links(facets):
        if len(links) >= f.MAX_LINKS:
            break
        links.setdefault(url, Link(url=url))
    return tuple(links.values())


def _quoted(embed: dict[str, Any] | None) -> str | None:
    # embed.record: {record: strongRef}; embed.recordWithMedia: {record: {record: strongRef}}.
    ref = f.dict_field(embed, "record")
    if ref is None:
        return None
    nested = f.dict_field(ref, "record")
    return _post_uri(nested if nested is not None else ref)


def _post_uri(ref: dict[str, Any] | None) -> str | None:
    """The at:// URI of a strongRef, if it names a post (not a list, feed or pack)."""
    if ref is None:
        return None
    uri = ref.get("uri")
    if not isinstance(uri, str):
        return None
    match = _AT_URI.fullmatch(uri)
    if match is None or match.group(2) != POST_COLLECTION:
        return None
    return uri
