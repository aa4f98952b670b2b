"""sanitise_html / html_to_text: safe to project, readable as text, bounded in cost."""

from __future__ import annotations

import pytest
from html_safety import REL, assert_safe, elements
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.sanitise import (
    MAX_HTML_CHARS,
    html_text_and_links,
    html_to_text,
    sanitise_html,
    scrub_text,
)

# --- examples ----------------------------------------------------------------------------


def test_keeps_mastodon_markup_and_marks_links() -> None:
    content = (
        '<p>Slides from <span class="h-card" translate="no"><a href="https://social.example/@ada" '
        'class="u-url mention">@<span>ada</span></a></span>: <a href="https://example.org/slides" '
        'target="_blank" rel="nofollow noopener">'
        '<span class="invisible">https://</span><span class="">example.org/slides</span></a>'
        "</p><p>Part two<br>line two</p>"
    )
    out = sanitise_html(content)
    assert '<span class="h-card">' in out
    assert 'class="u-url mention"' in out
    assert f'rel="{REL}"' in out
    assert "target" not in out and "translate" not in out
    assert '<span class="invisible">https://</span>' in out
    assert "<p>Part two<br>line two</p>" in out
    assert_safe(out)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">click</a>',
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        '<a href="java&#x09;script:alert(1)">click</a>',
        '<a href="&#106;avascript:alert(1)">click</a>',
        '<a href=" javascript:alert(1)">click</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<p style="position:fixed;top:0">overlay</p>',
        '<p onclick="alert(1)" onmouseover="alert(2)">x</p>',
        "<svg><script>alert(1)</script></svg>",
        '<svg onload="alert(1)"></svg>',
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
        '<iframe src="https://evil.example"></iframe>',
        "<style>body{display:none}</style>",
        '<form action="https://evil.example"><input name="pw"></form>',
        '<object data="x.swf"></object><embed src="x.swf">',
        '<a href="/relative/path">relative</a>',
        "<!-- <script>alert(1)</script> -->",
        "<![CDATA[<script>alert(1)</script>]]>",
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        '<base href="https://evil.example/">',
        '<img src="https://tracker.example/pixel.gif">',
        '<p><a href="https://ok.example" onclick="steal()" style="color:red">ok</a></p>',
        "<scr<script>ipt>alert(1)</script>",
        '<a href="https://ok.example"\tonfocus=alert(1) autofocus>x</a>',
    ],
)
def test_hostile_markup_is_neutralised(hostile: str) -> None:
    out = sanitise_html(hostile)
    assert_safe(out)
    assert "alert(1)</script>" not in out


def test_script_and_style_content_is_dropped_not_unwrapped() -> None:
    out = sanitise_html("<p>hi</p><script>var secret = 1;</script><style>p{}</style>")
    assert out == "<p>hi</p>"


def test_mailto_kept_and_only_safe_classes() -> None:
    out = sanitise_html('<a href="mailto:ada@example.org" class="mention evil">mail</a>')
    assert 'href="mailto:ada@example.org"' in out
    assert 'class="mention"' in out


def test_custom_emoji_rendered_in_text_only() -> None:
    content = (
        '<p>hello :blobcat: and :unknown: and <a href="https://x.example/:blobcat:/">'
        "link :blobcat:</a> <code>:blobcat:</code> word:blobcat:word</p>"
    )
    out = sanitise_html(content, emojis={"blobcat": "https://files.example/blobcat.png"})
    found = [attrs for tag, attrs in elements(out) if tag == "img"]
    # Text node + link text; not in the href, not in <code>, not glued inside a word.
    assert len(found) == 2
    assert found[0] == {
        "class": "emoji",
        "src": "https://files.example/blobcat.png",
        "alt": ":blobcat:",
        "title": ":blobcat:",
        "draggable": "false",
    }
    assert 'href="https://x.example/:blobcat:/"' in out
    assert "<code>:blobcat:</code>" in out
    assert ":unknown:" in out
    assert "word:blobcat:word" in out
    assert_safe(out, emoji_allowed=True)


