"""Source faults through the simulators' fault injection, against `backchannel run`.

One service follows six Mastodon servers (each fault breaks its own, one is never
broken), a seventh whose name never resolves (DNS failure, for the whole run) and the
Jetstream simulator. Fault by fault, for a window of real time, one source is broken
while the others are measured to keep flowing; when
the window ends the broken one must recover (the time it takes is measured) and, at the
end, every post the platforms still serve is stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from factories import free_port
from reliability_support import (
    ROOT,
    Sims,
    integrity,
    mastodon_cursor,
    mastodon_head,
    read_store,
    simulators,
    spawn_service,
    stop_process,
    wait_http,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WINDOW_S = 3.0  # how long each fault lasts
RECOVERY_LIMIT_S = 30.0  # the most a source may take to catch up after a fault
SPEED = 800.0  # the event replays in ~58 s: Mastodon publishes through every phase
JETSTREAM_RATE = 200.0
DNS_DEAD = "https://social.backchannel-test.invalid"
TIMELINE = "/api/v1/timelines/tag/"


@dataclass
class Outcome:
    source: str
    fault: str
    others_stored: int  # posts the other sources stored while the fault lasted
    others_polls: int  # good answers a healthy Mastodon server gave meanwhile
    recovery_s: float  # fault end -> the broken source has caught up with its server
    first_ok_s: float | None = None  # fault end -> first good answer (Mastodon)


def bluesky_count(ids: set[str]) -> int:
    return sum(1 for i in ids if i.startswith("at://"))


async def until(check: Callable[[], bool], limit: float, what: str) -> float:
    """Seconds until `check()` holds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not recovered in {limit} s")


def stored_all(db: Path, wanted: set[str]) -> Callable[[], bool]:
    def check() -> bool:
        stored = read_store(db)
        return wanted <= stored.live | stored.deleted

    return check


def good_polls(sims: Sims, server: int, since_wall: float) -> list[float]:
    return [
        r.at - since_wall
        for r in sims.mastodon.requests(server)
        if r.status == 200
        and r.fault is None
        and r.at >= since_wall
        and r.path_qs.startswith(TIMELINE)
    ]


async def garbage_frames(sims: Sims, seconds: float) -> None:
    """A Jetstream that sends junk between its good frames for a while."""
    junk = ['{"$type": "message", "payload": ', "\x00\xff not json", "[]", '{"$type": 7}']
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        sims.jetstream.publish_raw(junk[n % len(junk)])
        n += 1
        await asyncio.sleep(0.02)


MASTODON_FAULTS: list[tuple[str, str, int]] = [
    ("5xx burst (503 to every request)", "fail", 503),
    ("429 storm (with X-RateLimit-Reset)", "fail", 429),
    ("connection drops mid-body", "drop", 0),
    ("slow loris (8 bytes / 0.5 s)", "trickle", 0),
    ("garbage JSON bodies", "garbage", 0),
]
HEALTHY = len(MASTODON_FAULTS)  # the Mastodon server that is never broken


