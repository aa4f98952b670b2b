"""Assignment of the labelled synthetic event's posts to its sessions: precision first."""

from __future__ import annotations

from datetime import timedelta

from aggregator.demo import event_epoch, load_dataset
from aggregator.digest.assign import assign
from aggregator.digest.schedule import Session
from aggregator.match import normalise_tag
from aggregator.model import format_timestamp
from aggregator.normalise.mastodon import normalise_mastodon_status


def labelled_event() -> tuple[list[Session], list[tuple[object, str | None]]]:
    data = load_dataset()
    epoch = event_epoch(data)
    sessions = [
        Session(
            id=s["id"],
            title=s["title"],
            room=s["room"],
            start=epoch + timedelta(seconds=s["start_s"]),
            end=epoch + timedelta(seconds=s["end_s"]),
            leaders=tuple(x["name"] for x in s["leaders"])
            + tuple(x["handle"] for x in s["leaders"] if x.get("handle")),
            hashtag=normalise_tag(s["hashtag"]) if s.get("hashtag") else None,
        )
        for s in data["sessions"]
    ]
    posts = []
    for item in data["items"]:
        if item["op"] != "create" or item["status"].get("reblog_uri"):
            continue
        status = dict(item["status"])
        status["id"] = str(len(posts) + 1)
        status["created_at"] = format_timestamp(epoch + timedelta(seconds=item["at"]))
        post = normalise_mastodon_status(status, server="https://social.bluelight.example")
        posts.append((post, item.get("session")))
    return sessions, posts


def test_assignment_precision_and_recall_on_the_labelled_event() -> None:
    sessions, posts = labelled_event()
    assert len(posts) >= 300
    assigned = correct = labelled = 0
    for post, truth in posts:
        got = assign(post, sessions)  # type: ignore[arg-type]
        labelled += truth is not None
        if got is not None:
            assigned += 1
            correct += got == truth
    precision = correct / assigned
    recall = correct / labelled
    print(
        f"\nsession assignment: {len(posts)} posts, {labelled} labelled, assigned {assigned}, "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    assert precision >= 0.9
    assert recall >= 0.5


def test_session_hashtag_decides_and_overrides_win() -> None:
    sessions, posts = labelled_event()

    def session_tags(post: object) -> list[Session]:
        return [s for s in sessions if s.hashtag and s.hashtag in post.tags]  # type: ignore[attr-defined]

    tagged = next(p for p, _ in posts if len(session_tags(p)) == 1)
    session = session_tags(tagged)[0]
    assert assign(tagged, sessions) == session.id  # type: ignore[arg-type]
    assert assign(tagged, sessions, overrides={tagged.id: None}) is None  # type: ignore[arg-type, attr-defined]
