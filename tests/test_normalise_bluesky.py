"""app.bsky.feed.post records -> Post, including facets at UTF-8 byte offsets."""

from __future__ import annotations

import copy
import json
from typing import Any

import libipld
import pytest
from atproto_client.models.blob_ref import BlobRef, IpldLink  # type: ignore[import-untyped]
from atproto_core.cid import CID  # type: ignore[import-untyped]
from html_safety import REL, assert_safe, elements, text_of
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aggregator.model import Author, Link, Media, Post
from aggregator.normalise import NormaliseError
from aggregator.normalise.bluesky import (
    blob_cid,
    normalise_bluesky_post,
    parse_facets,
    render_html,
)

DID = "did:plc:z72i7hdynmk6r22z27h6tvur"
RKEY = "3lbzvqdpw6c2x"
CID_POST = "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
IMG_CID = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
IMG2_CID = "bafkreih3pvzkmm2kbrpoymvwvdjm5kvbvyvxdanbevejyheyxoh3d6ybse"
FRIEND = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


def span(text: str, part: str, occurrence: int = 0) -> dict[str, int]:
    """The UTF-8 byte range of `part` in `text`, as a facet index."""
    start_char = -1
    for _ in range(occurrence + 1):
        start_char = text.index(part, start_char + 1)
    start = len(text[:start_char].encode("utf-8"))
    return {"byteStart": start, "byteEnd": start + len(part.encode("utf-8"))}


def facet(text: str, part: str, feature: dict[str, Any]) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet", "index": span(text, part), "features": [feature]}


def tag(name: str) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet#tag", "tag": name}


def link(uri: str) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet#link", "uri": uri}


def mention(did: str) -> dict[str, Any]:
    return {"$type": "app.bsky.richtext.facet#mention", "did": did}


def blob(cid: str, mime: str = "image/jpeg") -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": 482113}


TEXT = "Café ☕ and 🎉 — keynote at #BlueLightCamp with @grace.bsky.social: slides.example/k…\nmore"
RECORD: dict[str, Any] = {
    "$type": "app.bsky.feed.post",
    "text": TEXT,
    "createdAt": "2026-11-21T10:15:30.482Z",
    "langs": ["en", "de"],
    "facets": [
        facet(TEXT, "#BlueLightCamp", tag("BlueLightCamp")),
        facet(TEXT, "@grace.bsky.social", mention(FRIEND)),
        facet(TEXT, "slides.example/k…", link("https://slides.example/keynote-2026")),
    ],
}


