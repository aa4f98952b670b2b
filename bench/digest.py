"""Digest build time for large events, on one core, no network.

    python bench/digest.py [--posts 100000,1000000] [--runs 3]

The posts are the bundled demo event's (~400 real-looking posts with sessions, quotes,
links, replies, consent flags), repeated with fresh ids, authors and times spread over
the event day, so assignment, quote detection, link collection and write-up ranking see
the same mix at every size. Timed: `build_digest` (assignment, quotes, links, stats,
activity) plus rendering Markdown and JSON, everything `backchannel digest --no-fetch`
does after reading the store. Pinned to one core when `taskset` is available.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_digest_assign import labelled_event  # noqa: E402

from aggregator.digest.build import EventInfo, build_digest  # noqa: E402
from aggregator.digest.render import to_json, to_markdown  # noqa: E402
from aggregator.model import Post, format_timestamp, parse_timestamp  # noqa: E402

GOALS = {100_000: 5.0, 1_000_000: 60.0}


def scaled(posts: list[Post], n: int, spread: timedelta) -> list[Post]:
    out: list[Post] = []
    base = [(p, parse_timestamp(p.created_at)) for p in posts]
    copies = -(-n // len(base))
    for copy in range(copies):
        shift = spread * (copy / copies) - spread / 2
        for post, created in base:
            if len(out) == n:
                return out
            assert created is not None
            author = replace(post.author, handle=f"{post.author.handle}.{copy % 500}")
            out.append(
                post.with_changes(
                    id=f"{post.id}#{copy}",
                    # Unique text, as real posts are: no cache sees the same post twice.
                    text=f"{post.text} ({copy})",
                    created_at=format_timestamp(created + shift * 0.02),
                    author=author,
                )
            )
    return out


def one_run(sessions: list, posts: list[Post]) -> float:  # type: ignore[type-arg]
    gc.collect()
    started = time.perf_counter()
    digest = build_digest(
        EventInfo("BlueLightCamp 2026", ("bluelightcamp", "blc26")),
        sessions,
        posts,
        now=datetime(2026, 11, 22, 12, tzinfo=UTC),
    )
    to_markdown(digest)
    to_json(digest)
    return time.perf_counter() - started


def met(times: list[float], goal: float) -> bool:
    return statistics.median(times) <= goal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    sessions, labelled = labelled_event()
    base = [p for p, _ in labelled]
    print(f"python {sys.version.split()[0]}, {len(base)} distinct demo posts, one core")
    for n in (int(x) for x in args.posts.split(",")):
        posts = scaled(base, n, timedelta(hours=2))  # type: ignore[arg-type]
        times = [one_run(sessions, posts) for _ in range(args.runs)]
        goal = GOALS.get(n)
        verdict = (
            ""
            if goal is None
            else f" (goal <= {goal:g} s: {'met' if met(times, goal) else 'NOT met'})"
        )
        print(
            f"{n:>9,} posts: median {statistics.median(times):.2f} s, "
            f"runs {[round(t, 2) for t in times]}{verdict}",
            flush=True,
        )
        del posts


if __name__ == "__main__":
    main()
