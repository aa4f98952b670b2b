from __future__ import annotations

from factories import make_post

from aggregator.dedupe import Decision, decide, state_of
from aggregator.model import Metrics, Provenance


def test_new_post_inserts() -> None:
    assert decide(None, make_post(1)) is Decision.INSERT


def test_identical_copy_skips() -> None:
    assert decide(state_of(make_post(1)), make_post(1)) is Decision.SKIP


def test_deleted_never_comes_back() -> None:
    assert decide(state_of(make_post(1), deleted=True), make_post(1, text="x")) is Decision.SKIP


def test_edit_updates_but_older_copy_does_not() -> None:
    edited = make_post(1, text="new", provenance=Provenance(edited_at="2026-11-21T10:00:00Z"))
    assert decide(state_of(make_post(1)), edited) is Decision.UPDATE
    assert decide(state_of(edited), make_post(1)) is Decision.SKIP


def test_counts_from_home_beat_counts_from_elsewhere() -> None:
    home = make_post(1, metrics=Metrics(likes=3), provenance=Provenance(home=True))
    away_more = make_post(1, metrics=Metrics(likes=8), provenance=Provenance(home=False))
    assert decide(state_of(home), away_more) is Decision.SKIP
    away = make_post(1, metrics=Metrics(likes=2), provenance=Provenance(home=False))
    assert decide(state_of(away), away_more) is Decision.UPDATE
    assert decide(state_of(away_more), away) is Decision.SKIP  # no flicker downwards


def test_the_home_copy_wins_over_other_servers_artefacts() -> None:
    home = make_post(1, text="same", provenance=Provenance(home=True))
    # Another server serves the same version with its own cached media URLs.
    cached = make_post(
        1, text="same", url="https://other.example/x", provenance=Provenance(home=False)
    )
    assert decide(state_of(home), cached) is Decision.SKIP
    # Seen first from elsewhere, the home copy replaces it even when it looks the same:
    # it carries the consent flags only the home server serialises.
    assert decide(state_of(cached), home) is Decision.UPDATE
    noindex = make_post(1, text="same", provenance=Provenance(home=True, noindex=True))
    away = make_post(1, text="same", provenance=Provenance(home=False))
    assert decide(state_of(away), noindex) is Decision.UPDATE


def test_a_newer_edit_wins_from_any_server_and_a_late_card_updates() -> None:
    home = make_post(1, text="v1", provenance=Provenance(home=True))
    edited_away = make_post(
        1, text="v2", provenance=Provenance(home=False, edited_at="2026-11-21T10:00:00Z")
    )
    assert decide(state_of(home), edited_away) is Decision.UPDATE
    # Same server, same version, different look: a link card fetched after posting.
    later = make_post(1, text="v1 with card", provenance=Provenance(home=True))
    assert decide(state_of(home), later) is Decision.UPDATE
