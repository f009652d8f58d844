"""Fixtures for channel tests: an in-memory outbox, a manual clock, and real
SMTP/HTTP receivers listening on 127.0.0.1 (no mocks of either protocol)."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from collections.abc import Callable

import msgpack
import pytest
from aiosmtpd.controller import Controller

LOCALHOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


# --- clock & outbox -------------------------------------------------------------


class ManualClock:
    """A clock the test advances explicitly, so backoff is checked exactly."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


@dataclass
class _Entry:
    raw: bytes
    attempts: int = 0
    ready_at: int = 0
    leased: bool = False
    errors: list[str] = field(default_factory=list)


class MemoryOutbox:
    """In-memory stand-in for a shard's LMDB outbox (implements OutboxSource)."""

    def __init__(self) -> None:
        self.pending: dict[bytes, _Entry] = {}
        self.sent: list[bytes] = []
        self.dead: list[tuple[bytes, bytes, str]] = []  # key, raw effect, error
        self.retries: list[tuple[bytes, str, int, int]] = []  # key, error, retry_at, now
        self._seq = 0

    def put(self, effect: dict) -> bytes:
        self._seq += 1
        key = self._seq.to_bytes(8, "big")
        self.pending[key] = _Entry(raw=msgpack.packb(effect))
        return key

    def put_raw(self, raw: bytes) -> bytes:
        self._seq += 1
        key = self._seq.to_bytes(8, "big")
        self.pending[key] = _Entry(raw=raw)
        return key

    async def due(self, limit: int, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        out = []
        for key, entry in self.pending.items():
            if len(out) >= limit:
                break
            if not entry.leased and entry.ready_at <= now_ms:
                entry.leased = True
                out.append((key, entry.raw, entry.attempts))
        return out

    async def settle(self, sent: list[bytes], failed: list[tuple[bytes, str, int | None]], now_ms: int) -> None:
        for key in sent:
            del self.pending[key]
            self.sent.append(key)
        for key, error, retry_at in failed:
            entry = self.pending[key]
            entry.errors.append(error)
            if retry_at is None:
                del self.pending[key]
                self.dead.append((key, entry.raw, error))
                continue
            self.retries.append((key, error, retry_at, now_ms))
            entry.attempts += 1
            entry.ready_at = retry_at
            entry.leased = False

    def next_ready_ms(self) -> int | None:
        return min((e.ready_at for e in self.pending.values()), default=None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
def outbox_factory() -> type[MemoryOutbox]:
    """For tests needing several shards (conftest can't be imported in importlib mode)."""
    return MemoryOutbox


@pytest.fixture
def drain_all(clock: ManualClock) -> Callable:
    """Drain until the outbox is empty, jumping the clock to each retry time."""

    async def run(dispatcher: Any, outbox: MemoryOutbox, max_passes: int = 50) -> int:
        passes = 0
        while outbox.pending and passes < max_passes:
            passes += 1
            if await dispatcher.drain_once() == 0:
                clock.now = max(clock.now, outbox.next_ready_ms() or clock.now)
        assert not outbox.pending, "outbox did not drain"
        return passes

    return run


_effect_seq = iter(range(1, 1_000_000))


@pytest.fixture
def make_effect() -> Callable[..., dict]:
    """Build an effect shaped like the engine's, overriding any top-level key."""

    def build(**overrides: Any) -> dict:
        n = next(_effect_seq)
        effect = {
            "id": f"{n:016x}",
            "contact": "c1",
            "channel": "email",
            "to": "ann@example.com",
            "program": "milan_vip",
            "version": 3,
            "node": "send_msg",
            "event_id": "e1",
            "created_ms": 1_700_000_000_000,
            "message": {"text": "Hi {{ profile.first_name | default('there') }}"},
            "context": {
                "contact": "c1",
                "event": {"id": "e1", "type": "purchase", "ts": 1_700_000_000_000, "source": "pos",
                          "attrs": {"total_amount": 42, "store_code": "MI01"}},
                "profile": {"first_name": "Ann"},
                "loyalty": {"club": {"qualifying": 10, "non_qualifying": 50}},
            },
        }
        effect.update(overrides)
        return effect

    return build


# --- SMTP receiver --------------------------------------------------------------


class CollectingHandler:
    """aiosmtpd handler storing every accepted message.

    Recipients starting with ``reject`` get a 550, ``busy`` a 451.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        if address.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "session": id(session),
            "message": email.message_from_bytes(envelope.content, policy=email.policy.default),
        })
        return "250 Message accepted"


class SmtpServer:
    """A real SMTP server on 127.0.0.1; ``restart`` drops client connections."""

    def __init__(self) -> None:
        self.handler = CollectingHandler()
        self.port = _free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname=LOCALHOST, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.handler.messages


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


# --- HTTP receiver --------------------------------------------------------------


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None  # webhook actions may post plain text: see "body"


class HttpReceiver:
    """Records POSTs (raw ``body`` and parsed ``json``); answers ``fail_status`` to the
    first ``fail_first`` requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = 0
        self.fail_status = 500
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOCALHOST, 0), self._handler_class())
        self.port = self._server.server_address[1]
        self.url = f"http://{LOCALHOST}:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def _handler_class(self) -> type:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.record(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            failing = len(self.requests) < self.fail_first
            self.requests.append({"path": path, "headers": {k.lower(): v for k, v in headers.items()},
                                  "body": body, "json": _json_or_none(body),
                                  "status": self.fail_status if failing else 200})
            return self.requests[-1]["status"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def http_receiver():
    receiver = HttpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (connections are refused)."""
    return _free_port()
