"""Golden digest of the labelled synthetic event: the exact Markdown and JSON a blogger
gets. A change to the output shows up here as a diff to review; when it is intended,
regenerate with `UPDATE_GOLDEN=1 python3 -m pytest tests/test_digest_golden.py`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_digest_build import digest

from aggregator.digest.render import to_json, to_markdown

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize(("name", "render"), [("digest.md", to_markdown), ("digest.json", to_json)])
def test_digest_matches_the_golden_file(name: str, render: object) -> None:
    assert callable(render)
    d, _, _ = digest()
    produced = str(render(d))
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(produced, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if name.endswith(".json"):
        assert json.loads(produced) == json.loads(expected)
    assert produced == expected


def test_the_golden_digest_is_publishable() -> None:
    md = (GOLDEN / "digest.md").read_text(encoding="utf-8")
    assert md.startswith("---\ntitle: ")
    for section in ("## Quotes", "## Write-ups"):
        assert section in md
    data = json.loads((GOLDEN / "digest.json").read_text(encoding="utf-8"))
    assert len(data["sessions"]) >= 5 and data["quotes"] and data["writeups"]
