"""Real PostgreSQL and Redis servers for the tests, on loopback ports, in temp dirs.

PostgreSQL comes from Debian's `postgresql` package (`initdb`/`postgres` under
/usr/lib/postgresql/*/bin); it refuses to run as root, so as root the cluster runs as
`nobody`. Redis is the `redis-server` binary with persistence off. One server of each
kind is started per test process, on first use, and stopped at exit; every test gets its
own database (PostgreSQL) or channel (Redis), so tests do not see each other's data.

When a binary is missing the fixtures skip, except under CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import IN_CI
from factories import free_port


class ServerUnavailable(RuntimeError):
    """A server binary is not installed here."""


def _die_with_parent() -> None:
    # Servers must not outlive a test run that was killed: SIGTERM them when we die.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not come up: {log.read_text()[-2000:]}")


def postgres_bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if not found:
        raise ServerUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


@dataclass
class PostgresServer:
    """A throwaway cluster: trust auth on 127.0.0.1 only, no unix socket, fsync off."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bc-pg-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def user_kwargs(self) -> dict[str, str]:
        return {"user": "nobody", "group": "nogroup"} if os.geteuid() == 0 else {}

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        bindir = postgres_bindir()
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "nobody", "nogroup")
        subprocess.run(
            [
                *(str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres"),
                *("--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
            **self.user_kwargs,  # type: ignore[call-overload]
        )

    def start(self) -> None:
        bindir = postgres_bindir()
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                *(str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)),
                *("-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="),
                *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
                *("-c", "max_connections=200", "-c", "shared_buffers=32MB"),
            ],
            stdout=log,
            stderr=log,
            cwd=self.root,
            preexec_fn=_die_with_parent,
            **self.user_kwargs,  # type: ignore[call-overload]
        )
        _wait_port(self.port, 30, self.proc, self.log)
        # The port opens before the server accepts logins; wait for a real answer.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections: {self.log.read_text()}")

    def stop(self, *, fast: bool = True) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast shutdown": it disconnects clients and exits cleanly.
        self.proc.send_signal(signal.SIGINT if fast else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database_name(self) -> str:
        return f"t{os.getpid()}_{next(self._names)}"


@dataclass
class RedisServer:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bc-redis-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not installed (apt-get install redis-server)")
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--daemonize", "no", "--dir", str(self.root)),
                *("--loglevel", "warning"),
            ],
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent,
        )
        _wait_port(self.port, 15, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_channel(self) -> str:
        return f"bc-test-{os.getpid()}-{next(self._names)}"


_shared: dict[str, PostgresServer | RedisServer] = {}


def _unavailable(exc: ServerUnavailable) -> None:
    if IN_CI:
        pytest.fail(f"CI needs this server: {exc}")
    pytest.skip(str(exc))


def _shared_server(kind: str, make: Callable[[], PostgresServer | RedisServer]) -> object:
    server = _shared.get(kind)
    if server is None:
        server = make()
        _shared[kind] = server
        atexit.register(server.destroy)
    return server


def shared_postgres() -> PostgresServer:
    """The test process's PostgreSQL cluster, started on first use."""

    def make() -> PostgresServer:
        server = PostgresServer()
        try:
            server.init()
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    try:
        server = _shared_server("postgres", make)
    except ServerUnavailable as exc:
        _unavailable(exc)
        raise
    assert isinstance(server, PostgresServer)
    return server


def shared_redis() -> RedisServer:
    def make() -> RedisServer:
        server = RedisServer()
        try:
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    try:
        server = _shared_server("redis", make)
    except ServerUnavailable as exc:
        _unavailable(exc)
        raise
    assert isinstance(server, RedisServer)
    return server


async def create_database(server: PostgresServer) -> str:
    """A fresh, empty database on the shared cluster; returns its DSN."""
    import asyncpg

    name = server.new_database_name()
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.dsn(name)


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    return shared_postgres()


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    return shared_redis()
