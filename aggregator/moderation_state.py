"""The organiser's moderation settings and bans as this node knows them.

Loaded from the store at start, changed by admin actions, and kept in step across nodes
by "settings" and "bans" controls on the bus. The pipeline asks `verdict(post)` for the
automatic decision before a post is stored, so nothing unmoderated reaches a screen first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aggregator.model import Post
from aggregator.moderate import Lexicon, Rules, build_lexicon, evaluate
from aggregator.profanity import builtin_profanity
from aggregator.store.base import Verdict

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "moderation": "post",
    "remote_shows_unmoderated": False,
    "paused": False,
    "announcement": "",
    "rules": {},
}
MAX_ANNOUNCEMENT = 500


class SettingsError(ValueError):
    """A settings value that is not valid; the message names the key."""


def validate_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Check a (partial) settings update; return it normalised."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "moderation":
            if value not in ("post", "pre"):
                raise SettingsError("moderation: expected post or pre")
            out[key] = value
        elif key in ("remote_shows_unmoderated", "paused"):
            if not isinstance(value, bool):
                raise SettingsError(f"{key}: expected true or false")
            out[key] = value
        elif key == "announcement":
            if not isinstance(value, str) or len(value) > MAX_ANNOUNCEMENT:
                raise SettingsError(f"announcement: a string of at most {MAX_ANNOUNCEMENT}")
            out[key] = value.strip()
        elif key == "rules":
            if not isinstance(value, dict):
                raise SettingsError("rules: expected an object")
            out[key] = _rules_from_json(value).to_json()
        else:
            raise SettingsError(f"{key}: unknown setting")
    return out


def _rules_from_json(data: dict[str, Any]) -> Rules:
    try:
        return Rules.from_json(data)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"rules: {exc}") from None


@dataclass
class ModerationState:
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    banned_authors: set[str] = field(default_factory=set)
    banned_domains: set[str] = field(default_factory=set)
    _rules: Rules | None = None
    _blocklist: Lexicon | None = None

    def load(self, settings: dict[str, Any], bans: list[dict[str, Any]]) -> None:
        merged = dict(DEFAULT_SETTINGS)
        merged.update(settings)
        self.settings = merged
        self.banned_authors = {b["value"] for b in bans if b["kind"] == "author"}
        self.banned_domains = {b["value"] for b in bans if b["kind"] == "domain"}
        self._rules = None

    def apply_control(self, control: dict[str, Any]) -> None:
        if control.get("type") == "settings":
            self.settings = {**DEFAULT_SETTINGS, **(control.get("settings") or {})}
            self._rules = None
        elif control.get("type") == "bans":
            self.banned_authors = set(control.get("authors") or ())
            self.banned_domains = set(control.get("domains") or ())

    def bans_control(self) -> dict[str, Any]:
        return {
            "type": "bans",
            "authors": sorted(self.banned_authors),
            "domains": sorted(self.banned_domains),
        }

    def rules(self) -> Rules:
        if self._rules is None:
            try:
                self._rules = _rules_from_json(self.settings.get("rules") or {})
            except SettingsError as exc:
                # Stored rules this version cannot read: fall back to defaults, loudly.
                log.error("moderation: %s; using the default rules", exc)
                self._rules = Rules()
            self._blocklist = build_lexicon(self._rules.blocklist)
        return self._rules

    def verdict(self, post: Post) -> Verdict:
        rules = self.rules()
        result = evaluate(
            post,
            rules,
            self.banned_authors,
            self.banned_domains,
            profanity=builtin_profanity(),
            blocklist=self._blocklist,
        )
        return (result.action, result.rule)