def test_adjacent_emoji_both_render() -> None:
    out = sanitise_html(
        "<p>:a1::b2:</p>", emojis={"a1": "https://e/a.png", "b2": "https://e/b.png"}
    )
    assert [a["alt"] for t, a in elements(out) if t == "img"] == [":a1:", ":b2:"]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        '"><script>alert(1)</script>',
        "mailto:x@example.org",
        "/relative.png",
    ],
)
def test_hostile_emoji_urls_are_ignored(url: str) -> None:
    out = sanitise_html("<p>:evil:</p>", emojis={"evil": url})
    assert_safe(out, emoji_allowed=True)
    assert all(tag != "img" for tag, _ in elements(out))


def test_emoji_url_with_quotes_is_escaped_not_broken_out() -> None:
    out = sanitise_html("<p>:ok:</p>", emojis={"ok": 'https://e.example/a.png" onerror="alert(1)'})
    assert_safe(out, emoji_allowed=True)


def test_shortcode_in_user_html_cannot_smuggle_an_img() -> None:
    # Only our renderer creates <img>; markup in the content never survives as one.
    content = '<img class="emoji" src="https://tracker.example/x.png"> :ok:'
    out = sanitise_html(content, emojis={"ok": "https://e.example/ok.png"})
    imgs = [attrs for tag, attrs in elements(out) if tag == "img"]
    assert [i["src"] for i in imgs] == ["https://e.example/ok.png"]


def test_empty_and_non_string() -> None:
    assert sanitise_html("") == ""
    assert sanitise_html(None) == ""  # type: ignore[arg-type]
    assert html_to_text("") == ""


def test_lone_surrogates_and_nul_do_not_crash() -> None:
    out = sanitise_html("<p>a\ud800b\x00c</p>")
    assert out == "<p>a\ufffdbc</p>"
    assert html_to_text("<p>a\udfffb\x00</p>") == "a\ufffdb"
    assert scrub_text("x\ud83dy") == "x\ufffdy"


@pytest.mark.timeout(30)
def test_huge_input_is_truncated_before_parsing() -> None:
    five_mb = "<p>" + "x" * (5 * 1024 * 1024) + "</p>"
    out = sanitise_html(five_mb)
    assert len(out) <= MAX_HTML_CHARS + 100
    assert len(html_to_text(five_mb)) <= MAX_HTML_CHARS


