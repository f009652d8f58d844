"""The TCP gateway: wire protocol v1 on asyncio (docs/wire-protocol.md).

Per connection: handshake and optional token auth, then a read loop. Each ``events``
frame goes to the Rust core whole (``Catalog.split_frame``), which validates every
event and returns per-shard slices plus per-event rejections; the slices go to the
shard lanes and the frame is acked when every shard holding part of it committed.
Other ops go to the engine's admin handler. Nothing a peer sends can stop the
server: every failure is answered on, and confined to, that connection.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cairn import _core, wire
from cairn.lanes import ShardLane
from cairn.ticket import Ticket

log = logging.getLogger("cairn.gateway")

AdminFn = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

HELLO_TIMEOUT_S = 10.0


@dataclass
class GatewayConfig:
    token: str | None = None
    max_frame: int = wire.DEFAULT_MAX_FRAME
    max_batch: int = wire.DEFAULT_MAX_BATCH
    #: frames of one connection that may wait for their ack before reading pauses
    max_frames_in_flight: int = 64
    server_name: str = "cairn/0.1.0"


class Gateway:
    """Accepts producer connections and feeds the shard lanes."""

    def __init__(self, config: GatewayConfig, lanes: list[ShardLane], catalog: Callable[[], _core.Catalog],
                 clock: Callable[[], int], admin: AdminFn) -> None:
        self.config = config
        self.lanes = lanes
        self.catalog = catalog
        self.clock = clock
        self.admin = admin
        self.connections = 0
        self.closing = False
        self._writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until it closes or breaks the protocol."""
        self.connections += 1
        self._writers.add(writer)
        conn = _Connection(self, reader, writer)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # never let one connection take the server down
            log.exception("connection failed")
            conn.send(wire.error("internal", "internal error; see the server log"))
        finally:
            self.connections -= 1
            self._writers.discard(writer)
            await conn.close()

    def stop_reading(self) -> None:
        """Apply no frame read from now on (what is already accepted still finishes)."""
        self.closing = True

    async def shutdown(self) -> None:
        """Tell connected producers the server is going away, and close."""
        self.closing = True
        for w in list(self._writers):
            try:
                w.write(wire.encode(wire.error("shutting_down", "the server is shutting down")))
                await w.drain()
                w.close()
            except Exception:  # already gone
                pass


class _Connection:
    def __init__(self, gw: Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.gw = gw
        self.reader = reader
        self.writer = writer
        self.in_flight = 0
        self.room = asyncio.Event()
        self.room.set()
        self.idle = asyncio.Event()  # no frame of this connection awaits its ack
        self.idle.set()
        # The event loop keeps only weak references to tasks: hold the admin ones.
        self.admin_tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def send(self, body: dict[str, Any]) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(wire.encode(body))

    async def close(self) -> None:
        self.closed = True
        try:
            await self.writer.drain()
        except Exception:
            pass
        self.writer.close()

    async def run(self) -> None:
        if not await self.handshake():
            return
        max_frame = self.gw.config.max_frame
        while not self.gw.closing:
            try:
                body = await wire.read_frame(self.reader, max_frame)
            except wire.FrameTooLarge as exc:
                self.send(wire.error("too_large", f"{exc}; split the events over several frames"))
                return
            if body is None or self.gw.closing:
                # A frame read while stopping is not applied (never acked, resent);
                # the acks of the frames before it still go out before we close.
                await self.idle.wait()
                return
            if not await self.on_frame(body):
                return
            await self.writer.drain()

    async def handshake(self) -> bool:
        cfg = self.gw.config
        try:
            body = await asyncio.wait_for(wire.read_frame(self.reader, cfg.max_frame), HELLO_TIMEOUT_S)
        except wire.FrameTooLarge as exc:
            self.send(wire.error("too_large", str(exc)))
            return False
        except asyncio.TimeoutError:
            self.send(wire.error("bad_frame", f"no hello within {HELLO_TIMEOUT_S:.0f} s"))
            return False
        if body is None:
            return False
        hello = _decode_map(body)
        if hello is None:
            self.send(wire.error("bad_frame", "the first frame must be one msgpack map, the 'hello'"))
            return False
        if hello.get("op") != "hello":
            self.send(wire.error("invalid", f"the first frame must have op 'hello', got {hello.get('op')!r}"))
            return False
        if hello.get("version") != wire.PROTOCOL_VERSION:
            self.send(wire.error("unsupported_version",
                                 f"protocol version {hello.get('version')!r} is not supported; this server speaks 1"))
            return False
        if cfg.token is not None and not _token_ok(hello.get("token"), cfg.token):
            self.send(wire.error("unauthorized", "missing or wrong token"))
            return False
        self.send({"op": "welcome", "version": wire.PROTOCOL_VERSION, "server": cfg.server_name,
                   "max_frame": cfg.max_frame, "max_batch": cfg.max_batch})
        return True

    async def on_frame(self, body: bytes) -> bool:
        """Handle one frame; False closes the connection."""
        try:
            split = self.gw.catalog().split_frame(body, len(self.gw.lanes), self.gw.clock())
        except _core.FrameError as exc:
            self.send(wire.error(exc.code, str(exc), exc.seq))
            return exc.code != "bad_frame"
        if split.op == "events":
            await self.on_events(split)
        elif split.op == "hello":
            self.send(wire.error("invalid", "hello was already received on this connection", split.seq))
        else:
            self.spawn_admin(_decode_map(body) or {}, split.seq)
        return True

    async def on_events(self, split: _core.FrameSplit) -> None:
        if split.total > self.gw.config.max_batch:
            self.send(wire.error("invalid", f"{split.total} events exceed max_batch "
                                 f"{self.gw.config.max_batch}; nothing of this frame was applied", split.seq))
            return
        await self.wait_room()
        rejected = [{"index": i, "code": code, "message": msg} for i, code, msg in split.rejected]
        self.in_flight += 1
        self.idle.clear()
        if self.in_flight >= self.gw.config.max_frames_in_flight:
            self.room.clear()
        ticket = Ticket(split.seq, len(split.batches), rejected, self.on_ticket_done)
        for shard, part, count in split.batches:
            await self.gw.lanes[shard].submit(part, count, ticket)

    def on_ticket_done(self, reply: dict[str, Any]) -> None:
        self.send(reply)
        self.in_flight -= 1
        if self.in_flight < self.gw.config.max_frames_in_flight:
            self.room.set()
        if self.in_flight == 0:
            self.idle.set()

    async def wait_room(self) -> None:
        # Backpressure: stop reading this socket while too many frames await acks.
        await self.room.wait()

    def spawn_admin(self, request: dict[str, Any], seq: int | None) -> None:
        async def answer() -> None:
            try:
                reply = await self.gw.admin(request)
            except AdminError as exc:
                reply = wire.error(exc.code, str(exc)) | exc.extra
            except Exception as exc:
                log.exception("admin op %r failed", request.get("op"))
                reply = wire.error("internal", f"{type(exc).__name__}: {exc}")
            reply["seq"] = seq
            self.send(reply)

        task = asyncio.ensure_future(answer())
        self.admin_tasks.add(task)
        task.add_done_callback(self.admin_tasks.discard)


class AdminError(Exception):
    """An admin request the engine refuses, answered as an ``error`` frame."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra


def _decode_map(body: bytes) -> dict[str, Any] | None:
    try:
        obj = wire.decode(body)
    except Exception:
        return None
    return obj if isinstance(obj, dict) else None


def _token_ok(given: Any, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