def record(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(RECORD)
    data.update(changes)
    return data


def normalise(data: Any, **kwargs: Any) -> Post:
    return normalise_bluesky_post(data, did=DID, rkey=RKEY, **kwargs)


def test_basic_post() -> None:
    post = normalise(record(), cid=CID_POST)
    assert post.id == f"at://{DID}/app.bsky.feed.post/{RKEY}"
    assert post.platform == "bluesky"
    assert post.url == f"https://bsky.app/profile/{DID}/post/{RKEY}"
    assert post.author == Author(
        handle=DID, name="", avatar=None, url=f"https://bsky.app/profile/{DID}"
    )
    assert post.text == TEXT
    assert post.created_at == "2026-11-21T10:15:30Z"
    assert post.language == "en"
    assert post.tags == ("bluelightcamp",)
    assert post.links == (Link(url="https://slides.example/keynote-2026"),)
    assert post.media == ()
    assert post.reply_to is None and post.quote_of is None
    assert not post.sensitive and post.spoiler_text == ""
    assert post.provenance.source == "bluesky"
    assert post.provenance.author_id == DID
    assert post.provenance.local_id == CID_POST


def test_facets_render_after_multibyte_text() -> None:
    post = normalise(record())
    assert_safe(post.html)
    anchors = [attrs for tag_name, attrs in elements(post.html) if tag_name == "a"]
    assert anchors == [
        {
            "href": "https://bsky.app/hashtag/BlueLightCamp",
            "class": "mention hashtag",
            "rel": REL,
        },
        {"href": f"https://bsky.app/profile/{FRIEND}", "class": "u-url mention", "rel": REL},
        {"href": "https://slides.example/keynote-2026", "rel": REL},
    ]
    assert '<a href="https://bsky.app/hashtag/BlueLightCamp"' in post.html
    assert ">#BlueLightCamp</a>" in post.html
    assert ">@grace.bsky.social</a>" in post.html
    assert ">slides.example/k…</a>" in post.html
    assert text_of(post.html) == TEXT
    assert "<br>more" in post.html


def test_text_is_escaped() -> None:
    text = "<script>alert(1)</script> & <b>not bold</b>\n\nbye"
    post = normalise(record(text=text, facets=[]))
    assert_safe(post.html)
    assert "&lt;script&gt;" in post.html
    assert text_of(post.html) == text
    assert post.text == text


def test_hashtag_link_is_url_encoded() -> None:
    text = "at #東京 and #a/b?c"
    facets = [facet(text, "#東京", tag("東京")), facet(text, "#a/b?c", tag("a/b?c"))]
    post = normalise(record(text=text, facets=facets))
    hrefs = [a["href"] for t, a in elements(post.html) if t == "a"]
    assert hrefs == [
        "https://bsky.app/hashtag/%E6%9D%B1%E4%BA%AC",
        "https://bsky.app/hashtag/a%2Fb%3Fc",
    ]
    assert post.tags == ("東京", "a/b?c")


@pytest.mark.parametrize(
    "index",
    [
        {"byteStart": 0, "byteEnd": 10_000},  # past the end
        {"byteStart": -1, "byteEnd": 3},
        {"byteStart": 5, "byteEnd": 5},  # empty
        {"byteStart": 6, "byteEnd": 2},  # reversed
        {"byteStart": 4, "byteEnd": 6},  # inside the 2-byte 'é'
        {"byteStart": "0", "byteEnd": "3"},
        {"byteStart": 0.0, "byteEnd": 3.0},
        {"byteStart": True, "byteEnd": 3},
        {"byteStart": None},
        {},
        None,
        [0, 3],
    ],
)
def test_invalid_facet_offsets_are_skipped(index: Any) -> None:
    text = "Café #blc26"
    facets = [{"index": index, "features": [tag("blc26")]}]
    post = normalise(record(text=text, facets=facets))
    assert all(t != "a" for t, _ in elements(post.html))
    assert text_of(post.html) == text
    # The author still tagged the post: matching does not depend on offsets either.
    assert post.tags == ("blc26",)


def test_overlapping_facets_keep_the_first() -> None:
    text = "see https://a.example/x #blc26"
    facets = [
        facet(text, "https://a.example/x #blc26", link("https://a.example/x")),
        facet(text, "#blc26", tag("blc26")),
        facet(text, "https://a.example/x", link("https://b.example/")),
    ]
    html = normalise(record(text=text, facets=facets)).html
    anchors = [a["href"] for t, a in elements(html) if t == "a"]
    # Earliest start wins (shortest first on a tie); whatever overlaps it is dropped.
    assert anchors == ["https://b.example/", "https://bsky.app/hashtag/blc26"]
    assert text_of(html) == text


def test_unsafe_and_unknown_features_are_not_links() -> None:
    text = "click me and me and me"
    facets = [
        facet(text, "click", link("javascript:alert(1)")),
        facet(text, "me and", mention("not-a-did")),
        {"index": span(text, "me", 2), "features": [{"$type": "app.bsky.richtext.facet#bold"}]},
    ]
    post = normalise(record(text=text, facets=facets))
    assert all(t != "a" for t, _ in elements(post.html))
    assert post.links == ()


def test_images_embed() -> None:
    embed = {
        "$type": "app.bsky.embed.images",
        "images": [
            {
                "alt": "The main hall, every seat taken",
                "image": blob(IMG_CID),
                "aspectRatio": {"width": 2000, "height": 1500},
            },
            {"alt": "", "image": {"cid": IMG2_CID, "mimeType": "image/png"}},  # legacy blob
            {"alt": "broken", "image": {"ref": {"$link": "../../etc"}}},
            "junk",
        ],
    }
    post = normalise(record(embed=embed))
    assert post.media == (
        Media(
            type="image",
            url=f"https://cdn.bsky.app/img/feed_fullsize/plain/{DID}/{IMG_CID}@jpeg",
            preview_url=f"https://cdn.bsky.app/img/feed_thumbnail/plain/{DID}/{IMG_CID}@jpeg",
            alt="The main hall, every seat taken",
        ),
        Media(
            type="image",
            url=f"https://cdn.bsky.app/img/feed_fullsize/plain/{DID}/{IMG2_CID}@jpeg",
            preview_url=f"https://cdn.bsky.app/img/feed_thumbnail/plain/{DID}/{IMG2_CID}@jpeg",
        ),
    )


def test_blob_ref_shapes() -> None:
    # As libipld decodes a firehose (DAG-CBOR) record: the CID's raw bytes.
    raw = libipld.decode_dag_cbor(
        bytes.fromhex(
            "d82a582500015512205891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        )
    )
    assert isinstance(raw, bytes)
    expected = str(CID.decode(raw))
    assert expected == IMG_CID
    assert blob_cid({"ref": raw}) == IMG_CID
    assert blob_cid({"ref": b"\x00" + raw}) == IMG_CID
    assert blob_cid({"ref": {"$link": IMG_CID}}) == IMG_CID
    assert blob_cid({"cid": IMG_CID}) == IMG_CID
    assert blob_cid({"ref": IMG_CID}) == IMG_CID
    assert blob_cid({"ref": CID.decode(IMG_CID)}) == IMG_CID
    model = BlobRef(mime_type="image/jpeg", size=1, ref=IpldLink(link=IMG_CID))
    assert blob_cid(model) == IMG_CID
    junk: list[Any] = [None, "x", 5, [], {}, {"ref": None}, {"ref": 3}, {"ref": b""}]
    for shape in [*junk, {"ref": "a/b"}]:
        assert blob_cid(shape) is None


def test_video_embed() -> None:
    embed = {
        "$type": "app.bsky.embed.video",
        "video": blob(IMG_CID, "video/mp4"),
        "alt": "Demo of the radio mesh",
        "aspectRatio": {"width": 1920, "height": 1080},
    }
    (video,) = normalise(record(embed=embed)).media
    base = f"https://video.bsky.app/watch/did%3Aplc%3Az72i7hdynmk6r22z27h6tvur/{IMG_CID}"
    assert video == Media(
        type="video",
        url=f"{base}/playlist.m3u8",
        preview_url=f"{base}/thumbnail.jpg",
        alt="Demo of the radio mesh",
    )


def test_external_embed_and_link_facets() -> None:
    embed: dict[str, Any] = {
        "$type": "app.bsky.embed.external",
        "external": {
            "uri": "https://blog.example/2026/11/bluelightcamp-write-up",
            "title": "BlueLightCamp 2026: my write-up",
            "description": "Sessions, people, and the hallway track.",
            "thumb": blob(IMG2_CID),
        },
    }
    text = "wrote it up: blog.example/2026/11/blu… and see also other.example"
    facets = [
        facet(text, "blog.example/2026/11/blu…", link(embed["external"]["uri"])),
        facet(text, "other.example", link("https://other.example/")),
    ]
    post = normalise(record(text=text, facets=facets, embed=embed))
    assert post.links == (
        Link(
            url="https://blog.example/2026/11/bluelightcamp-write-up",
            title="BlueLightCamp 2026: my write-up",
            description="Sessions, people, and the hallway track.",
            image=f"https://cdn.bsky.app/img/feed_thumbnail/plain/{DID}/{IMG2_CID}@jpeg",
        ),
        Link(url="https://other.example/"),
    )


def test_external_embed_with_hostile_uri_is_dropped() -> None:
    embed = {"$type": "app.bsky.embed.external", "external": {"uri": "javascript:alert(1)"}}
    assert normalise(record(embed=embed, facets=[])).links == ()


def test_quote_embed() -> None:
    quoted = f"at://{FRIEND}/app.bsky.feed.post/3lbzumvltns2a"
    embed = {
        "$type": "app.bsky.embed.record",
        "record": {"uri": quoted, "cid": CID_POST},
    }
    assert normalise(record(embed=embed)).quote_of == quoted


def test_record_with_media() -> None:
    quoted = f"at://{FRIEND}/app.bsky.feed.post/3lbzumvltns2a"
    embed = {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {
            "$type": "app.bsky.embed.record",
            "record": {"uri": quoted, "cid": CID_POST},
        },
        "media": {
            "$type": "app.bsky.embed.images",
            "images": [{"alt": "photo of the slide", "image": blob(IMG_CID)}],
        },
    }
    post = normalise(record(embed=embed))
    assert post.quote_of == quoted
    assert [m.alt for m in post.media] == ["photo of the slide"]


def test_record_with_external_media() -> None:
    embed = {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {"record": {"uri": f"at://{FRIEND}/app.bsky.feed.post/3k", "cid": CID_POST}},
        "media": {
            "$type": "app.bsky.embed.external",
            "external": {"uri": "https://blog.example/x", "title": "X", "description": ""},
        },
    }
    post = normalise(record(embed=embed, facets=[]))
    assert post.links == (Link(url="https://blog.example/x", title="X"),)


def test_embedded_non_post_records_are_not_quotes() -> None:
    for uri in (
        f"at://{FRIEND}/app.bsky.feed.generator/whats-hot",
        f"at://{FRIEND}/app.bsky.graph.starterpack/3k",
        "https://evil.example/",
        "at://x",
    ):
        embed = {"$type": "app.bsky.embed.record", "record": {"uri": uri, "cid": CID_POST}}
        assert normalise(record(embed=embed)).quote_of is None


def test_reply() -> None:
    root = f"at://{FRIEND}/app.bsky.feed.post/3lbzroot"
    parent = f"at://{FRIEND}/app.bsky.feed.post/3lbzparent"
    reply = {"root": {"uri": root, "cid": CID_POST}, "parent": {"uri": parent, "cid": CID_POST}}
    assert normalise(record(reply=reply)).reply_to == parent
    assert normalise(record(reply={"parent": "x"})).reply_to is None


@pytest.mark.parametrize("label", ["porn", "sexual", "nudity", "graphic-media"])
def test_sensitive_self_labels(label: str) -> None:
    labels = {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": label}]}
    post = normalise(record(labels=labels))
    assert post.sensitive is True
    assert post.spoiler_text == ""


def test_warn_and_no_unauthenticated_labels() -> None:
    labels = {"values": [{"val": "!warn"}, {"val": "!no-unauthenticated"}, "junk", {"val": 1}]}
    post = normalise(record(labels=labels))
    assert post.sensitive is True
    assert post.spoiler_text == "Content warning"
    assert post.provenance.noindex is True
    assert normalise(record(labels={"values": [{"val": "spam"}]})).sensitive is False


def test_tags_from_facets_and_record_array() -> None:
    text = "#BLC26 and #Photography"
    facets = [facet(text, "#BLC26", tag("BLC26")), facet(text, "#Photography", tag("Photography"))]
    post = normalise(record(text=text, facets=facets, tags=["blc26", "BlueLightCamp", 5, "＃Ｘ"]))
    assert post.tags == ("blc26", "photography", "bluelightcamp", "x")


def test_created_at_fallback_and_ceiling() -> None:
    fallback = "2026-11-21T10:16:00.000Z"
    assert normalise(record(createdAt="nonsense"), fallback_time=fallback).created_at == (
        "2026-11-21T10:16:00Z"
    )
    assert normalise(record(createdAt=None), fallback_time=fallback).created_at == (
        "2026-11-21T10:16:00Z"
    )
    # A post claiming to be from the future is placed when it was seen.
    future = record(createdAt="2030-01-01T00:00:00Z")
    assert normalise(future, fallback_time=fallback).created_at == "2026-11-21T10:16:00Z"
    assert normalise(future).created_at == "2030-01-01T00:00:00Z"
    # Backdated posts keep their date.
    old = record(createdAt="2024-01-01T00:00:00+01:00")
    assert normalise(old, fallback_time=fallback).created_at == "2023-12-31T23:00:00Z"


def test_hydrated_author() -> None:
    author = Author(
        handle="ada.bsky.social",
        name="Ada",
        avatar="https://cdn.bsky.app/img/avatar/plain/x/y@jpeg",
        url="https://bsky.app/profile/ada.bsky.social",
    )
    assert normalise(record(), author=author).author == author


def test_language() -> None:
    assert normalise(record(langs=["pt-BR"])).language == "pt-BR"
    assert normalise(record(langs=[])).language is None
    assert normalise(record(langs="en")).language is None
    assert normalise(record(langs=[5, "ja"])).language == "ja"


def test_empty_text_with_image() -> None:
    embed = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob(IMG_CID)}]}
    post = normalise(record(text="", facets=[], embed=embed))
    assert post.text == "" and post.html == ""
    assert len(post.media) == 1


