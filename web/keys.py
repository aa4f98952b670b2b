"""Typed application state."""

from __future__ import annotations

from aiohttp import web

from aggregator.config import Config
from aggregator.runtime import Runtime
from web.fanout import FanOut

CONFIG = web.AppKey("config", Config)
RUNTIME = web.AppKey("runtime", Runtime)
FANOUT = web.AppKey("fanout", FanOut)
WEBSOCKETS = web.AppKey("websockets", set)
CONNECTIONS_PER_IP = web.AppKey("connections_per_ip", dict)
