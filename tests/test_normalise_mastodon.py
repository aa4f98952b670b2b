"""Mastodon Status entities -> Post, from payloads shaped like the real API's."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from html_safety import assert_safe, elements
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.model import Author, Link, Media, Metrics, Post
from aggregator.normalise import NormaliseError
from aggregator.normalise.mastodon import normalise_mastodon_status

SERVER = "https://social.example"

ADA: dict[str, Any] = {
    "id": "109300000000000001",
    "username": "ada",
    "acct": "ada",
    "display_name": "Ada Lovelace :verified:",
    "locked": False,
    "bot": False,
    "discoverable": True,
    "indexable": True,
    "group": False,
    "noindex": False,
    "created_at": "2022-11-05T00:00:00.000Z",
    "note": "<p>Engines, mostly analytical.</p>",
    "url": "https://social.example/@ada",
    "uri": "https://social.example/users/ada",
    "avatar": "https://files.social.example/accounts/avatars/109/300/000/original/ada.png",
    "avatar_static": "https://files.social.example/accounts/avatars/109/300/000/original/ada.png",
    "header": "https://social.example/headers/original/missing.png",
    "header_static": "https://social.example/headers/original/missing.png",
    "followers_count": 812,
    "following_count": 144,
    "statuses_count": 2210,
    "last_status_at": "2026-11-21",
    "emojis": [
        {
            "shortcode": "verified",
            "url": "https://files.social.example/custom_emojis/images/000/000/042/original/v.gif",
            "static_url": "https://files.social.example/custom_emojis/images/000/000/042/static/v.png",
            "visible_in_picker": True,
        }
    ],
    "fields": [],
}

STATUS: dict[str, Any] = {
    "id": "113512345678901234",
    "created_at": "2026-11-21T10:15:30.123Z",
    "in_reply_to_id": None,
    "in_reply_to_account_id": None,
    "sensitive": False,
    "spoiler_text": "",
    "visibility": "public",
    "language": "en",
    "uri": "https://social.example/users/ada/statuses/113512345678901234",
    "url": "https://social.example/@ada/113512345678901234",
    "replies_count": 2,
    "reblogs_count": 5,
    "favourites_count": 12,
    "quotes_count": 0,
    "edited_at": None,
    "content": (
        '<p>Opening keynote of <a href="https://social.example/tags/BlueLightCamp" '
        'class="mention hashtag" rel="tag">#<span>BlueLightCamp</span></a> is packed '
        ":blobcat_heart: Slides: "
        '<a href="https://slides.example.org/keynote-2026" target="_blank" '
        'rel="nofollow noopener" translate="no"><span class="invisible">https://</span>'
        '<span class="">slides.example.org/keynote-2026</span><span class="invisible">'
        '</span></a></p><p>Q&amp;A after lunch, ask <span class="h-card" translate="no">'
        '<a href="https://other.example/@grace" class="u-url mention">@<span>grace</span>'
        "</a></span></p>"
    ),
    "reblog": None,
    "application": {"name": "Web", "website": None},
    "account": ADA,
    "media_attachments": [],
    "mentions": [
        {
            "id": "109400000000000002",
            "username": "grace",
            "url": "https://other.example/@grace",
            "acct": "grace@other.example",
        }
    ],
    "tags": [
        {"name": "BlueLightCamp", "url": "https://social.example/tags/BlueLightCamp"},
    ],
    "emojis": [
        {
            "shortcode": "blobcat_heart",
            "url": "https://files.social.example/custom_emojis/images/000/000/007/original/b.png",
            "static_url": "https://files.social.example/custom_emojis/images/000/000/007/static/b.png",
            "visible_in_picker": True,
        }
    ],
    "card": None,
    "poll": None,
}


def status(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(STATUS)
    data.update(changes)
    return data


def test_local_status_on_its_home_server() -> None:
    post = normalise_mastodon_status(status(), server=SERVER)
    assert post.id == STATUS["uri"]
    assert post.platform == "mastodon"
    assert post.url == STATUS["url"]
    assert post.author == Author(
        handle="@ada@social.example",
        name="Ada Lovelace :verified:",
        avatar=ADA["avatar"],
        url="https://social.example/@ada",
    )
    assert post.text == (
        "Opening keynote of #BlueLightCamp is packed :blobcat_heart: Slides: "
        "https://slides.example.org/keynote-2026\n\nQ&A after lunch, ask @grace"
    )
    assert post.created_at == "2026-11-21T10:15:30Z"
    assert post.language == "en"
    assert post.tags == ("bluelightcamp",)
    assert post.metrics == Metrics(likes=12, reposts=5, replies=2)
    assert post.links == (Link(url="https://slides.example.org/keynote-2026"),)
    assert post.reply_to is None and post.quote_of is None
    assert not post.sensitive and post.spoiler_text == ""
    prov = post.provenance
    assert prov.source == "mastodon:social.example"
    assert prov.local_id == "113512345678901234"
    assert prov.home is True
    assert prov.edited_at is None
    assert (prov.bot, prov.discoverable, prov.noindex) == (False, True, False)
    assert prov.boosted_by is None
    assert prov.author_id == "https://social.example/@ada"


def test_html_is_sanitised_with_custom_emoji() -> None:
    post = normalise_mastodon_status(status(), server=SERVER)
    assert_safe(post.html, emoji_allowed=True)
    imgs = [attrs for tag, attrs in elements(post.html) if tag == "img"]
    assert imgs == [
        {
            "class": "emoji",
            "src": STATUS["emojis"][0]["static_url"],
            "alt": ":blobcat_heart:",
            "title": ":blobcat_heart:",
            "draggable": "false",
        }
    ]
    # Display-name emoji stay plain text in the name; the post HTML is not the place.
    assert ":verified:" in post.author.name
    assert "translate" not in post.html and "target" not in post.html


def test_remote_status_seen_from_another_server() -> None:
    remote_account = dict(ADA, acct="ada@social.example", id="1")
    post = normalise_mastodon_status(
        status(id="555", account=remote_account), server="https://mastodon.social/"
    )
    assert post.author.handle == "@ada@social.example"
    assert post.provenance.source == "mastodon:mastodon.social"
    assert post.provenance.home is False
    assert post.provenance.local_id == "555"


def test_server_given_as_bare_host() -> None:
    post = normalise_mastodon_status(status(), server="Social.Example")
    assert post.provenance.source == "mastodon:social.example"
    assert post.provenance.home is True


def test_boost_is_unwrapped() -> None:
    inner = status(account=dict(ADA, acct="ada@social.example"), id="7001")
    bob = {
        "id": "42",
        "username": "bob",
        "acct": "bob",
        "display_name": "Bob",
        "url": "https://mastodon.social/@bob",
        "avatar": "https://files.mastodon.social/bob.png",
        "bot": True,
    }
    boost: dict[str, Any] = {
        "id": "7002",
        "created_at": "2026-11-21T11:00:00.000Z",
        "uri": "https://mastodon.social/users/bob/statuses/7002/activity",
        "url": None,
        "content": "",
        "account": bob,
        "reblog": inner,
        "tags": [],
        "media_attachments": [],
        "emojis": [],
        "favourites_count": 0,
        "reblogs_count": 0,
        "replies_count": 0,
    }
    post = normalise_mastodon_status(boost, server="https://mastodon.social")
    assert post.id == STATUS["uri"]
    assert post.url == STATUS["url"]
    assert post.author.handle == "@ada@social.example"
    assert post.created_at == "2026-11-21T10:15:30Z"
    assert post.tags == ("bluelightcamp",)
    assert post.provenance.boosted_by == "@bob@mastodon.social"
    assert post.provenance.local_id == "7001"
    assert post.provenance.bot is False  # the author's flag, not the booster's
    assert post.provenance.home is False


def test_media_attachments() -> None:
    attachments: list[Any] = [
        {
            "id": "1",
            "type": "image",
            "url": "https://files.social.example/media_attachments/files/1/original/a.jpg",
            "preview_url": "https://files.social.example/media_attachments/files/1/small/a.jpg",
            "remote_url": None,
            "description": "The main hall, full, a slide reading 'Welcome'",
            "blurhash": "UFBWY[00",
            "meta": {"original": {"width": 1600, "height": 1200}},
        },
        {
            "id": "2",
            "type": "gifv",
            "url": "https://files.social.example/2.mp4",
            "preview_url": "https://files.social.example/2.png",
            "description": None,
        },
        {
            "id": "3",
            "type": "video",
            "url": None,
            "remote_url": "https://other.example/video.mp4",
            "preview_url": None,
            "description": "",
        },
        {"id": "4", "type": "audio", "url": "https://files.social.example/4.mp3"},
        {"id": "5", "type": "unknown", "url": None, "remote_url": "https://x.example/5"},
        {"id": "6", "type": "image", "url": "javascript:alert(1)"},
        {"id": "7", "type": ["image"], "url": "https://files.social.example/7.png"},
        "not an attachment",
    ]
    post = normalise_mastodon_status(status(media_attachments=attachments), server=SERVER)
    assert post.media == (
        Media(
            type="image",
            url=attachments[0]["url"],
            preview_url=attachments[0]["preview_url"],
            alt="The main hall, full, a slide reading 'Welcome'",
        ),
        Media(
            type="gif",
            url="https://files.social.example/2.mp4",
            preview_url="https://files.social.example/2.png",
        ),
        Media(type="video", url="https://other.example/video.mp4"),
    )


def test_card_comes_first_and_is_not_duplicated() -> None:
    card: dict[str, Any] = {
        "url": "https://slides.example.org/keynote-2026",
        "title": "Keynote: Radio in the Field",
        "description": "Slides from the opening keynote",
        "type": "link",
        "author_name": "",
        "provider_name": "Slides",
        "image": "https://files.social.example/cache/preview_cards/images/1/original/k.png",
        "width": 400,
        "height": 200,
    }
    post = normalise_mastodon_status(status(card=card), server=SERVER)
    assert post.links == (
        Link(
            url=card["url"],
            title="Keynote: Radio in the Field",
            description="Slides from the opening keynote",
            image=card["image"],
        ),
    )


def test_card_with_empty_fields_and_bad_image() -> None:
    card = {"url": "https://blog.example/post", "title": "", "description": "  ", "image": "x"}
    post = normalise_mastodon_status(status(card=card, content="<p>hi</p>"), server=SERVER)
    assert post.links == (Link(url="https://blog.example/post"),)


def test_content_warning_and_sensitive_media() -> None:
    post = normalise_mastodon_status(
        status(sensitive=True, spoiler_text="Spoilers: the keynote ending"), server=SERVER
    )
    assert post.sensitive is True
    assert post.spoiler_text == "Spoilers: the keynote ending"


def test_sensitive_must_be_a_real_boolean() -> None:
    assert normalise_mastodon_status(status(sensitive="false"), server=SERVER).sensitive is False


def test_edited_status() -> None:
    post = normalise_mastodon_status(
        status(edited_at="2026-11-21T10:20:00.000+00:00"), server=SERVER
    )
    assert post.provenance.edited_at == "2026-11-21T10:20:00Z"


def test_reply_resolved_through_local_ids() -> None:
    mapping = {"113500000000000000": "https://other.example/users/grace/statuses/1"}
    post = normalise_mastodon_status(
        status(in_reply_to_id="113500000000000000"), server=SERVER, local_to_uri=mapping
    )
    assert post.reply_to == "https://other.example/users/grace/statuses/1"
    unknown = normalise_mastodon_status(status(in_reply_to_id="999"), server=SERVER)
    assert unknown.reply_to is None


def test_mastodon_44_quote() -> None:
    quoted = status(
        id="113400000000000000",
        uri="https://other.example/users/grace/statuses/113400000000000000",
    )
    content = (
        '<p class="quote-inline">RE: <a href="https://other.example/@grace/113400000000000000">'
        "https://other.example/@grace/113400000000000000</a></p><p>So true!</p>"
    )
    post = normalise_mastodon_status(
        status(content=content, quote={"state": "accepted", "quoted_status": quoted}),
        server=SERVER,
    )
    assert post.quote_of == quoted["uri"]
    # The compatibility fallback link is the quote, not a link the author shared.
    assert post.links == ()
    assert '<p class="quote-inline">' in post.html


def test_shallow_quote_and_pending_quote() -> None:
    mapping = {"77": "https://other.example/users/grace/statuses/77"}
    shallow = status(quote={"state": "accepted", "quoted_status_id": "77"})
    assert (
        normalise_mastodon_status(shallow, server=SERVER, local_to_uri=mapping).quote_of
        == mapping["77"]
    )
    pending = status(quote={"state": "pending", "quoted_status": None})
    assert normalise_mastodon_status(pending, server=SERVER).quote_of is None


def test_fedibird_style_quote() -> None:
    quoted = status(uri="https://fedibird.example/users/x/statuses/1")
    post = normalise_mastodon_status(status(quote=quoted), server=SERVER)
    assert post.quote_of == "https://fedibird.example/users/x/statuses/1"


def test_consent_flags() -> None:
    account = dict(ADA, bot=True, noindex=True, discoverable=None)
    post = normalise_mastodon_status(status(account=account), server=SERVER)
    assert post.provenance.bot is True
    assert post.provenance.noindex is True
    assert post.provenance.discoverable is None


def test_author_id_falls_back_to_actor_uri() -> None:
    account = dict(ADA, url=None)
    post = normalise_mastodon_status(status(account=account), server=SERVER)
    assert post.provenance.author_id == "https://social.example/users/ada"
    assert post.author.url == ""


def test_account_without_acct_uses_username() -> None:
    account = {k: v for k, v in ADA.items() if k != "acct"}
    post = normalise_mastodon_status(status(account=account), server=SERVER)
    assert post.author.handle == "@ada@social.example"


def test_non_ascii_and_mixed_case_tags() -> None:
    tags = [{"name": "Straße"}, {"name": "BLUELIGHTCAMP"}, {"name": "bluelightcamp"}, {"x": 1}]
    post = normalise_mastodon_status(status(tags=tags), server=SERVER)
    assert post.tags == ("strasse", "bluelightcamp")


def test_hostile_content_and_urls() -> None:
    post = normalise_mastodon_status(
        status(
            content='<p onclick="x()">hi<script>alert(1)</script><img src=x onerror=alert(1)></p>',
            url="javascript:alert(1)",
            account=dict(ADA, avatar="data:image/png;base64,AAAA", url="javascript:x"),
        ),
        server=SERVER,
    )
    assert post.html == "<p>hi</p>"
    assert post.text == "hi"
    assert post.url == STATUS["uri"]
    assert post.author.avatar is None
    assert post.author.url == ""


def test_counts_are_defensive() -> None:
    post = normalise_mastodon_status(
        status(favourites_count=-3, reblogs_count="17", replies_count=True), server=SERVER
    )
    assert post.metrics == Metrics(likes=0, reposts=17, replies=0)


def test_language_must_look_like_a_language() -> None:
    assert normalise_mastodon_status(status(language="pt-BR"), server=SERVER).language == "pt-BR"
    assert normalise_mastodon_status(status(language="<b>"), server=SERVER).language is None
    assert normalise_mastodon_status(status(language=None), server=SERVER).language is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "JSON object"),
        ([STATUS], "JSON object"),
        ("status", "JSON object"),
        (status(uri=None), "no uri"),
        (status(uri=""), "no uri"),
        (status(uri=12), "no uri"),
        (status(uri="https://x.example/has space"), "usable identifier"),
        (status(account=None), "no account"),
        (status(account={"id": "1"}), "acct/username"),
        (status(created_at="yesterday"), "created_at"),
        (status(created_at="0001-01-01T00:00:00Z"), "created_at"),
        (status(reblog={"id": "1"}), "no uri"),
    ],
)
def test_unusable_payloads_raise_normalise_error(payload: Any, message: str) -> None:
    with pytest.raises(NormaliseError, match=message):
        normalise_mastodon_status(payload, server=SERVER)


def test_bad_server_raises_normalise_error() -> None:
    with pytest.raises(NormaliseError, match="server"):
        normalise_mastodon_status(status(), server="")
    with pytest.raises(NormaliseError, match="server"):
        normalise_mastodon_status(status(), server="https://[::1")


def test_normalise_error_is_a_value_error() -> None:
    assert issubclass(NormaliseError, ValueError)


def test_round_trips_through_the_contract_json() -> None:
    card = {"url": "https://blog.example/a", "title": "A", "description": None, "image": None}
    post = normalise_mastodon_status(
        status(card=card, sensitive=True, spoiler_text="cw"), server=SERVER
    )
    wire = json.loads(json.dumps(post.to_json()))
    assert Post.from_json(wire) == post


# --- properties ----------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "https://social.example/users/x/statuses/1",
            "2026-11-21T10:15:30.000Z",
            "javascript:alert(1)",
            "<script>alert(1)</script>",
            "image",
            "gifv",
            "ada@other.example",
            "\ud800",
        ]
    ),
)
_KEYS = st.sampled_from(
    [
        "id",
        "uri",
        "url",
        "content",
        "account",
        "acct",
        "username",
        "reblog",
        "created_at",
        "media_attachments",
        "type",
        "card",
        "tags",
        "name",
        "emojis",
        "shortcode",
        "static_url",
        "quote",
        "quoted_status",
        "in_reply_to_id",
        "edited_at",
        "favourites_count",
        "language",
    ]
)
json_like = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=6),
    max_leaves=30,
)


def _check(post: Post) -> None:
    assert_safe(post.html, emoji_allowed=True)
    wire = json.dumps(post.to_json(), ensure_ascii=False).encode("utf-8")
    assert Post.from_json(json.loads(wire)) == post


@settings(max_examples=400, deadline=None)
@given(json_like)
def test_property_arbitrary_json_only_raises_normalise_error(payload: Any) -> None:
    try:
        post = normalise_mastodon_status(payload, server=SERVER, local_to_uri={"1": "x"})
    except NormaliseError:
        return
    _check(post)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, json_like), min_size=1, max_size=4), st.booleans())
def test_property_corrupted_real_status(corruptions: list[tuple[str, Any]], nested: bool) -> None:
    payload = status()
    target = payload["account"] if nested else payload
    for key, value in corruptions:
        target[key] = value
    try:
        post = normalise_mastodon_status(payload, server=SERVER)
    except NormaliseError:
        return
    _check(post)
