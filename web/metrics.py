"""`/metrics` (Prometheus text format) and `/readyz`.

Each app owns its own `CollectorRegistry`, so several apps in one process (the tests) or
a reloaded app never collide in the global one. Latencies are histograms fed by hooks
(the store's commit listeners, the fan-out's batch listeners); everything that is a
current state (clients, source states, counters kept by the pipeline and the fan-out) is
read when Prometheus scrapes, so the hot paths carry no metrics code.

Who may read `/metrics`: loopback and `web.trusted_proxies` peers (a Prometheus on the
same host or behind the proxy), anyone presenting the admin token as a Bearer token,
or everyone when `web.metrics_public = true`. Counts of clients and sources are not
secrets, but they are not for the audience either.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator.audience import AUDIENCES
from web.keys import CONFIG, FANOUT, RUNTIME

SOURCE_STATES = {"stopped": 0, "backoff": 1, "starting": 2, "running": 3}
READY_TIMEOUT = 2.0

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


class AppCollector(Collector):
    """What is read at scrape time from the runtime, the pipeline and the fan-out."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        runtime = self.app[RUNTIME]
        stats = runtime.pipeline.stats if runtime.pipeline is not None else None
        ingested = CounterMetricFamily(
            "backchannel_posts_ingested", "Posts stored or updated, by source", labels=["source"]
        )
        lag = GaugeMetricFamily(
            "backchannel_source_lag_seconds",
            "From the newest new post being written to it being stored, by source",
            labels=["source"],
        )
        if stats is not None:
            for source, count in sorted(stats.per_source.items()):
                ingested.add_metric([source], count)
            for source, seconds in sorted(stats.lag_seconds.items()):
                lag.add_metric([source], seconds)
            yield CounterMetricFamily(
                "backchannel_items_received", "Items the sources handed in", value=stats.received
            )
            yield CounterMetricFamily(
                "backchannel_items_rejected", "Malformed items skipped", value=stats.rejected
            )
        yield ingested
        yield lag
        state = GaugeMetricFamily(
            "backchannel_source_state",
            "0 stopped, 1 backing off after a failure, 2 starting, 3 running",
            labels=["source"],
        )
        restarts = CounterMetricFamily(
            "backchannel_source_restarts", "Restarts after a failure", labels=["source"]
        )
        for name, supervised in sorted(runtime.sources.items()):
            state.add_metric([name], SOURCE_STATES.get(supervised.state, 0))
            restarts.add_metric([name], supervised.restarts)
        yield state
        yield restarts
        fanout = self.app.get(FANOUT)
        clients = GaugeMetricFamily(
            "backchannel_ws_clients", "Connected websocket clients", labels=["audience"]
        )
        if fanout is not None:
            counts = dict.fromkeys(AUDIENCES, 0)
            for client in list(fanout.clients):
                counts[client.audience] = counts.get(client.audience, 0) + 1
            for audience, count in counts.items():
                clients.add_metric([audience], count)
            yield CounterMetricFamily(
                "backchannel_ws_dropped",
                "Clients that fell behind, were sent resync and closed",
                value=fanout.dropped,
            )
            yield CounterMetricFamily(
                "backchannel_ws_resyncs", "Resync messages sent", value=fanout.resyncs
            )
        yield clients


def setup_metrics(app: web.Application) -> None:
    registry = CollectorRegistry(auto_describe=False)
    app[REGISTRY] = registry
    registry.register(AppCollector(app))
    store_latency = Histogram(
        "backchannel_store_write_seconds",
        "Seconds per store write transaction (one batch)",
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    batch_latency = Histogram(
        "backchannel_fanout_batch_seconds",
        "Seconds to encode and hand one fan-out tick to every client",
        registry=registry,
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    )
    app[RUNTIME].store.commit_listeners.append(store_latency.observe)
    app.on_startup.append(_hook_fanout(batch_latency))
    app.router.add_get("/metrics", metrics, name="metrics")
    app.router.add_get("/readyz", readyz, name="readyz")


def _hook_fanout(histogram: Histogram) -> Any:
    async def hook(app: web.Application) -> None:
        # The fan-out is made by a cleanup context, which runs before on_startup ends.
        fanout = app.get(FANOUT)
        if fanout is not None:
            fanout.batch_listeners.append(histogram.observe)

    return hook


def _may_read_metrics(request: web.Request) -> bool:
    config = request.app[CONFIG]
    if config.get("web", "metrics_public"):
        return True
    token = config.get("web", "admin_token")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        if hmac.compare_digest(header[7:].encode(), str(token).encode()):
            return True
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    return address.is_loopback or str(address) in config.get("web", "trusted_proxies")


async def metrics(request: web.Request) -> web.Response:
    if not _may_read_metrics(request):
        raise web.HTTPForbidden(
            text="metrics: loopback, trusted proxies or the admin token only "
            "(or set web.metrics_public = true)\n"
        )
    body = generate_latest(request.app[REGISTRY])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def readyz(request: web.Request) -> web.Response:
    """200 when this node can do its job: store and bus answer, a source is not all down."""
    runtime = request.app[RUNTIME]
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(runtime.store.last_seq(), READY_TIMEOUT)
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"failed: {type(exc).__name__}: {exc}"[:200]
    try:
        ok = await asyncio.wait_for(runtime.bus.ping(), READY_TIMEOUT)
        checks["bus"] = "ok" if ok else "failed: no answer"
    except Exception as exc:
        checks["bus"] = f"failed: {type(exc).__name__}: {exc}"[:200]
    states = [s.state for s in runtime.sources.values()]
    if states and all(state in ("backoff", "stopped") for state in states):
        checks["sources"] = "failed: every source is down (" + ", ".join(states) + ")"
    else:
        checks["sources"] = "ok" if states else "none on this node"
    ready = all(not value.startswith("failed") for value in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
