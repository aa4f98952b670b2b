"""Config: TOML + environment overrides, clear errors naming the key, documented keys."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.config import SCHEMA, ConfigError, env_name, load_config

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[event]
name = "BlueLightCamp 2026"
hashtags = ["bluelightcamp", "#BLC26"]
timezone = "Europe/London"
start = 2026-11-21T09:00:00
end = 2026-11-21T17:30:00

[mastodon]
servers = ["https://mastodon.example", "https://social.example/"]

[web]
port = 9000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "event.toml"
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={})
    assert config.hashtags == ["bluelightcamp", "#BLC26"]
    assert config.get("mastodon", "servers") == [
        "https://mastodon.example",
        "https://social.example",
    ]
    assert config.get("web", "port") == 9000
    assert config.event_start is not None and config.event_start.utcoffset() is not None
    assert config.get("storage", "url") == "sqlite:///backchannel.db"  # default


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "BACKCHANNEL_WEB_PORT": "8181",
        "BACKCHANNEL_EVENT_HASHTAGS": "a,b",
        "BACKCHANNEL_DIGEST_FETCH_PRIVATE_ADDRESSES": "true",
        "BACKCHANNEL_WEB_ADMIN_TOKEN": "s3cret",
    }
    config = load_config(write(tmp_path, GOOD), env=env)
    assert config.get("web", "port") == 8181
    assert config.hashtags == ["a", "b"]
    assert config.get("digest", "fetch_private_addresses") is True
    assert config.get("web", "admin_token") == "s3cret"


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("tok\n")
    config = load_config(None, env={"BACKCHANNEL_MASTODON_TOKEN_FILE": str(secret)})
    assert config.get("mastodon", "token") == "tok"


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[event]\nhashtag = ['x']\n", {}, "event.hashtag: unknown key"),
        ("[evnt]\nname = 'x'\n", {}, "[evnt]: unknown section"),
        ("[web]\nport = 'eighty'\n", {}, "web.port: expected an integer"),
        ("[web]\nport = 70000\n", {}, "web.port: expected 0-65535"),
        ("[event]\ntimezone = 'Mars/Olympus'\n", {}, "event.timezone: unknown time zone"),
        ("[mastodon]\nservers = ['ftp://x']\n", {}, "mastodon.servers: expected a http/https URL"),
        ("[bluesky]\nmode = 'carrier-pigeon'\n", {}, "bluesky.mode: expected one of"),
        ("[web]\nadmin_token = 'x'\n", {}, "web.admin_token: secrets are not read"),
        ("[event]\nstart = 'soon'\n", {}, "event.start: expected a date-time"),
        ("[event\n", {}, "invalid TOML"),
        ("", {"BACKCHANNEL_WEB_PORT": "x"}, "web.port: expected an integer"),
        ("", {"BACKCHANNEL_DIGEST_FETCH_PRIVATE_ADDRESSES": "maybe"}, "expected true or false"),
        ("[storage]\nurl = 'mysql://x'\n", {}, "storage.url: expected"),
        ("[event]\nhashtags = ['two words']\n", {}, "event.hashtags: each hashtag"),
        ("[web]\nframe_ancestors = ['*; script-src *']\n", {}, "web.frame_ancestors"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(names)):
        load_config(write(tmp_path, text), env=env)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/event.toml", env={})


def test_every_key_is_documented_in_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"{section}.{key}"
        for section, keys in SCHEMA.items()
        for key in keys
        if f"`{section}.{key}`" not in readme or f"`{env_name(section, key)}`" not in readme
    ]
    assert missing == [], f"undocumented config keys: {missing}"


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[web]\nport = 'x'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "web.port" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bad_flag_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "demo", "--port", "notaport"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "--port" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_help_lists_all_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    for command in ("run", "demo", "digest", "serve", "ingest"):
        assert command in proc.stdout