def test_lone_surrogates_and_nul_in_text() -> None:
    text = "a\ud83d b\x00 #blc26"
    # 'a' 1 byte, the surrogate 3 (as U+FFFD will be), ' b' 2, NUL 1, ' ' 1: '#' at 8.
    facets = [{"index": {"byteStart": 8, "byteEnd": 14}, "features": [tag("blc26")]}]
    post = normalise(record(text=text, facets=facets))
    assert post.text == "a\ufffd b #blc26"
    json.dumps(post.to_json(), ensure_ascii=False).encode("utf-8")
    assert ">#blc26</a>" in post.html


@pytest.mark.parametrize(
    ("payload", "kwargs", "message"),
    [
        (None, {}, "JSON object"),
        ("text", {}, "JSON object"),
        ({"createdAt": "2026-11-21T10:00:00Z"}, {}, "no text"),
        ({"text": 5, "createdAt": "2026-11-21T10:00:00Z"}, {}, "no text"),
        ({"$type": "app.bsky.feed.like", "text": "x"}, {}, "not a post"),
        ({"text": "x", "createdAt": "bad"}, {}, "createdAt"),
        ({"text": "x"}, {"fallback_time": "also bad"}, "createdAt"),
        ({"text": "x", "createdAt": "2026-11-21T10:00:00Z"}, {"did": "alice"}, "DID"),
        ({"text": "x", "createdAt": "2026-11-21T10:00:00Z"}, {"did": "did:plc:a/b"}, "DID"),
        ({"text": "x", "createdAt": "2026-11-21T10:00:00Z"}, {"rkey": "../x"}, "record key"),
        ({"text": "x", "createdAt": "2026-11-21T10:00:00Z"}, {"rkey": ".."}, "record key"),
        ({"text": "x", "createdAt": "2026-11-21T10:00:00Z"}, {"rkey": ""}, "record key"),
    ],
)
def test_unusable_input_raises_normalise_error(
    payload: Any, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"did": DID, "rkey": RKEY, **kwargs}
    with pytest.raises(NormaliseError, match=message):
        normalise_bluesky_post(payload, **args)


