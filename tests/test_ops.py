"""Operations: /metrics, /readyz and JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from factories import make_post
from prometheus_client.parser import text_string_to_metric_families

from aggregator.config import load_config
from aggregator.pipeline import RawItem
from web.app import create_app
from web.keys import RUNTIME
from web.metrics import _may_read_metrics

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ops-admin-token"


def make_config(tmp_path: Path, **web: Any) -> Any:
    return load_config(env={"BACKCHANNEL_WEB_ADMIN_TOKEN": TOKEN}).with_overrides(
        event={"name": "Test Camp", "hashtags": ["testcamp"]},
        storage={"url": f"sqlite:///{tmp_path}/ops.db"},
        bluesky={"mode": "off"},
        web=web,
    )


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    app = create_app(make_config(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_count_posts_clients_and_latencies(client: TestClient) -> None:
    ws = await client.ws_connect("/ws?view=wall")
    await ws.send_json({"type": "hello"})
    runtime = client.app[RUNTIME]
    for n in range(3):
        await runtime.inbox.put(RawItem("test", "post", make_post(n)))
    for _ in range(200):
        if await runtime.store.count() == 3:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # one fan-out tick
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    got = samples(await resp.text())
    assert got[("backchannel_posts_ingested_total", (("source", "mastodon:social.example"),))] == 3
    assert got[("backchannel_ws_clients", (("audience", "wall"),))] == 1
    assert got[("backchannel_ws_clients", (("audience", "remote"),))] == 0
    assert got[("backchannel_store_write_seconds_count", ())] >= 1
    assert got[("backchannel_fanout_batch_seconds_count", ())] >= 1
    assert got[("backchannel_ws_dropped_total", ())] == 0
    assert ("backchannel_source_lag_seconds", (("source", "mastodon:social.example"),)) in got
    await ws.close()


def test_metrics_are_not_for_the_audience(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path, trusted_proxies=["10.0.0.7"]))

    def request(peer: str, headers: dict[str, str] | None = None) -> Any:
        transport = mock.Mock()
        transport.get_extra_info.return_value = (peer, 40000)
        return make_mocked_request("GET", "/metrics", headers=headers, app=app, transport=transport)

    assert _may_read_metrics(request("127.0.0.1"))
    assert _may_read_metrics(request("::1"))
    assert _may_read_metrics(request("10.0.0.7"))  # the proxy in front of us
    assert not _may_read_metrics(request("203.0.113.5"))
    assert not _may_read_metrics(request("203.0.113.5", {"Authorization": "Bearer wrong"}))
    assert _may_read_metrics(request("203.0.113.5", {"Authorization": f"Bearer {TOKEN}"}))
    public = create_app(make_config(tmp_path, metrics_public=True))
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("203.0.113.5", 40000)
    assert _may_read_metrics(
        make_mocked_request("GET", "/metrics", app=public, transport=transport)
    )


async def test_readyz_says_which_check_failed(client: TestClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready"
    assert body["checks"]["store"] == body["checks"]["bus"] == "ok"
    runtime = client.app[RUNTIME]

    async def broken() -> int:
        raise OSError("disk gone")

    with mock.patch.object(runtime.store, "last_seq", broken):
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["checks"]["store"] == "failed: OSError: disk gone"
        assert body["checks"]["bus"] == "ok"

    async def silent() -> bool:
        return False

    with mock.patch.object(runtime.bus, "ping", silent):
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["checks"]["bus"] == "failed: no answer"
    # Liveness does not depend on any of that.
    assert (await client.get("/healthz")).status == 200


async def test_readyz_fails_when_every_source_is_down(client: TestClient) -> None:
    from aggregator.supervise import SourceState

    runtime = client.app[RUNTIME]
    runtime.sources = {"a": SourceState("a", state="backoff"), "b": SourceState("b", "stopped")}
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "every source is down" in (await resp.json())["checks"]["sources"]
    runtime.sources["a"].state = "running"
    assert (await client.get("/readyz")).status == 200


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    config = tmp_path / "event.toml"
    config.write_text(
        f'[event]\nhashtags = ["testcamp"]\n[bluesky]\nmode = "off"\n'
        f'[mastodon]\nservers = ["http://127.0.0.1:9/"]\n'
        f'[storage]\nurl = "sqlite:///{tmp_path / "j.db"}"\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "aggregator.cli", "ingest"),
            "--log-format=json",
            f"--config={config}",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The unreachable server makes the source fail and log; then stop it.
        assert proc.stderr is not None
        lines: list[str] = []
        for _ in range(50):
            line = proc.stderr.readline().decode()
            if not line:
                break
            lines.append(line)
            if "127.0.0.1:9" in line and len(lines) >= 2:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += rest.decode().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert len(records) >= 2
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["time"].endswith("+00:00")
    assert any("127.0.0.1:9" in r["message"] for r in records)
    assert proc.returncode == 0
