"""FanOut: encode once, batch, and never let a stalled client hold up the others."""

from __future__ import annotations

import asyncio
import json

from factories import make_post

from aggregator.bus import BusEvent, MemoryBus
from aggregator.store.base import Change
from web.fanout import CLIENT_MAX_MESSAGES, Client, FanOut, encode_changes


def change(n: int, kind: str = "new") -> Change:
    return Change(kind, make_post(n).id, n, None if kind == "deleted" else make_post(n))  # type: ignore[arg-type]


def test_encode_groups_runs_in_seq_order() -> None:
    msgs = encode_changes([change(3, "deleted"), change(1), change(2), change(4, "updated")])
    decoded = [json.loads(m.text) for m in msgs]
    assert [d["type"] for d in decoded] == ["posts", "retract", "update"]
    assert [p["id"] for p in decoded[0]["posts"]] == [make_post(1).id, make_post(2).id]
    assert decoded[0]["cursor"] == "2" and decoded[1]["cursor"] == "3"


async def test_stalled_client_does_not_stall_others_and_stays_bounded() -> None:
    bus = MemoryBus()
    fanout = FanOut(bus, tick=0.01)
    received: dict[int, list[str]] = {i: [] for i in range(5)}
    never = asyncio.Event()

    def sender(i: int):
        async def send(text: str) -> None:
            if i == 0:
                await never.wait()  # a browser that stopped reading
            received[i].append(text)

        return send

    clients = [Client(send=sender(i)) for i in range(5)]
    for c in clients:
        fanout.add(c)
    for c in clients:
        c.go_live()
    total = CLIENT_MAX_MESSAGES * 3
    for n in range(1, total + 1):
        # One change per tick: the worst case for the number of messages per client.
        fanout._accept(BusEvent(changes=(change(n),)))
        fanout.flush()
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    ids = lambda i: [p["id"] for t in received[i] for p in json.loads(t).get("posts", [])]  # noqa: E731
    for i in range(1, 5):
        assert ids(i) == [make_post(n).id for n in range(1, total + 1)]
    stalled = clients[0]
    assert stalled.overflowed
    assert len(stalled.buffer) <= CLIENT_MAX_MESSAGES  # memory stays bounded
    assert fanout.dropped == 1
    for c in clients:
        c.close()
    await asyncio.sleep(0)


async def test_one_encoding_per_tick_shared_by_all_clients() -> None:
    bus = MemoryBus()
    fanout = FanOut(bus, tick=0.01)
    clients = [Client(send=lambda t: asyncio.sleep(0)) for _ in range(3)]
    for c in clients:
        fanout.add(c)
    fanout._accept(BusEvent(changes=(change(1), change(2))))
    fanout.flush()
    texts = [c.buffer[0] for c in clients]
    assert texts[0] is texts[1] is texts[2]  # the same object: encoded once
