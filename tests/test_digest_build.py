"""The digest of the labelled synthetic event: shape, consent, outputs, CLI, routes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from test_digest_assign import labelled_event

from aggregator.config import load_config
from aggregator.digest.build import EventInfo, build_digest
from aggregator.digest.render import to_json, to_markdown
from aggregator.store import SQLiteStore
from web.app import create_app
from web.keys import RUNTIME

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EVENT = EventInfo("BlueLightCamp 2026", ("bluelightcamp", "blc26"))


def digest():  # type: ignore[no-untyped-def]
    sessions, labelled = labelled_event()
    posts = [p for p, _ in labelled]
    return build_digest(EVENT, sessions, posts, now=NOW), sessions, posts  # type: ignore[arg-type]


def test_digest_json_has_the_contract_shape_and_honours_consent() -> None:
    d, _, posts = digest()
    data = json.loads(to_json(d))
    assert {"event", "stats", "sessions", "quotes", "writeups", "links", "general"} <= set(data)
    session = data["sessions"][0]
    assert {"id", "title", "room", "start", "end", "leaders", "posts", "quotes", "writeups"} <= set(
        session
    )
    assert {"text", "speaker", "posts"} <= set(data["quotes"][0])
    assert {"url", "title", "author", "site", "published", "posts"} <= set(data["writeups"][0])
    included = {p["id"] for p in data["posts"]}
    for post in posts:
        opted_out = (
            post.provenance.bot or post.provenance.noindex or post.provenance.discoverable is False
        )
        assert (post.id in included) != opted_out, post.id
    # Every post is in exactly one session or in general.
    placed = [pid for s in data["sessions"] for pid in s["posts"]] + data["general"]
    assert sorted(placed) == sorted(included)
    assert data["stats"]["posts"] == len(included) and data["stats"]["writeups"] >= 5


def test_markdown_is_ready_to_paste() -> None:
    d, _, _ = digest()
    md = to_markdown(d)
    assert md.startswith("---\ntitle: ")
    assert "## Quotes" in md and "## Write-ups" in md and "— " in md
    assert "<script" not in md


async def test_cli_and_routes(tmp_path: Path) -> None:
    _, sessions, posts = digest()
    db = tmp_path / "d.db"
    store = SQLiteStore(db)
    await store.open()
    await store.upsert(posts)
    await store.close()
    schedule = tmp_path / "grid.csv"
    rows = ["start,end,room,title,leaders,hashtag"]
    for s in sessions:
        rows.append(
            f'{s.start.isoformat()},{s.end.isoformat()},{s.room},"{s.title}",'
            f"{';'.join(s.leaders)},{s.hashtag or ''}"
        )
    schedule.write_text("\n".join(rows) + "\n")
    config_file = tmp_path / "event.toml"
    config_file.write_text(
        f'[event]\nname = "BlueLightCamp 2026"\nhashtags = ["bluelightcamp", "blc26"]\n'
        f'[storage]\nurl = "sqlite:///{db}"\n[digest]\nschedule = "{schedule}"\n'
        '[bluesky]\nmode = "off"\n'
    )
    out = tmp_path / "digest.md"
    proc = subprocess.run(  # noqa: ASYNC221 - the CLI as a user runs it
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "digest",
            "--config",
            str(config_file),
            "--format",
            "md",
            "--out",
            str(out),
            "--no-fetch",  # the links are invented; nothing to reach (tests stay offline)
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "## Accessible maps for everyone" in text
    config = load_config(config_file, env={})
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as c:
        assert c.app[RUNTIME].store is not None
        html = await (await c.get("/digest")).text()
        assert "<svg" in html and "h-entry" in html and "<script" not in html
        data = await (await c.get("/digest.json")).json()
        assert data["stats"]["posts"] > 300
        md = await c.get("/digest.md")
        assert md.content_type == "text/markdown"
        atom = await c.get("/digest.atom")
        assert atom.content_type == "application/atom+xml"
        import xml.etree.ElementTree as ET

        entries = ET.fromstring(await atom.read()).findall("{http://www.w3.org/2005/Atom}entry")
        assert len(entries) == data["stats"]["writeups"] >= 5
    bad = tmp_path / "bad.toml"
    bad.write_text(config_file.read_text().replace(str(schedule), str(tmp_path / "missing.csv")))
    proc = subprocess.run(  # noqa: ASYNC221 - the CLI as a user runs it
        [sys.executable, "-m", "aggregator.cli", "digest", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "digest.schedule" in proc.stderr
