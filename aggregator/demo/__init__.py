"""The bundled synthetic unconference ("BlueLightCamp 2026") used by `backchannel demo`.

`load_dataset()` returns the parsed `unconference.json`; regenerate it with
`python -m aggregator.demo.generate`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

DATASET_FILE = "unconference.json"


@cache
def _dataset_text() -> str:
    return resources.files(__name__).joinpath(DATASET_FILE).read_text(encoding="utf-8")


def load_dataset() -> dict[str, Any]:
    """A fresh copy of the bundled dataset (callers may mutate it)."""
    data: dict[str, Any] = json.loads(_dataset_text())
    return data


def event_epoch(dataset: dict[str, Any]) -> datetime:
    """The event start (`at` = 0) as an aware UTC datetime.

    `event.start` is local time in `event.timezone` (like the config file).
    """
    start = datetime.fromisoformat(str(dataset["event"]["start"]))
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(str(dataset["event"].get("timezone") or "UTC")))
    return start.astimezone(UTC)


__all__ = ["DATASET_FILE", "event_epoch", "load_dataset"]
