"""Quote detection on the labelled synthetic event: precision first."""

from __future__ import annotations

from factories import make_post
from rapidfuzz import fuzz
from test_digest_assign import labelled_event

from aggregator.demo import load_dataset
from aggregator.digest.quotes import Speaker, find_quotes, group_quotes


def speakers_of(data: dict) -> list[Speaker]:  # type: ignore[type-arg]
    seen: dict[str, Speaker] = {}
    for session in data["sessions"]:
        for leader in session["leaders"]:
            handles = (leader["handle"],) if leader.get("handle") else ()
            seen[leader["name"]] = Speaker(leader["name"], handles)
    return list(seen.values())


def test_quote_precision_and_recall_on_the_labelled_event() -> None:
    data = load_dataset()
    sessions, posts = labelled_event()
    speakers = speakers_of(data)
    titles = [s.title for s in sessions]
    hits = [h for post, _ in posts for h in find_quotes(post, speakers, titles)]  # type: ignore[arg-type]
    confident, candidates = group_quotes(hits)
    expected = data["expected"]["quotes"]

    def matches(quote, truth) -> bool:  # type: ignore[no-untyped-def]
        return quote.speaker == truth["speaker"] and fuzz.ratio(quote.text, truth["text"]) >= 85

    correct = sum(1 for q in confident if any(matches(q, t) for t in expected))
    found = sum(1 for t in expected if any(matches(q, t) for q in confident))
    precision = correct / max(1, len(confident))
    recall = found / len(expected)
    print(
        f"\nquotes: {len(confident)} published, {len(candidates)} candidates for review, "
        f"{len(expected)} expected; precision {precision:.3f}, recall {recall:.3f}"
    )
    assert precision >= 0.9
    assert recall >= 0.5


def test_attribution_patterns_and_grouping() -> None:
    speakers = [Speaker("Ada Example", ("@ada@camp.example",)), Speaker("Bo Sample")]
    posts = [
        make_post(1, text="“Data you cannot find does not exist.” — Ada Example"),
        make_post(2, text='Ada Example: "Data you cannot find does not exist!"'),
        make_post(3, text="«Les cartes mentent toujours un peu» dit Bo Sample"),
        make_post(4, text="Going to “Accessible maps for everyone” now"),  # a title
        make_post(5, text="“Someone said something clever here” at lunch"),  # no speaker
        make_post(6, text="“ok”"),  # too short
    ]
    hits = [h for p in posts for h in find_quotes(p, speakers, ["Accessible maps for everyone"])]
    confident, candidates = group_quotes(hits)
    assert [(q.speaker, len(q.posts)) for q in confident] == [("Ada Example", 2), ("Bo Sample", 1)]
    assert [q.text for q in candidates] == ["Someone said something clever here"]
