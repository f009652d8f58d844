"""Shared fixtures: one Ray session, engines on real sockets and real LMDB folders.

Every engine in these tests is the real thing: Ray shard actors, LMDB under a
temporary folder, the Rust core, the asyncio gateway on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import ray

import json

from cairn.client import Client
from cairn.clock import ManualClock
from cairn.engine import Engine, EngineConfig
from cairn.raystart import start_ray

T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def ray_session() -> Iterator[None]:
    """``ray.init`` once per test session."""
    start_ray(num_cpus=2)
    yield
    ray.shutdown()


class EngineThread:
    """An ``Engine`` running on its own event loop thread, so tests can use the
    synchronous client and plain asserts while the engine serves."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.engine = Engine(config)
        self.running = False

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> EngineThread:
        self.call(self.engine.start())
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.call(self.engine.stop())
            self.running = False

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def host(self) -> str:
        return self.engine.address[0]

    @property
    def port(self) -> int:
        return self.engine.address[1]

    def apply(self, text: str, name: str = "test.yaml") -> dict[str, Any]:
        return self.call(self.engine.apply_definitions(text, name))

    def contact(self, contact: str) -> dict[str, Any] | None:
        return self.call(self.engine.contact(contact))

    def status(self) -> dict[str, Any]:
        return self.call(self.engine.status())

    def flush(self) -> None:
        self.call(self.engine.flush())


EngineFactory = Callable[..., EngineThread]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[EngineFactory]:
    """Start engines on tmp_path/data (same folder each call: restarts see old data)."""
    started: list[EngineThread] = []

    def make(**overrides: Any) -> EngineThread:
        options: dict[str, Any] = {"data_dir": tmp_path / "data", "shards": 2, "port": 0}
        options.update(overrides)
        e = EngineThread(EngineConfig(**options)).start()
        started.append(e)
        return e

    yield make
    for e in started:
        e.close()


@pytest.fixture
def engine(make_engine: EngineFactory) -> EngineThread:
    """A running engine with 2 shards, no token, the file sink for every channel."""
    return make_engine()


class RawConn:
    """A bare socket speaking frames by hand, to send what no client would."""

    def __init__(self, host: str, port: int) -> None:
        import socket

        self.sock = socket.create_connection((host, port), timeout=20)

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, obj: dict[str, Any]) -> None:
        from cairn import wire

        self.sock.sendall(wire.encode(obj))

    def recv(self) -> dict[str, Any] | None:
        """The next frame, or None once the server closed the connection."""
        from cairn import wire

        header = self._exactly(4)
        if header is None:
            return None
        body = self._exactly(int.from_bytes(header, "big"))
        return None if body is None else wire.decode(body)

    def _exactly(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def hello(self, **fields: Any) -> dict[str, Any] | None:
        self.send({"op": "hello", "version": 1, "client": "raw-test", **fields})
        return self.recv()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(engine: EngineThread) -> Iterator[Callable[[], RawConn]]:
    """Open raw connections to the ``engine`` fixture."""
    conns: list[RawConn] = []

    def connect() -> RawConn:
        c = RawConn(engine.host, engine.port)
        conns.append(c)
        return c

    yield connect
    for c in conns:
        c.close()


class ServedEngine:
    """A `cairn serve` subprocess (its own process group), for tests that SIGKILL it."""

    def __init__(self, data: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cairn.cli", "serve", "--data", str(data), "--port", "0", "--shards", "2",
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.match(r"cairn listening on ([\d.]+):(\d+)", line)
        assert match, f"unexpected first line {line!r}"
        self.port = int(match.group(2))

    def kill(self) -> None:
        """SIGKILL the engine and everything it started (Ray workers included)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServedEngine]]:
    """Start `cairn serve` subprocesses on tmp_path/data (same folder each call);
    every one still running is killed at teardown."""
    started: list[ServedEngine] = []

    def start(*args: str) -> ServedEngine:
        engine = ServedEngine(tmp_path / "data", *args)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.kill()


@pytest.fixture
def raw_conn() -> type[RawConn]:
    """The ``RawConn`` class, for engines other than the ``engine`` fixture."""
    return RawConn


#: Monday 2026-11-23 09:00:00 UTC: the manual clock starts here.
T0 = 1_795_424_400_000
HOUR = 3_600_000
DAY = 24 * HOUR


class Driver:
    """One engine on a manual clock, driven like a producer and an operator would
    (journeys and loyalty tests)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.client = Client(host=engine.host, port=engine.port)
        self._ids = 0

    def apply(self, text: str) -> dict[str, Any]:
        return self.engine.apply(text)

    def send(self, contact: str, kind: str, **attrs: Any) -> None:
        """One event now (the engine's clock stamps it); asserts it was accepted."""
        self._ids += 1
        result = self.client.send([{"id": f"t{self._ids}", "contact": contact, "type": kind, "attrs": attrs}])
        assert (result.accepted, result.rejected) == (1, []), result

    def profile(self, contact: str, **fields: Any) -> None:
        self._ids += 1
        result = self.client.send([{"id": f"t{self._ids}", "contact": contact, "type": "$profile",
                                    "attrs": {"set": fields}}])
        assert result.accepted == 1, result

    def advance(self, duration: str) -> int:
        """Move the clock (through the admin op, as `cairn clock advance` does);
        returns how many timers fired."""
        return self.client.request("clock", advance=duration)["fired"]

    def explain(self, contact: str, program: str | None = None) -> list[dict[str, Any]]:
        return self.client.explain(contact, program)

    def member(self, contact: str) -> dict[str, Any] | None:
        return self.client.member(contact)

    def sent(self) -> list[dict[str, Any]]:
        """Every delivered effect, in delivery order (after the outbox drained)."""
        self.engine.flush()
        sink = Path(self.engine.config.data_dir) / "sent.ndjson"
        return [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []

    def messages(self) -> list[tuple[str, str, str, str]]:
        """(contact, channel, node, text) of every delivered message."""
        return [(m["contact"], m["channel"], m["node"], m["message"]["text"]) for m in self.sent()
                if m.get("kind", "message") == "message"]

    @staticmethod
    def path(run: dict[str, Any]) -> list[tuple[str, str]]:
        """A run's (node, outcome) steps, as `explain` reports them."""
        return [(s["node"], s["outcome"]) for s in run["steps"]]

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def manual_engine(make_engine: Any) -> Iterator[Driver]:
    """A ``Driver`` of one engine (2 shards) on a manual clock starting at T0."""
    d = Driver(make_engine(clock=ManualClock(T0), timer_interval_s=3600))
    yield d
    d.close()
