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