def test_round_trips_through_the_contract_json() -> None:
    embed = {"$type": "app.bsky.embed.images", "images": [{"alt": "x", "image": blob(IMG_CID)}]}
    post = normalise(record(embed=embed))
    assert Post.from_json(json.loads(json.dumps(post.to_json()))) == post


# --- properties ----------------------------------------------------------------------------

_READABLE = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(
    ["\n", "é", "☕", "🎉", "👩🏽\u200d💻", "#", "<", "&", '"']
)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(st.characters(), max_size=40),
    ranges=st.lists(
        st.tuples(
            st.one_of(st.integers(-5, 200), st.none(), st.text(max_size=2), st.floats()),
            st.one_of(st.integers(-5, 200), st.none(), st.booleans()),
            st.sampled_from(
                [
                    tag("blc26"),
                    link("https://ok.example/"),
                    link("javascript:alert(1)"),
                    mention(FRIEND),
                    {"$type": "app.bsky.richtext.facet#tag", "tag": ""},
                    {"$type": "x"},
                    {},
                ]
            ),
        ),
        max_size=6,
    ),
)
def test_property_facet_rendering_never_raises(
    text: str, ranges: list[tuple[Any, Any, dict[str, Any]]]
) -> None:
    facets = [{"index": {"byteStart": s, "byteEnd": e}, "features": [f]} for s, e, f in ranges]
    html = render_html(text, facets)
    assert_safe(html)
    html.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(_READABLE, min_size=1, max_size=40).map("".join),
    cuts=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=5),
)
def test_property_rendering_preserves_the_text(text: str, cuts: list[tuple[int, int]]) -> None:
    facets = []
    for a, b in cuts:
        start, end = sorted((min(a, len(text)), min(b, len(text))))
        if start == end:
            continue
        index = {
            "byteStart": len(text[:start].encode()),
            "byteEnd": len(text[:end].encode()),
        }
        facets.append({"index": index, "features": [link("https://ok.example/")]})
    html = render_html(text, facets)
    # html5ever turns a lone CR into LF; nothing else about the text may change.
    assume("\r" not in text)
    assert text_of(html) == text
    parsed = parse_facets(text.encode(), facets)
    assert len([t for t, _ in elements(html) if t == "a"]) == len(parsed)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.sampled_from(
        [
            "app.bsky.feed.post",
            "app.bsky.richtext.facet#tag",
            "app.bsky.richtext.facet#link",
            "app.bsky.richtext.facet#mention",
            "2026-11-21T10:15:30.000Z",
            IMG_CID,
            f"at://{FRIEND}/app.bsky.feed.post/3k",
            "javascript:alert(1)",
            "porn",
            "\ud800",
        ]
    ),
)
_KEYS = st.sampled_from(
    [
        "$type",
        "text",
        "createdAt",
        "facets",
        "index",
        "byteStart",
        "byteEnd",
        "features",
        "tag",
        "uri",
        "did",
        "tags",
        "langs",
        "embed",
        "images",
        "image",
        "ref",
        "$link",
        "video",
        "external",
        "thumb",
        "record",
        "media",
        "reply",
        "parent",
        "labels",
        "values",
        "val",
        "alt",
    ]
)
json_like = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=6),
    max_leaves=30,
)


