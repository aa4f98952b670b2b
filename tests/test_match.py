"""Hashtag matching: exact on normalised tags, and a prefilter that never hides a match."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aggregator.match import BLUESKY_TAG_FEATURE, HashtagMatcher, normalise_tag

MATCHER = HashtagMatcher(["#BlueLightCamp", "blc26", "  bluelightcamp "])


def tag_facet(tag: str, start: int = 0, end: int = 5) -> dict[str, Any]:
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": BLUESKY_TAG_FEATURE, "tag": tag}],
    }


def bsky_record(*facet_tags: str, tags: list[Any] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": " ".join(f"#{t}" for t in facet_tags) or "no tags here",
        "createdAt": "2026-11-21T10:15:00.000Z",
        "langs": ["en"],
        "facets": [tag_facet(t) for t in facet_tags],
    }
    if tags is not None:
        record["tags"] = tags
    return record


def jetstream_frame(record: dict[str, Any], *, ensure_ascii: bool = False) -> bytes:
    frame = {
        "did": "did:plc:abc123",
        "time_us": 1795000000000000,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vutsw2b",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3l3qo2vuowo2b",
            "record": record,
            "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi",
        },
    }
    return json.dumps(frame, ensure_ascii=ensure_ascii).encode("utf-8")


# --- normalise_tag -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#BlueLightCamp", "bluelightcamp"),
        ("  blc26 ", "blc26"),
        ("##twice", "twice"),
        ("＃ＢＬＣ２６", "blc26"),  # full-width, as typed on a Japanese keyboard
        ("Straße", "strasse"),
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),
        ("#", ""),
        ("", ""),
    ],
)
def test_normalise_tag(raw: str, expected: str) -> None:
    assert normalise_tag(raw) == expected


def test_matcher_keeps_configuration_order_without_duplicates() -> None:
    assert MATCHER.tags == ("bluelightcamp", "blc26")
    assert HashtagMatcher(["", "#", "  "]).tags == ()


# --- decoded posts -----------------------------------------------------------------------


def test_matches_tags_case_and_hash_insensitive() -> None:
    assert MATCHER.matches_tags(["BLUELIGHTCAMP"])
    assert MATCHER.matches_tags(["#blc26"])
    assert MATCHER.matches_tags(["ＢＬＣ２６"])
    assert MATCHER.matches_tags(["blc26\x1f"])  # str.strip() whitespace, like normalise_tag
    assert not MATCHER.matches_tags(["bluelightcamping", "blc", "camp", "blc26x"])
    assert MATCHER.matches_tags("blc26")  # a lone string is one tag, not its characters
    assert not MATCHER.matches_tags([])


def test_matched_returns_configured_tags_in_order() -> None:
    assert MATCHER.matched(["x", "BLC26", "#BlueLightCamp", "blc26"]) == ["bluelightcamp", "blc26"]
    assert MATCHER.matched(["camp"]) == []


def test_never_matches_substrings_of_words() -> None:
    camp = HashtagMatcher(["#camp"])
    assert not camp.matches_tags(["bluelightcamp"])
    assert not camp.matches_bluesky_record(bsky_record("bluelightcamp", tags=["campfire"]))
    assert not camp.matches_mastodon_status({"tags": [{"name": "bluelightcamp"}]})
    assert camp.matches_tags(["Camp"])


def test_bluesky_facet_tag_matches() -> None:
    assert MATCHER.matches_bluesky_record(bsky_record("BlueLightCamp"))
    assert MATCHER.matches_bluesky_record(bsky_record("photography", "blc26"))


def test_bluesky_tags_array_matches() -> None:
    assert MATCHER.matches_bluesky_record(bsky_record("photography", tags=["BLC26"]))
    assert not MATCHER.matches_bluesky_record(bsky_record("photography", tags=["blc2"]))


def test_bluesky_non_tag_facets_do_not_match() -> None:
    record = bsky_record()
    record["facets"] = [
        {
            "index": {"byteStart": 0, "byteEnd": 10},
            "features": [
                {"$type": "app.bsky.richtext.facet#link", "uri": "https://x.example/blc26"},
                {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:blc26"},
            ],
        }
    ]
    record["text"] = "#blc26 in text without a facet"
    assert not MATCHER.matches_bluesky_record(record)


@pytest.mark.parametrize(
    "record",
    [
        None,
        [],
        "blc26",
        {},
        {"facets": "blc26"},
        {"facets": [None, 1, "x", {"features": None}, {"features": [None, "blc26", 3]}]},
        {"facets": [{"features": [{"$type": BLUESKY_TAG_FEATURE, "tag": ["blc26"]}]}]},
        {"facets": [{"features": [{"$type": BLUESKY_TAG_FEATURE}]}]},
        {"tags": "blc26"},
        {"tags": [None, 26, {"tag": "blc26"}]},
    ],
)
def test_bluesky_malformed_records_do_not_match_or_raise(record: Any) -> None:
    assert not MATCHER.matches_bluesky_record(record)


def test_mastodon_status_and_boost() -> None:
    status = {"id": "1", "tags": [{"name": "BlueLightCamp", "url": "https://s.example/tags/x"}]}
    assert MATCHER.matches_mastodon_status(status)
    boost = {"id": "2", "tags": [], "reblog": status}
    assert MATCHER.matches_mastodon_status(boost)
    assert not MATCHER.matches_mastodon_status({"tags": [{"name": "blc"}], "reblog": None})
    junk: list[Any] = [None, [], {"tags": None}, {"tags": [None, {"name": 5}]}, {"reblog": "x"}]
    for payload in junk:
        assert not MATCHER.matches_mastodon_status(payload)


def test_non_ascii_configured_tag() -> None:
    matcher = HashtagMatcher(["#Straße", "東京"])
    assert matcher.matches_tags(["STRASSE"])
    assert matcher.matches_tags(["strasse"])
    assert matcher.matches_bluesky_record(bsky_record("東京"))
    assert not matcher.matches_bluesky_record(bsky_record("東京都"))


# --- prefilter ---------------------------------------------------------------------------


def test_prefilter_passes_frames_that_match() -> None:
    for record in (
        bsky_record("BlueLightCamp"),
        bsky_record(tags=["BLC26"]),
        bsky_record("blc26"),
    ):
        for ensure_ascii in (False, True):
            raw = jetstream_frame(record, ensure_ascii=ensure_ascii)
            assert MATCHER.might_match_raw(raw)
            assert MATCHER.might_match_raw(raw.decode())


def test_prefilter_rejects_unrelated_frames() -> None:
    plain = jetstream_frame(bsky_record("photography"))
    assert not MATCHER.might_match_raw(plain)
    emoji = jetstream_frame(bsky_record("café", "🎉"), ensure_ascii=False)
    assert not MATCHER.might_match_raw(emoji)
    escaped = jetstream_frame(bsky_record("café", "🎉"), ensure_ascii=True)
    assert not MATCHER.might_match_raw(escaped)
    # Go's encoder writes & < > as \u0026 \u003c \u003e: not letters of our tags.
    go_style = plain.replace(b"photography", b"Q\\u0026A \\u003c3")
    assert not MATCHER.might_match_raw(go_style)
    assert not MATCHER.might_match_raw(bytearray(plain))
    assert not MATCHER.might_match_raw(memoryview(plain))


def test_prefilter_is_conservative_about_escapes_and_lookalikes() -> None:
    # 'c' written as \u0063: decodes to a match, must not be filtered out.
    escaped = b'{"record":{"tags":["bl\\u006326"]}}'
    assert MATCHER.matches_bluesky_record(json.loads(escaped)["record"])
    assert MATCHER.might_match_raw(escaped)
    # Full-width and mathematical-bold letters fold to ASCII under NFKC.
    for tag in ("ｂｌｃ２６", "𝐛𝐥𝐜𝟐𝟔"):
        for ensure_ascii in (False, True):
            raw = jetstream_frame(bsky_record(tag), ensure_ascii=ensure_ascii)
            assert MATCHER.matches_bluesky_record(json.loads(raw)["commit"]["record"])
            assert MATCHER.might_match_raw(raw)


def test_prefilter_with_non_ascii_and_escapable_tags() -> None:
    matcher = HashtagMatcher(["straße"])
    raw = jetstream_frame(bsky_record("STRASSE"))
    assert matcher.might_match_raw(raw)
    assert matcher.might_match_raw(jetstream_frame(bsky_record("Straße"), ensure_ascii=True))
    assert not matcher.might_match_raw(jetstream_frame(bsky_record("photography")))
    slash = HashtagMatcher(["a/b"])
    assert slash.might_match_raw(b'{"tags":["a\\/b"]}')


def test_prefilter_with_no_tags_and_odd_input() -> None:
    assert not HashtagMatcher([]).might_match_raw(b'{"tags":["blc26"]}')
    assert not MATCHER.might_match_raw(b"")
    assert not MATCHER.might_match_raw(12)  # type: ignore[arg-type]
    assert MATCHER.might_match_raw(b"\xff\xfe blc26 \x80")


# --- properties --------------------------------------------------------------------------

# Letters from our tags, their upper case, lookalikes and noise, so random tags often
# come close to (or onto) a configured tag.
_TAG_ALPHABET = st.sampled_from(
    [*"blc26BLC#ｂｌｃ２６𝐛𝟐 ßéK\u0301-_", "\ud83c", "&", "<", '"', "\\", "\n", "🎉"]
)
_TAGS = st.one_of(
    st.text(_TAG_ALPHABET, max_size=8),
    st.sampled_from(["blc26", "BLC26", "#blc26", "bluelightcamp", "blc2", "camp"]),
    st.text(max_size=8),
)


@settings(max_examples=500, deadline=None)
@given(
    facet_tags=st.lists(_TAGS, max_size=3),
    array_tags=st.lists(_TAGS, max_size=3),
    text=st.text(max_size=40),
    ensure_ascii=st.booleans(),
)
def test_property_prefilter_never_hides_a_match(
    facet_tags: list[str], array_tags: list[str], text: str, ensure_ascii: bool
) -> None:
    record = bsky_record(*facet_tags, tags=array_tags)
    record["text"] = text
    try:
        raw = jetstream_frame(record, ensure_ascii=ensure_ascii)
    except UnicodeEncodeError:
        assume(False)  # a lone surrogate cannot travel as raw UTF-8
        return
    decoded = json.loads(raw)["commit"]["record"]
    if MATCHER.matches_bluesky_record(decoded):
        assert MATCHER.might_match_raw(raw)
        assert MATCHER.might_match_raw(raw.decode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_TAGS, min_size=1, max_size=3), st.lists(_TAGS, max_size=4), st.booleans())
def test_property_prefilter_for_any_configuration(
    configured: list[str], tags: list[str], ensure_ascii: bool
) -> None:
    matcher = HashtagMatcher(configured)
    record = bsky_record(tags=tags)
    try:
        raw = jetstream_frame(record, ensure_ascii=ensure_ascii)
    except UnicodeEncodeError:
        assume(False)
        return
    if matcher.matches_bluesky_record(json.loads(raw)["commit"]["record"]):
        assert matcher.might_match_raw(raw)


@settings(max_examples=300, deadline=None)
@given(_TAGS, _TAGS)
def test_property_matching_is_exact_equality_of_normal_forms(configured: str, tag: str) -> None:
    matcher = HashtagMatcher([configured])
    expected = bool(normalise_tag(configured)) and normalise_tag(configured) == normalise_tag(tag)
    assert matcher.matches_tags([tag]) == expected
    assert matcher.matches_bluesky_record(bsky_record(tags=[tag])) == expected
    assert matcher.matches_mastodon_status({"tags": [{"name": tag}]}) == expected


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["facets", "features", "$type", "tag", "tags", "name", "reblog", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_property_matchers_never_raise(payload: Any) -> None:
    MATCHER.matches_bluesky_record(payload)
    MATCHER.matches_mastodon_status(payload)
