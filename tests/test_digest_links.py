"""Shared links: canonical form, collection from posts, page metadata, and write-up
classification on a labelled synthetic set (precision/recall printed, floors asserted)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import make_post

from aggregator.digest.build import EventInfo, build_digest
from aggregator.digest.classify import EventTerms, classify, url_kind
from aggregator.digest.links import canonical_url, collect_links, urls_in_text
from aggregator.digest.meta import extract_meta, links_in
from aggregator.digest.schedule import Session
from aggregator.model import Author, Link

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
TERMS = EventTerms.of("BlueLightCamp 2026", ["bluelightcamp", "blc26"], START)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTPS://Blog.Example:443/a?b=2&a=1#top", "https://blog.example/a?a=1&b=2"),
        ("http://blog.example:80/", "http://blog.example/"),
        ("http://blog.example:8080", "http://blog.example:8080/"),
        (
            "https://blog.example/p?utm_source=mastodon&utm_medium=social&id=7&fbclid=abc",
            "https://blog.example/p?id=7",
        ),
        ("https://blog.example/p?gclid=1&mc_cid=2&mc_eid=3&ref=hn&si=x", "https://blog.example/p"),
        ("https://blog.example/caf%C3%A9", "https://blog.example/caf%C3%A9"),
        ("https://blog.example/café", "https://blog.example/caf%C3%A9"),
        ("https://blog.example./x", "https://blog.example/x"),
        ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]/x"),
        ("ftp://blog.example/x", None),
        ("javascript:alert(1)", None),
        ("https://user:pw@blog.example/", None),
        ("https://blog.example:99999/", None),
    ],
)
def test_canonical_url(raw: str, canonical: str | None) -> None:
    assert canonical_url(raw) == canonical


def test_urls_in_text_stop_at_sentence_punctuation() -> None:
    text = (
        "Notes: https://blog.example/a. See (https://blog.example/b) and "
        "https://en.wikipedia.org/wiki/Foo_(bar)! «https://blog.example/c»"
    )
    assert urls_in_text(text) == [
        "https://blog.example/a",
        "https://blog.example/b",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
        "https://blog.example/c",
    ]


def test_truncated_urls_in_text_are_not_links() -> None:
    assert urls_in_text("see https://blog.example/2026/11/very-lo… now") == []


def test_collect_links_from_a_bluesky_external_embed() -> None:
    from aggregator.normalise.bluesky import normalise_bluesky_post

    text = "wrote it up: blog.example/2026/11/blu… #blc26"
    record = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2026-11-22T10:00:00Z",
        "embed": {
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": "https://blog.example/2026/11/bluelightcamp?utm_source=bsky",
                "title": "BlueLightCamp 2026: my write-up",
                "description": "Sessions and the hallway track.",
            },
        },
    }
    post = normalise_bluesky_post(record, did="did:plc:abc", rkey="3k")
    found = collect_links([post])
    assert list(found) == ["https://blog.example/2026/11/bluelightcamp"]
    link = found["https://blog.example/2026/11/bluelightcamp"]
    assert link.preview.title == "BlueLightCamp 2026: my write-up"
    assert link.sharers == ["did:plc:abc"]


def test_collect_links_dedupes_and_counts_sharers() -> None:
    bob = Author("@bob@social.example", "Bob")
    posts = [
        make_post(
            1,
            links=(
                Link("https://blog.example/notes?utm_source=masto", "Notes", "Card text", None),
            ),
        ),
        make_post(2, text="also https://Blog.example/notes#section and https://social.example/@x"),
        make_post(3, author=bob, text="read https://blog.example/notes?fbclid=1"),
        make_post(4, author=bob, links=(Link("https://blog.example/notes"),)),
    ]
    found = collect_links(posts)
    assert list(found) == ["https://blog.example/notes"]  # own server's links are skipped
    link = found["https://blog.example/notes"]
    assert len(link.posts) == 4 and link.sharers == ["@alice@social.example", bob.handle]
    assert link.preview.title == "Notes" and link.preview.description == "Card text"


def test_build_digest_merges_redirected_links_and_adds_feed_rows() -> None:
    posts = [
        make_post(1, links=(Link("https://sho.rt/abc", None),)),
        make_post(2, links=(Link("https://blog.example/2026/11/22/notes/", "Notes"),)),
    ]
    meta = {
        "url": "https://blog.example/2026/11/22/notes/",
        "title": "BlueLightCamp notes",
        "og_type": "article",
        "author": "Aoife",
        "published": "2026-11-22T08:30:00Z",
    }
    rows = {
        "https://sho.rt/abc": {
            "url": "https://sho.rt/abc",
            "final": "https://blog.example/2026/11/22/notes/",
            "source": "page",
            "status": "ok",
            "meta": meta,
        },
        "https://feed.example/post": {
            "url": "https://feed.example/post",
            "final": "https://feed.example/post",
            "source": "feed",
            "status": "ok",
            "meta": {"title": "From the feed", "published": "2026-11-22T10:00:00Z"},
        },
    }
    event = EventInfo("BlueLightCamp 2026", ("bluelightcamp",), START)
    rows["https://feed.example/post"]["meta"]["description"] = "Notes on Accessible maps for all"
    maps = Session(
        "s1", "Accessible maps for all", "A", START, START + timedelta(hours=1), hashtag="blcA1"
    )
    data = build_digest(event, [maps], posts, now=START, link_meta=rows).data
    # The feed entry names the session: it is listed with it though no post shared it.
    assert "https://feed.example/post" in [w["url"] for w in data["sessions"][0]["writeups"]]
    by_url = {w["url"]: w for w in data["writeups"]}
    notes = by_url["https://blog.example/2026/11/22/notes/"]
    assert len(notes["posts"]) == 2 and notes["author"] == "Aoife"
    assert by_url["https://feed.example/post"]["source"] == "feed"
    assert data["stats"]["writeups"] == 2


def test_extract_meta_reads_opengraph_jsonld_graph_and_h_entry() -> None:
    from blog_site import HUGO_POST, WP_POST

    wp = extract_meta(WP_POST.format(base="https://aoife.example"), "https://aoife.example/x")
    assert wp.title == "Moderation without burnout: notes from BlueLightCamp 2026"
    assert wp.author == "Aoife Byrne" and wp.site == "Aoife writes"
    assert wp.published == "2026-11-22T08:30:00Z"
    assert wp.image == "https://aoife.example/wp-content/uploads/2026/11/rota.png"
    assert wp.canonical == "https://aoife.example/2026/11/22/moderation-notes/"
    assert "blogposting" in wp.schema_types and wp.is_article
    assert wp.feeds == ["https://aoife.example/feed/"]
    hugo = extract_meta(HUGO_POST, "https://mika.example/local-first")
    assert hugo.h_entry and hugo.is_article
    assert hugo.title == "Local-first software at BlueLightCamp"
    assert hugo.author == "Mika Tanaka" and hugo.published == "2026-11-21T18:02:00Z"
    assert hugo.description == "Notes and follow-up reading on CRDTs and sync."


def test_extract_meta_survives_broken_markup_and_json_ld() -> None:
    page = extract_meta(
        b'<title>Fallback</title><script type="application/ld+json">{broken</script>'
        b'<meta name="description" content="  spaced   out  "><p>text \xff',
        "https://x.example/a",
    )
    assert page.title == "Fallback" and page.description == "spaced out"
    assert not page.is_article and page.published is None


def test_links_in_resolves_relative_and_base_href() -> None:
    html = '<base href="https://me.example/blog/"><a href="../digest">d</a><link href="x">'
    assert links_in(html, "https://me.example/blog/post") == {
        "https://me.example/digest",
        "https://me.example/blog/x",
    }


def art(title: str, published: str | None = "2026-11-22T09:00:00Z", **kw: Any) -> dict[str, Any]:
    return {"title": title, "og_type": "article", "published": published} | kw


def page(title: str, **kw: Any) -> dict[str, Any]:
    return {"title": title, "og_type": "website"} | kw


# (url, fetched page meta or None, platform preview title, source, expected kind)
LABELLED: list[tuple[str, dict[str, Any] | None, str | None, str, str]] = [
    # write-ups: article metadata
    ("https://aoife.example/2026/11/22/notes/", art("Moderation notes"), None, "post", "writeup"),
    ("https://sam.example.net/posts/blc-2026", art("A day of kind tech"), None, "post", "writeup"),
    ("https://jonas.example/2026/blc26-fahrplaene", art("Fahrpläne"), None, "post", "writeup"),
    (
        "https://camille.example.org/notes/blc26",
        art("Mesurer sans pister"),
        None,
        "post",
        "writeup",
    ),
    (
        "https://devon.example/first-unconference",
        art("My first unconference"),
        None,
        "post",
        "writeup",
    ),
    (
        "https://lars.example/sensor-workshop",
        art("Sensors at BlueLightCamp", None),
        None,
        "post",
        "writeup",
    ),
    (
        "https://bea.example/alt-text",
        {"title": "Alt text", "schema_types": ["blogposting"], "published": "2026-11-21T20:00:00Z"},
        None,
        "post",
        "writeup",
    ),
    (
        "https://news.example/story/123",
        {
            "title": "Camp report",
            "schema_types": ["newsarticle"],
            "published": "2026-11-23T07:00:00Z",
        },
        None,
        "post",
        "writeup",
    ),
    (
        "https://mika.example/local-first",
        {"title": "Local-first at BlueLightCamp", "h_entry": True},
        None,
        "post",
        "writeup",
    ),
    (
        "https://ines.example/weeknotes-47",
        {"title": "Weeknotes 47", "h_entry": True, "published": "2026-11-22T18:00:00Z"},
        None,
        "post",
        "writeup",
    ),
    ("https://kai.example/blog/recap", art("Recap", None), None, "post", "writeup"),
    (
        "https://zoe.example/writing/maps",
        art("Accessible maps, a recap", "2026-11-21T16:00:00Z"),
        None,
        "post",
        "writeup",
    ),
    (
        "https://omar.example/p/notes-from-blc",
        {
            "title": "Notes",
            "feeds": ["https://omar.example/feed"],
            "text": "at BlueLightCamp",
            "published": "2026-11-22T00:00:00Z",
        },
        None,
        "post",
        "writeup",
    ),
    (
        "https://medium.example/@ana/what-i-learned-at-blc26-4f2a",
        art("What I learned at #blc26"),
        None,
        "post",
        "writeup",
    ),
    (
        "https://substack.example/p/bluelightcamp",
        art("BlueLightCamp, briefly"),
        None,
        "post",
        "writeup",
    ),
    (
        "https://wp.example/?p=123",
        art("Notes from BlueLightCamp", "2026-11-22T10:00:00Z"),
        None,
        "post",
        "writeup",
    ),
    # write-ups: only the platform preview (not fetched)
    ("https://rin.example/2026/11/21/blc", None, "Day one", "post", "writeup"),
    (
        "https://tom.example/blog/unconference",
        None,
        "Thoughts on the unconference",
        "post",
        "writeup",
    ),
    ("https://uma.example/recap", None, "My BlueLightCamp recap", "post", "writeup"),
    ("https://vic.example/notes/blc26-day", None, "Notes", "post", "writeup"),
    # write-ups: feeds and webmentions
    ("https://bea.example/escritos/x", None, None, "feed", "writeup"),
    ("https://fern.example/a-post", None, None, "webmention", "writeup"),
    ("https://gus.example/entry/42", {"title": "Hi"}, None, "webmention", "writeup"),
    # slides
    ("https://speakerdeck.com/sigrid/own-your-posts", None, "Own your posts", "post", "slides"),
    ("https://www.slideshare.net/x/deck", None, "Deck", "post", "slides"),
    ("https://docs.google.com/presentation/d/1abc/edit", None, "Slides", "post", "slides"),
    ("https://sigrid.example/files/talk.pdf", None, None, "post", "slides"),
    ("https://noti.st/sigrid/abc", art("Own your posts at BlueLightCamp"), None, "post", "slides"),
    (
        "https://sho.rt/x",
        {"url": "https://files.example/deck.PDF", "content_type": "application/pdf"},
        None,
        "post",
        "slides",
    ),
    ("https://slides.com/ana/blc", None, "BlueLightCamp slides", "post", "slides"),
    ("https://x.example/deck.pptx", None, None, "post", "slides"),
    # video
    ("https://www.youtube.com/watch?v=abc", None, "Recording", "post", "video"),
    ("https://youtu.be/abc", None, "BlueLightCamp talk", "post", "video"),
    ("https://vimeo.com/12345", None, "Talk", "post", "video"),
    ("https://tube.example/w/9c9de5e8-0a1e-484a", None, "PeerTube talk", "post", "video"),
    ("https://peertube.example/videos/watch/abcd-1234", None, "Stream", "post", "video"),
    ("https://media.ccc.de/v/blc-1", None, "Talk", "post", "video"),
    ("https://cdn.example/rec.mp4", None, None, "post", "video"),
    (
        "https://stream.example/session-a1",
        {"title": "Session A1", "og_type": "video.other"},
        None,
        "post",
        "video",
    ),
    # photos
    ("https://www.flickr.com/photos/blc/123", None, "Group photo", "post", "photos"),
    ("https://pixelfed.example/p/ana/123", None, "Photos from #BlueLightCamp", "post", "photos"),
    ("https://img.example/board.jpg", None, None, "post", "photos"),
    ("https://img.example/board.JPEG", None, None, "post", "photos"),
    ("https://i.imgur.com/abc.png", None, None, "post", "photos"),
    ("https://www.instagram.com/p/abc/", None, "BlueLightCamp", "post", "photos"),
    # code and tools
    ("https://github.com/lars/air-sensor", None, "lars/air-sensor", "post", "code"),
    ("https://gitlab.com/x/y", None, "y", "post", "code"),
    ("https://codeberg.org/mika/sync", art("Sync engine from BlueLightCamp"), None, "post", "code"),
    ("https://git.example.org/org/repo", None, "repo", "post", "code"),
    ("https://pypi.org/project/backchannel/", None, "backchannel", "post", "code"),
    ("https://gist.github.com/a/b", None, "gist", "post", "code"),
    # other
    ("https://lars.example/", page("Lars' workshop"), None, "post", "other"),
    (
        "https://crdt.example/essays/crdts",
        art("Why CRDTs matter", "2019-03-02T10:00:00Z"),
        None,
        "post",
        "other",
    ),
    ("https://shop.example/sensor-kit", page("Sensor kit"), None, "post", "other"),
    (
        "https://en.wikipedia.org/wiki/Unconference",
        page("Unconference - Wikipedia"),
        None,
        "post",
        "other",
    ),
    ("https://tickets.example/event/42", page("BlueLightCamp 2026 tickets"), None, "post", "other"),
    ("https://example.org/about", None, "About us", "post", "other"),
    ("https://x.example/page", None, None, "post", "other"),
    ("https://maps.example/place/venue", page("Venue"), None, "post", "other"),
    (
        "https://news.example/2024/05/old-story",
        art("Old story", "2024-05-01T00:00:00Z"),
        None,
        "post",
        "other",
    ),
    ("https://bluelightcamp.example/", page("BlueLightCamp 2026"), None, "post", "other"),
    ("https://docs.example/guide/install", page("Install guide"), None, "post", "other"),
    ("https://forum.example/t/thread/5", page("Thread"), None, "post", "other"),
    ("https://signup.example/form", None, "Sign up for the newsletter", "post", "other"),
]


def test_write_up_classification_on_a_labelled_set() -> None:
    assert len(LABELLED) >= 60
    predicted = [
        (expected, classify(url, meta, title, None, TERMS, source=source))
        for url, meta, title, source, expected in LABELLED
    ]
    wrong = [(LABELLED[i][0], e, p) for i, (e, p) in enumerate(predicted) if e != p]
    print(f"\nlink classification on {len(LABELLED)} labelled links:")
    report: dict[str, tuple[float, float]] = {}
    for kind in ("writeup", "slides", "video", "photos", "code", "other"):
        tp = sum(1 for e, p in predicted if e == kind and p == kind)
        fp = sum(1 for e, p in predicted if e != kind and p == kind)
        fn = sum(1 for e, p in predicted if e == kind and p != kind)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        report[kind] = (precision, recall)
        print(f"  {kind:8s} precision {precision:.2f} recall {recall:.2f} ({tp + fn} labelled)")
    print(f"  misclassified: {wrong}")
    assert report["writeup"][0] >= 0.9, wrong
    assert report["writeup"][1] >= 0.8, wrong
    for kind in ("slides", "video", "photos", "code"):
        assert report[kind][0] >= 0.9 and report[kind][1] >= 0.8, (kind, wrong)
    assert Counter(e for e, _ in predicted)["writeup"] >= 20


def test_url_kind_leaves_blogs_on_code_hosts_alone() -> None:
    assert url_kind("https://ana.github.io/2026/11/blc") is None
    assert url_kind("https://github.com/ana") == "code"