def _check(post: Post) -> None:
    assert_safe(post.html)
    wire = json.dumps(post.to_json(), ensure_ascii=False).encode("utf-8")
    assert Post.from_json(json.loads(wire)) == post


@settings(max_examples=400, deadline=None)
@given(json_like, st.one_of(st.none(), st.sampled_from(["2026-11-21T10:00:00Z", "x"])))
def test_property_arbitrary_json_only_raises_normalise_error(
    payload: Any, fallback: str | None
) -> None:
    try:
        post = normalise(payload, fallback_time=fallback, cid="bafy" if fallback else None)
    except NormaliseError:
        return
    _check(post)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, json_like), min_size=1, max_size=4))
def test_property_corrupted_real_record(corruptions: list[tuple[str, Any]]) -> None:
    embed = {
        "$type": "app.bsky.embed.recordWithMedia",
        "record": {"record": {"uri": f"at://{FRIEND}/app.bsky.feed.post/3k", "cid": CID_POST}},
        "media": {"images": [{"alt": "x", "image": blob(IMG_CID)}]},
    }
    payload = record(embed=embed)
    targets = [payload, payload["embed"], payload["embed"]["media"], payload["facets"][0]]
    for number, (key, value) in enumerate(corruptions):
        targets[number % len(targets)][key] = value
    try:
        post = normalise(payload, fallback_time="2026-11-21T10:00:00Z")
    except NormaliseError:
        return
    _check(post)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_property_identity_arguments_only_raise_normalise_error(did: str, rkey: str) -> None:
    try:
        post = normalise_bluesky_post(
            {"text": "x"}, did=did, rkey=rkey, fallback_time="2026-11-21T10:00:00Z"
        )
    except NormaliseError:
        return
    assert post.id == f"at://{did}/app.bsky.feed.post/{rkey}"