@pytest.mark.timeout(30)
@pytest.mark.parametrize("unit", ["<div>", "<ul><li>", "<dl><dd>", "<b><i>", "<a>", "&amp;"])
def test_pathological_nesting_stays_bounded(unit: str) -> None:
    hostile = unit * (5 * 1024 * 1024 // len(unit))
    assert_safe(sanitise_html(hostile))
    html_to_text(hostile)


# --- plain text --------------------------------------------------------------------------


def test_text_paragraphs_breaks_and_entities() -> None:
    content = (
        "<p>Fish &amp; chips &lt;3 &#128512; &eacute;</p><p>line one<br>line two<br/>line three</p>"
    )
    assert html_to_text(content) == "Fish & chips <3 😀 é\n\nline one\nline two\nline three"


def test_text_collapses_whitespace_and_keeps_pre() -> None:
    assert html_to_text("<p>  a \n\n  b   </p>  <p>c</p>") == "a b\n\nc"
    assert html_to_text("<pre>x  = 1\n  y</pre>") == "x  = 1\n  y"


def test_text_includes_hidden_url_parts_and_lists() -> None:
    content = (
        '<p><a href="https://example.org/a/long/path"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.org/a/lo</span><span class="invisible">ng/path</span>'
        "</a></p><ul><li>one</li><li>two</li></ul>"
    )
    assert html_to_text(content) == "https://example.org/a/long/path\n\n- one\n- two"


def test_text_drops_script_and_style() -> None:
    assert html_to_text("<p>a</p><script>evil()</script><style>p{}</style><p>b</p>") == "a\n\nb"


def test_text_of_unbalanced_markup() -> None:
    assert html_to_text("<p>a<b>bold<p>c</i></div>") == "abold\n\nc"


@pytest.mark.parametrize("markup", ["<![ x", "<![if x]>a", "<!DOCTYPE", "<?php", "<a b='", "</"])
def test_text_of_markup_python_parser_chokes_on(markup: str) -> None:
    html_to_text(markup)  # html.parser alone raises AssertionError on "<![ x"


def test_links_skip_mentions_hashtags_and_quote_fallback() -> None:
    content = (
        '<p class="quote-inline">RE: <a href="https://other.example/@bob/1">'
        "https://other.example/@bob/1</a></p>"
        '<p><a href="https://social.example/@ada" class="u-url mention">@ada</a> '
        '<a href="https://social.example/tags/blc26" class="mention hashtag" rel="tag">#blc26</a> '
        '<a href="https://blog.example/write-up">write-up</a> '
        '<a href="https://blog.example/write-up">again</a> '
        '<a href="javascript:alert(1)">bad</a></p>'
    )
    text, links = html_text_and_links(content)
    assert links == ["https://blog.example/write-up"]
    assert "write-up again bad" in text


# --- properties --------------------------------------------------------------------------

_TAG_NAMES = st.sampled_from(
    [
        "script",
        "SCRIPT",
        "img",
        "a",
        "p",
        "span",
        "svg",
        "math",
        "iframe",
        "style",
        "object",
        "b",
        "code",
        "pre",
        "template",
        "noscript",
        "textarea",
        "title",
        "xmp",
        "base",
        "meta",
        "link",
        "form",
        "input",
    ]
)
_ATTR_NAMES = st.sampled_from(
    [
        "href",
        "src",
        "style",
        "onclick",
        "onerror",
        "ONLOAD",
        "class",
        "srcset",
        "xlink:href",
        "formaction",
        "action",
        "data",
        "rel",
        "target",
    ]
)
_ATTR_VALUES = st.one_of(
    st.sampled_from(
        [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "java\tscript:alert(1)",
            "&#106;avascript:alert(1)",
            "&#x6A;avascript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:x",
            "https://ok.example/",
            "mailto:a@b.example",
            "emoji",
            "mention hashtag",
            "color:red",
            "expression(alert(1))",
            '"><script>alert(1)</script>',
            "x' onerror='alert(1)",
        ]
    ),
    st.text(max_size=20),
)
_QUOTES = st.sampled_from(['"', "'", ""])


@st.composite
def _start_tags(draw: st.DrawFn) -> str:
    name = draw(_TAG_NAMES)
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        quote = draw(_QUOTES)
        parts.append(f" {draw(_ATTR_NAMES)}={quote}{draw(_ATTR_VALUES)}{quote}")
    closer = draw(st.sampled_from([">", "/>", "", " >"]))
    return f"<{name}{''.join(parts)}{closer}"


_FRAGMENTS = st.one_of(
    _start_tags(),
    _TAG_NAMES.map(lambda n: f"</{n}>"),
    st.text(max_size=30),
    st.sampled_from(
        [
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<![ ",
            "<![if ",
            "<!",
            "<?",
            "&",
            "&lt;",
            "<",
            ">",
            ":blobcat:",
            "\x00",
            "</",
        ]
    ),
)
hostile_html = st.lists(_FRAGMENTS, max_size=25).map("".join)


@settings(max_examples=400, deadline=None)
@given(hostile_html)
def test_property_sanitised_output_is_safe(markup: str) -> None:
    assert_safe(sanitise_html(markup))


@settings(max_examples=300, deadline=None)
@given(
    hostile_html,
    st.dictionaries(
        st.sampled_from(["blobcat", "ok", "x", "a_b"]),
        st.one_of(_ATTR_VALUES, st.just("https://e.example/e.png")),
        max_size=3,
    ),
)
def test_property_emoji_rendering_is_safe(markup: str, emojis: dict[str, str]) -> None:
    assert_safe(sanitise_html(markup, emojis=emojis), emoji_allowed=True)


@settings(max_examples=300, deadline=None)
@given(st.one_of(hostile_html, st.text()))
def test_property_sanitising_is_stable(markup: str) -> None:
    once = sanitise_html(markup)
    assert sanitise_html(once) == once


@settings(max_examples=300, deadline=None)
@given(st.one_of(hostile_html, st.text()))
def test_property_text_never_raises_and_is_clean(markup: str) -> None:
    text, links = html_text_and_links(markup)
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogates
    assert all(link.startswith(("http://", "https://")) for link in links)