async def test_each_source_fault_recovers_while_the_others_flow(tmp_path: Path) -> None:
    db = tmp_path / "faults.db"
    port = free_port()
    outcomes: list[Outcome] = []
    # Each Mastodon fault breaks its own server (each has every post), so one fault's
    # backoff does not carry over into the next measurement.
    async with simulators(SPEED, servers=HEALTHY + 1, full=True) as sims:
        urls = [*sims.mastodon_urls, DNS_DEAD]
        config = write_config(tmp_path / "event.toml", sims, port, db, mastodon_urls=urls)
        generate = asyncio.create_task(sims.load.run(JETSTREAM_RATE, sims.replay_s + 60))
        dns = str(Path(__file__).parent / "dns_fault")
        service = spawn_service(
            config,
            tmp_path / "run.log",
            PYTHONPATH=f"{dns}:{ROOT}",
            RELIABILITY_DNS_HITS=str(tmp_path / "dns-hits"),
        )
        masto = sims.mastodon
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
            await until(stored_all(db, masto.expected_visible_uris(0)), RECOVERY_LIMIT_S, "start")
            scenarios: list[tuple[str, str, Callable[[], None], int]] = []
            jet_faults: list[tuple[str, Callable[[], None]]] = [
                ("connection drop mid-frame", _drop_mid_frame(sims)),
                ("5xx on every reconnect", _refuse(sims, 503)),
                ("429 on every reconnect", _refuse(sims, 429)),
                ("garbage frames between good ones", _garbage(sims)),
            ]
            for k, (name, kind, status) in enumerate(MASTODON_FAULTS):
                scenarios.append(("mastodon", name, _masto_fault(sims, k, kind, status), k))
                if k < len(jet_faults):
                    scenarios.append(("jetstream", *jet_faults[k], -1))
            for source, fault, inject, server in scenarios:
                before = read_store(db).live
                inject()
                began_wall = time.time()
                await asyncio.sleep(WINDOW_S)
                ended_wall = time.time()
                during = read_store(db).live - before
                polls = [t for t in good_polls(sims, HEALTHY, began_wall) if t < WINDOW_S]
                first_ok = None
                if source == "mastodon":
                    others = bluesky_count(during)
                    head = mastodon_head(sims, server)
                    recovery = await until(
                        lambda s=server, h=head: mastodon_cursor(read_store(db), sims, s) >= h,  # type: ignore[misc]
                        RECOVERY_LIMIT_S,
                        fault,
                    )
                    ok = good_polls(sims, server, ended_wall)
                    first_ok = ok[0] if ok else None
                else:
                    others = len(during) - bluesky_count(during)
                    wanted = set(sims.load.matched)
                    recovery = await until(stored_all(db, wanted), RECOVERY_LIMIT_S, fault)
                outcomes.append(Outcome(source, fault, others, len(polls), recovery, first_ok))
                assert service.poll() is None, "the service died"
            # The replay ends; everything still served is there exactly once.
            await asyncio.sleep(sims.replay_left())
            final_wait = await until(stored_all(db, sims.expected()), 60, "the end")
            assert stop_process(service, signal.SIGTERM) == 0
        finally:
            generate.cancel()
            stop_process(service)
        final = read_store(db)
        log = (tmp_path / "run.log").read_text(errors="replace")

    assert integrity(db) == "ok"
    assert not (final.live - sims.expected() - sims.deleted_mastodon())
    assert "Traceback" not in log, log[-3000:]
    assert "backchannel-test.invalid" in log, "the unresolvable server is never reported"
    # The name failed in our resolver stand-in: no query went to the machine's resolver.
    assert (tmp_path / "dns-hits").read_text().count("backchannel-test.invalid") >= 2
    for outcome in outcomes:
        # A Mastodon fault leaves Jetstream and the other servers flowing, and the other
        # way round.
        assert outcome.others_polls > 0, outcome
        if outcome.source == "mastodon":
            assert outcome.others_stored > 0, outcome
    report = [
        f"{o.source:9} {o.fault:36} during: others stored {o.others_stored:3}, healthy "
        f"server answered {o.others_polls:2} polls; caught up {o.recovery_s:5.1f} s after"
        + (f" (first good answer {o.first_ok_s:.1f} s)" if o.first_ok_s is not None else "")
        for o in outcomes
    ]
    print("\n" + "\n".join(report))
    print(f"final catch-up {final_wait:.1f} s; {len(sims.expected())} posts, 0 lost, 0 doubled")
    out = Path(os.environ.get("RELIABILITY_OUT", tmp_path)) / "source_faults.json"
    out.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))


def _masto_fault(sims: Sims, server: int, kind: str, status: int) -> Callable[[], None]:
    def inject() -> None:
        sims.mastodon.fault_for(WINDOW_S, kind, status, server=server, delay=0.5)  # type: ignore[arg-type]

    return inject


def _refuse(sims: Sims, status: int) -> Callable[[], None]:
    def inject() -> None:
        sims.jetstream.fail_for(WINDOW_S, status)
        sims.jetstream.drop_connections()

    return inject


def _drop_mid_frame(sims: Sims) -> Callable[[], None]:
    def inject() -> None:
        async def repeat() -> None:
            end = time.monotonic() + WINDOW_S
            while time.monotonic() < end:
                sims.jetstream.drop_connections(mid_frame=True)
                await asyncio.sleep(0.5)

        _background.add(asyncio.ensure_future(repeat()))

    return inject


def _garbage(sims: Sims) -> Callable[[], None]:
    def inject() -> None:
        _background.add(asyncio.ensure_future(garbage_frames(sims, WINDOW_S)))

    return inject


_background: set[asyncio.Future[None]] = set()
