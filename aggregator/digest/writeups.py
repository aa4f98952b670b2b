"""The digest's write-ups and other links, from the shared links and what unfurling
learnt about them (the `link_meta` rows). Pure.

A `link_meta` row (as the store keeps it):
`{"url": canonical URL as shared, "final": canonical URL after redirects and a same-site
rel=canonical, "source": "page" | "preview" | "feed" | "webmention", "status": "ok" |
"error" | "refused" | "rejected", "fetched_at": ISO time, "meta": PageMeta.to_json() | None}`.
Rows from feeds and Webmentions are write-ups even when no post shared them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aggregator.digest.classify import EventTerms, classify
from aggregator.digest.links import SharedLink, collect_links, site_of
from aggregator.model import Post

LinkDoc = dict[str, Any]


def link_docs(
    posts: Sequence[Post],
    terms: EventTerms,
    rows: Mapping[str, Mapping[str, Any]],
    *,
    skip_hosts: Iterable[str] = (),
) -> tuple[list[LinkDoc], list[LinkDoc]]:
    """(write-ups, other links). Links that redirect or canonicalise to one page merge."""
    merged: dict[str, LinkDoc] = {}
    for shared in collect_links(posts, skip_hosts=skip_hosts).values():
        row = rows.get(shared.url)
        key = str(row.get("final") or shared.url) if row else shared.url
        doc = merged.get(key)
        if doc is None:
            merged[key] = _doc(key, shared, row, terms)
        else:
            _merge(doc, shared)
    for row in rows.values():
        if row.get("source") not in ("feed", "webmention") or row.get("status") != "ok":
            continue
        key = str(row.get("final") or row["url"])
        if key in merged:
            merged[key]["source"] = row["source"]
            merged[key]["kind"] = "writeup"
            continue
        merged[key] = _doc(key, None, row, terms)
    docs = list(merged.values())
    writeups = [d for d in docs if d["kind"] == "writeup"]
    writeups.sort(key=lambda d: (-len(d["shared_by"]), d["published"] or "9999", d["url"]))
    others = [d for d in docs if d["kind"] != "writeup"]
    others.sort(key=lambda d: (d["kind"], -len(d["shared_by"]), d["url"]))
    return writeups, others


def about_session(doc: LinkDoc, title: str, hashtag: str | None) -> bool:
    """A write-up that no session post shared (a feed entry, a Webmention) still belongs
    to a session whose full title or hashtag its title or description names."""
    text = " ".join(str(doc.get(k) or "") for k in ("title", "description")).casefold()
    if hashtag and f"#{hashtag.casefold()}" in text:
        return True
    return len(title) >= 12 and " ".join(title.casefold().split()) in " ".join(text.split())


def _doc(
    key: str, shared: SharedLink | None, row: Mapping[str, Any] | None, terms: EventTerms
) -> LinkDoc:
    meta: Mapping[str, Any] | None = None
    source = "post"
    if row is not None:
        if row.get("status") == "ok" and row.get("meta"):
            meta = row["meta"]
        if row.get("source") in ("feed", "webmention"):
            source = str(row["source"])
    preview = shared.preview if shared else None
    title = (preview.title if preview else None) or (meta or {}).get("title")
    description = (preview.description if preview else None) or (meta or {}).get("description")
    kind = classify(
        key,
        meta,
        preview.title if preview else None,
        preview.description if preview else None,
        terms,
        source=source,
    )
    return {
        "url": key,
        "title": title,
        "author": (meta or {}).get("author"),
        "site": (meta or {}).get("site") or site_of(key) or urlsplit(key).netloc,
        "published": (meta or {}).get("published"),
        "description": description,
        "image": (preview.image if preview else None) or (meta or {}).get("image"),
        "kind": kind,
        "source": source,
        "posts": list(shared.posts) if shared else [],
        "shared_by": list(shared.sharers) if shared else [],
        "first_shared": shared.first_shared if shared else None,
    }


def _merge(doc: LinkDoc, shared: SharedLink) -> None:
    for pid in shared.posts:
        if pid not in doc["posts"]:
            doc["posts"].append(pid)
    for handle in shared.sharers:
        if handle not in doc["shared_by"]:
            doc["shared_by"].append(handle)
    preview = shared.preview
    doc["title"] = doc["title"] or preview.title
    doc["description"] = doc["description"] or preview.description
    doc["image"] = doc["image"] or preview.image
