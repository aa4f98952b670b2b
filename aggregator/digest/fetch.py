"""GuardedFetcher: fetch a linked page without becoming a proxy into private networks.

Every hostname is resolved by us and every address checked (loopback, private,
link-local, reserved, multicast, unspecified, IPv4-mapped/compatible IPv6 and the other
non-global ranges are refused); the connection goes to an address we checked (so DNS
cannot change its answer in between); redirects are followed by hand, at most 5, each
hop checked again; bodies are capped in size and time; only HTML is read; robots.txt is
honoured. Tests may allow exactly the loopback networks they use, nothing else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib import robotparser
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger(__name__)

MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = 10.0
USER_AGENT = "backchannel-digest/0.1 (event digest; link previews)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
    "application/json",
    *HTML_TYPES,  # feedparser reads a mislabelled feed too
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class FetchRefusedError(OSError):
    """The URL, an address it resolves to, a redirect, or the response is not allowed."""


class WrongTypeError(FetchRefusedError):
    """The page was reached but is not of a type we read; `url` is where (after redirects)."""

    def __init__(self, message: str, url: str, content_type: str, status: int = 200) -> None:
        super().__init__(message)
        self.url = url
        self.content_type = content_type
        self.status = status


def address_allowed(ip: IPAddress, allowed: Iterable[Any] = ()) -> bool:
    if any(ip in net for net in allowed):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_allowed(embedded, allowed)
        if ip.packed[:12] == bytes(12):  # IPv4-compatible ::a.b.c.d (deprecated)
            return address_allowed(ipaddress.IPv4Address(ip.packed[12:]), allowed)
    return ip.is_global and not ip.is_multicast


class GuardedResolver(AbstractResolver):
    """Resolves like the system, then refuses a name if any of its addresses is private."""

    def __init__(self, allowed: Iterable[Any] = (), lookup: dict[str, list[str]] | None = None):
        self.allowed = tuple(allowed)
        self.lookup = lookup  # tests: a fixed name -> addresses table instead of DNS

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._addresses(host, port)
        if not addresses:
            raise OSError(f"cannot resolve {host}")
        for address in addresses:
            if not address_allowed(ipaddress.ip_address(address), self.allowed):
                raise FetchRefusedError(f"{host} resolves to a private address ({address})")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        if self.lookup is not None:
            return list(self.lookup.get(host, []))
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # ETag, Last-Modified


class GuardedFetcher:
    def __init__(
        self,
        *,
        allowed: Iterable[Any] = (),
        lookup: dict[str, list[str]] | None = None,
        max_bytes: int = MAX_BYTES,
        timeout: float = TIMEOUT,
        respect_robots: bool = True,
    ) -> None:
        self.resolver = GuardedResolver(allowed, lookup)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.respect_robots = respect_robots
        self._robots: dict[str, robotparser.RobotFileParser | None] = {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, allow_loopback: bool) -> GuardedFetcher:
        return cls(allowed=LOOPBACK if allow_loopback else ())

    async def __aenter__(self) -> GuardedFetcher:
        connector = aiohttp.TCPConnector(
            resolver=self.resolver, use_dns_cache=False, limit_per_host=2
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"},
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=5),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch_html(self, url: str) -> Fetched:
        if self.respect_robots and not await self._robots_allow(url):
            raise FetchRefusedError(f"{url}: disallowed by robots.txt")
        return await self._fetch(url, types=HTML_TYPES)

    async def fetch_feed(
        self, url: str, *, etag: str | None = None, modified: str | None = None
    ) -> Fetched:
        """A feed, with a conditional GET: status 304 and an empty body when unchanged."""
        if self.respect_robots and not await self._robots_allow(url):
            raise FetchRefusedError(f"{url}: disallowed by robots.txt")
        headers = {"Accept": ", ".join(FEED_TYPES[:3]) + ", */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        return await self._fetch(url, types=FEED_TYPES, headers=headers)

    async def _fetch(
        self,
        url: str,
        *,
        types: tuple[str, ...] | None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        assert self._session is not None, "use `async with GuardedFetcher(...)`"
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchRefusedError(f"{url[:200]}: only http(s) URLs are fetched")
            if parts.username or parts.password:
                raise FetchRefusedError(f"{url[:200]}: credentials in URLs are not fetched")
            # aiohttp connects to an IP literal without asking the resolver: check it here.
            try:
                literal = ipaddress.ip_address(parts.hostname)
            except ValueError:
                literal = None
            if literal is not None and not address_allowed(literal, self.resolver.allowed):
                raise FetchRefusedError(f"{url[:200]}: a private address ({literal})")
            try:
                async with self._session.get(url, allow_redirects=False, headers=headers) as resp:
                    if resp.status in (301, 302, 303, 307, 308):
                        location = resp.headers.get("Location")
                        if not location:
                            raise FetchRefusedError(f"{url}: redirect without a Location")
                        url = urljoin(url, location)
                        continue
                    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
                    kept = {
                        k: v
                        for k in ("ETag", "Last-Modified")
                        if (v := resp.headers.get(k)) is not None
                    }
                    if resp.status == 304:
                        return Fetched(url, 304, content_type, b"", kept)
                    if types is not None and content_type.lower() not in types:
                        raise WrongTypeError(
                            f"{url}: not {'HTML' if types is HTML_TYPES else 'a feed'} "
                            f"({content_type or 'no type'})",
                            url,
                            content_type,
                            resp.status,
                        )
                    declared = resp.content_length
                    if declared is not None and declared > self.max_bytes:
                        raise FetchRefusedError(f"{url}: larger than {self.max_bytes} bytes")
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise FetchRefusedError(f"{url}: larger than {self.max_bytes} bytes")
                    return Fetched(url, resp.status, content_type, bytes(body), kept)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, FetchRefusedError):
                    raise FetchRefusedError(str(exc.os_error)) from None
                raise
        raise FetchRefusedError(f"more than {MAX_REDIRECTS} redirects")

    async def _robots_allow(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            parser: robotparser.RobotFileParser | None = None
            try:
                fetched = await self._fetch(origin + "/robots.txt", types=None)
                if fetched.status == 200:
                    parser = robotparser.RobotFileParser()
                    parser.parse(fetched.body.decode("utf-8", "replace").splitlines())
            except (aiohttp.ClientError, TimeoutError, FetchRefusedError, UnicodeError):
                parser = None  # no readable robots.txt: allowed, as crawlers treat it
            self._robots[origin] = parser
        parser = self._robots[origin]
        return parser is None or parser.can_fetch(USER_AGENT, url)
