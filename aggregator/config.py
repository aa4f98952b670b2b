"""Configuration: a TOML file, each key overridable by `BACKCHANNEL_<SECTION>_<KEY>`.

Every key is declared once in `SCHEMA` with its type, default and one line of help; the
README's configuration table is checked against it by a test, so a key cannot exist
without being documented. Errors name the key and say what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """A bad config file, key or value; the message names it."""


@dataclass(frozen=True)
class Key:
    kind: str  # "str", "int", "float", "bool", "list", "datetime", "secret", "url", "urllist"
    default: Any
    help: str


SCHEMA: dict[str, dict[str, Key]] = {
    "event": {
        "name": Key("str", "Backchannel", "Event name shown on the wall and the digest"),
        "hashtags": Key("list", [], "Hashtags to follow; case-insensitive, '#' optional"),
        "timezone": Key("str", "UTC", "IANA time zone of the event (e.g. Europe/London)"),
        "start": Key("datetime", None, "Event start, local time; backfill starts here"),
        "end": Key("datetime", None, "Event end, local time; later posts are kept and marked"),
    },
    "mastodon": {
        "servers": Key("urllist", [], "Mastodon-API servers whose tag timelines are read"),
        "token": Key("secret", None, "User token (enables streaming); env/file only"),
        "streaming": Key("bool", True, "Use the streaming API where a token allows it"),
        "poll_interval": Key("float", 20.0, "Seconds between polls of an idle server"),
        "min_poll_interval": Key("float", 15.0, "Never poll a server faster than this"),
    },
    "bluesky": {
        "mode": Key("str", "jetstream", "jetstream, firehose or off"),
        "jetstream_url": Key("url", "wss://jetstream.us-east.bsky.network", "Jetstream base URL"),
        "firehose_url": Key("url", "wss://bsky.network", "Relay or PDS for firehose mode"),
        "firehose_replay": Key(
            "bool", False, "Firehose: first start replays the PDS's log from seq 0 (own PDS)"
        ),
        "appview_url": Key("url", "https://public.api.bsky.app", "AppView for profiles"),
        "profiles": Key("str", "appview", "appview, or pds: read profiles from firehose_url"),
        "handle": Key("str", "", "Account handle for optional searchPosts backfill"),
        "app_password": Key("secret", None, "App password for that handle; env/file only"),
        "pds_url": Key("url", "https://bsky.social", "PDS (or entryway) the handle logs in to"),
    },
    "web": {
        "host": Key("str", "127.0.0.1", "Address the web server binds"),
        "port": Key("int", 8080, "Port the web server binds"),
        "admin_token": Key("secret", None, "Admin token; env/file only; admin is off without"),
        "public_url": Key("str", "", "Public base URL (for the QR code and feeds)"),
        "max_connections_per_ip": Key("int", 50, "Websocket connections per client IP; 0 = no cap"),
        "trusted_proxies": Key("list", [], "Proxy IPs whose X-Forwarded-For names the client"),
        "metrics_public": Key(
            "bool", False, "Serve /metrics to anyone (default: loopback, proxies, admin token)"
        ),
        "frame_ancestors": Key("list", ["'self'"], "Who may embed the pages (CSP frame-ancestors)"),
    },
    "storage": {
        "url": Key("str", "sqlite:///backchannel.db", "sqlite:///path or postgresql://..."),
    },
    "bus": {
        "url": Key("str", "memory://", "memory:// or redis://host:port"),
    },
    "digest": {
        "schedule": Key("str", "", "Schedule file: pretalx/frab JSON or XML, .ics, CSV"),
        "feeds": Key("list", [], "Blog feeds to watch for write-ups"),
        "fetch_private_addresses": Key(
            "bool", False, "Let link fetches reach loopback (tests only)"
        ),
        "feed_interval": Key("float", 900.0, "Seconds between polls of the blog feeds"),
        "unfurl_interval": Key(
            "float", 0.0, "Seconds between background link unfurls in run; 0 = off"
        ),
        "webmention_rate": Key(
            "int", 10, "Webmentions accepted per source host per hour; 0 = no cap"
        ),
    },
}

SECRET_KINDS = {"secret"}
BLUESKY_MODES = ("jetstream", "firehose", "off")


@dataclass(frozen=True)
class Config:
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    # Typed accessors for the keys most code reads.
    @property
    def event_name(self) -> str:
        return str(self.get("event", "name"))

    @property
    def hashtags(self) -> list[str]:
        return list(self.get("event", "hashtags"))

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.get("event", "timezone"))

    @property
    def event_start(self) -> datetime | None:
        return self._localised(self.get("event", "start"))

    @property
    def event_end(self) -> datetime | None:
        return self._localised(self.get("event", "end"))

    def _localised(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=self.timezone)
        return value

    def with_overrides(self, **sections: Mapping[str, Any]) -> Config:
        merged = {name: dict(vals) for name, vals in self.values.items()}
        for name, vals in sections.items():
            for key, raw in vals.items():
                merged[name][key] = _coerce(name, key, raw)
        return Config(merged)


def defaults() -> dict[str, dict[str, Any]]:
    return {s: {k: spec.default for k, spec in keys.items()} for s, keys in SCHEMA.items()}


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read the TOML file (optional), apply environment overrides, validate."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
    values = defaults()
    for section, body in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"[{section}]: unknown section")
        if not isinstance(body, dict):
            raise ConfigError(f"{section}: must be a table [{section}]")
        for key, raw in body.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"{section}.{key}: unknown key")
            if SCHEMA[section][key].kind in SECRET_KINDS:
                raise ConfigError(
                    f"{section}.{key}: secrets are not read from the config file; set "
                    f"{env_name(section, key)} or {env_name(section, key)}_FILE"
                )
            values[section][key] = _coerce(section, key, raw)
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            name = env_name(section, key)
            if name in env:
                values[section][key] = _coerce(section, key, env[name], from_env=True)
            elif spec.kind in SECRET_KINDS and f"{name}_FILE" in env:
                values[section][key] = _read_secret_file(section, key, env[f"{name}_FILE"])
    _validate(values)
    return Config(values)


def env_name(section: str, key: str) -> str:
    return f"BACKCHANNEL_{section.upper()}_{key.upper()}"


def _read_secret_file(section: str, key: str, path: str) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{section}.{key}: cannot read secret file: {exc.strerror}") from None
    if not secret:
        raise ConfigError(f"{section}.{key}: secret file is empty")
    return secret


def _coerce(section: str, key: str, raw: Any, from_env: bool = False) -> Any:
    spec = SCHEMA[section][key]
    where = f"{section}.{key}"
    kind = spec.kind
    if from_env and kind in ("list", "urllist"):
        text = str(raw).strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{where}: not a JSON list: {text[:60]!r}") from None
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if kind in ("str", "secret"):
        if not isinstance(raw, str):
            raise ConfigError(f"{where}: expected a string, got {type(raw).__name__}")
        return raw
    if kind == "url":
        if not isinstance(raw, str):
            raise ConfigError(f"{where}: expected a URL string, got {type(raw).__name__}")
        return _check_url(where, raw, ("http", "https", "ws", "wss"))
    if kind == "int":
        if from_env and isinstance(raw, str):
            try:
                raw = int(raw)
            except ValueError:
                raise ConfigError(f"{where}: expected an integer, got {raw!r}") from None
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ConfigError(f"{where}: expected an integer, got {raw!r}")
        return raw
    if kind == "float":
        if from_env and isinstance(raw, str):
            try:
                raw = float(raw)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
        if not isinstance(raw, int | float) or isinstance(raw, bool):
            raise ConfigError(f"{where}: expected a number, got {raw!r}")
        return float(raw)
    if kind == "bool":
        if from_env and isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where}: expected true or false, got {raw!r}")
        if not isinstance(raw, bool):
            raise ConfigError(f"{where}: expected true or false, got {raw!r}")
        return raw
    if kind in ("list", "urllist"):
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{where}: expected a list of strings")
        if kind == "urllist":
            return [_check_url(where, x, ("http", "https")).rstrip("/") for x in raw]
        return list(raw)
    if kind == "datetime":
        return _coerce_datetime(where, raw)
    raise AssertionError(kind)


def _coerce_datetime(where: str, raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return datetime.combine(raw, time())
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a date-time like 2026-11-21T09:00:00, got {raw!r}")


def _check_url(where: str, raw: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in schemes or not parts.netloc:
        allowed = "/".join(schemes)
        raise ConfigError(f"{where}: expected a {allowed} URL, got {raw!r}")
    return raw.strip()


def _validate(values: dict[str, dict[str, Any]]) -> None:
    try:
        ZoneInfo(values["event"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"event.timezone: unknown time zone {values['event']['timezone']!r}"
        ) from None
    start, end = values["event"]["start"], values["event"]["end"]
    if start is not None and end is not None and end <= start:
        raise ConfigError("event.end: must be after event.start")
    from aggregator.match import normalise_tag

    tags = [normalise_tag(t) for t in values["event"]["hashtags"]]
    if any(not t or any(c.isspace() for c in t) for t in tags):
        raise ConfigError("event.hashtags: each hashtag must be one non-empty word")
    if values["bluesky"]["mode"] not in BLUESKY_MODES:
        raise ConfigError(
            f"bluesky.mode: expected one of {', '.join(BLUESKY_MODES)}, "
            f"got {values['bluesky']['mode']!r}"
        )
    if values["bluesky"]["profiles"] not in ("appview", "pds"):
        raise ConfigError(
            f"bluesky.profiles: expected appview or pds, got {values['bluesky']['profiles']!r}"
        )
    for source in values["web"]["frame_ancestors"]:
        if not re.fullmatch(r"'self'|'none'|https?://[A-Za-z0-9.*:-]+", source):
            raise ConfigError(
                f"web.frame_ancestors: {source!r} is not 'self', 'none' or an http(s) origin"
            )
    digest = values["digest"]
    if digest["feed_interval"] < 10:
        raise ConfigError(
            f"digest.feed_interval: at least 10 seconds, got {digest['feed_interval']}"
        )
    if digest["unfurl_interval"] and digest["unfurl_interval"] < 60:
        raise ConfigError(
            "digest.unfurl_interval: 0 (off) or at least 60 seconds, "
            f"got {digest['unfurl_interval']}"
        )
    for feed in digest["feeds"]:
        if not re.match(r"https?://[^/\s]+", str(feed)):
            raise ConfigError(f"digest.feeds: not an http(s) URL: {str(feed)[:80]!r}")
    port = values["web"]["port"]
    if not 0 <= port <= 65535:
        raise ConfigError(f"web.port: expected 0-65535, got {port}")
    url = values["storage"]["url"]
    if not (url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://"))):
        raise ConfigError(f"storage.url: expected sqlite:///path or postgresql://…, got {url!r}")
    if not values["bus"]["url"].startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError(f"bus.url: expected memory:// or redis://…, got {values['bus']['url']!r}")
    for key in ("poll_interval", "min_poll_interval"):
        if values["mastodon"][key] <= 0:
            raise ConfigError(f"mastodon.{key}: must be positive")
