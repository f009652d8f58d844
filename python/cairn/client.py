"""Producer client for the Cairn wire protocol v1 (see docs/wire-protocol.md).

``AsyncClient`` keeps one TCP connection to a gateway, pipelines event frames
(up to ``max_in_flight`` un-acked at a time), matches answers by ``seq`` in a
background reader task, and survives a dropped connection: it reconnects, says
``hello`` again and resends every frame it holds no answer for, in the order it
first sent them. That is safe because the server deduplicates events by ``id``.

``Client`` is the same thing for synchronous code: it drives an ``AsyncClient`` on
a private event loop in a background thread, so the connection and the
pipelining persist between calls.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import msgpack

from cairn.wire import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_FRAME,
    DEFAULT_PORT,
    PROTOCOL_VERSION,
    FrameTooLarge,
    decode,
    encode,
    frame_bytes,
    read_frame,
)

__all__ = [
    "AsyncClient",
    "CairnConnectionError",
    "CairnError",
    "CairnProtocolError",
    "CairnSendError",
    "CairnServerError",
    "Client",
    "OnAck",
    "PlannedFrame",
    "SendResult",
    "events_body",
    "merge_ack",
    "pack_event",
    "plan_frames",
]

log = logging.getLogger(__name__)

#: Callback given each answer to a raw frame: (seq, reply, t_ack_ns), where
#: ``t_ack_ns`` is ``time.perf_counter_ns()`` when the answer was read.
OnAck = Callable[[int, dict[str, Any], int], None]

# Answers (e.g. a contact's full state) may be bigger than what we may send; this
# only guards against a corrupt length prefix making us allocate gigabytes.
_MAX_REPLY = 64 * 1024 * 1024
# Server errors after which reconnecting cannot help.
_FATAL_CODES = frozenset({"unauthorized", "unsupported_version"})
_T = TypeVar("_T")


# --------------------------------------------------------------------- errors


class CairnError(Exception):
    """Base class of every error raised by the Cairn client."""


class CairnServerError(CairnError):
    """The server answered with an ``error`` frame."""

    def __init__(
        self, code: str, message: str, seq: int | None = None, reply: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.seq = seq
        #: The whole ``error`` frame, for extra keys (e.g. ``errors`` of ``apply``).
        self.reply = reply or {}

    @classmethod
    def from_reply(cls, reply: dict[str, Any], seq: int | None = None) -> CairnServerError:
        """Build from an ``error`` frame."""
        return cls(str(reply.get("code", "internal")), str(reply.get("message", "")), seq, reply)


class CairnConnectionError(CairnError, ConnectionError):
    """The connection could not be established or was lost for good.

    Also a ``ConnectionError`` (so an ``OSError``), like the socket errors it wraps.
    """


class CairnProtocolError(CairnError):
    """The server sent something the protocol does not allow."""


class CairnSendError(CairnServerError):
    """Some frames of a ``send`` got an ``error`` answer instead of an ``ack``.

    Raised only after every other frame of the call was answered. ``result`` holds
    what the acked frames reported; ``errors`` one dict per failed frame:
    ``{"seq", "first_index", "events", "code", "message"}`` where ``first_index``
    is the caller's index of the frame's first event.
    """

    def __init__(self, result: SendResult, errors: list[dict[str, Any]]) -> None:
        first = errors[0]
        super().__init__(
            first["code"], f"{len(errors)} frame(s) failed, first: {first['message']}", first["seq"]
        )
        self.result = result
        self.errors = errors


# ------------------------------------------------------------ frame building


@dataclass
class SendResult:
    """What the server reported for one ``send`` call.

    ``rejected`` holds ``{"index", "code", "message"}`` dicts, ``index`` being the
    event's position in the caller's iterable. Events the client refused to send
    (not encodable, or bigger than ``max_frame`` on their own) appear there too,
    with code ``invalid`` or ``too_large``.
    """

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    frames: int = 0


@dataclass(slots=True)
class PlannedFrame:
    """The packed events of one future ``events`` frame and their caller indices."""

    indices: list[int]
    packed: list[bytes]


def pack_event(event: Any) -> bytes:
    """Encode one event as msgpack; raise ``TypeError`` if it is not a map."""
    if not isinstance(event, dict):
        raise TypeError(f"an event must be a map, not {type(event).__name__}")
    return msgpack.packb(event, use_bin_type=True)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


_EVENTS_HEAD = b"\x83" + b"".join(msgpack.packb(s) for s in ("op", "events", "seq"))
_EVENTS_KEY = msgpack.packb("events")


def events_body(seq: int, packed_events: Sequence[bytes]) -> bytes:
    """Build the body of ``{"op": "events", "seq": seq, "events": [...]}``.

    The events arrive already packed, so each event is encoded once however the
    frames are cut, and a frame's size is known exactly before it is built.
    """
    return b"".join(
        (
            _EVENTS_HEAD,
            msgpack.packb(seq),
            _EVENTS_KEY,
            _array_header(len(packed_events)),
            *packed_events,
        )
    )


# Largest possible body size of an events frame holding no events (seq as uint64,
# array header in its 5-byte form): a frame's size is this plus its events' sizes.
FRAME_OVERHEAD = len(events_body(2**64 - 1, [])) - 1 + 5


def _local_reject(index: int, code: str, message: str) -> dict[str, Any]:
    return {"index": index, "code": code, "message": message}


def plan_frames(
    events: Iterable[Any],
    max_events: int,
    max_bytes: int,
    rejected: list[dict[str, Any]],
) -> Iterator[PlannedFrame]:
    """Cut ``events`` into frames of at most ``max_events`` events and ``max_bytes``.

    Lazy, so a huge import never sits in memory whole. An event that cannot be
    encoded, or would not fit in a frame alone, is appended to ``rejected`` (with
    its index in ``events``) instead: sending it would only get the connection
    closed with ``too_large``.
    """
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    indices: list[int] = []
    packed: list[bytes] = []
    size = FRAME_OVERHEAD
    for index, event in enumerate(events):
        try:
            blob = pack_event(event)
        except (TypeError, ValueError, OverflowError) as exc:
            rejected.append(_local_reject(index, "invalid", f"cannot encode event: {exc}"))
            continue
        if FRAME_OVERHEAD + len(blob) > max_bytes:
            rejected.append(
                _local_reject(index, "too_large", f"event of {len(blob)} bytes exceeds max_frame {max_bytes}")
            )
            continue
        if packed and (len(packed) >= max_events or size + len(blob) > max_bytes):
            yield PlannedFrame(indices, packed)
            indices, packed, size = [], [], FRAME_OVERHEAD
        indices.append(index)
        packed.append(blob)
        size += len(blob)
    if packed:
        yield PlannedFrame(indices, packed)


def merge_ack(result: SendResult, ack: dict[str, Any], indices: Sequence[int]) -> None:
    """Add one frame's ``ack`` to ``result``, mapping rejected indices to the caller's."""
    result.frames += 1
    result.accepted += int(ack.get("accepted") or 0)
    result.duplicates += int(ack.get("duplicates") or 0)
    for rejection in ack.get("rejected") or ():
        local = rejection.get("index")
        # An index outside the frame would be a server bug; keep the entry visible.
        mapped = indices[local] if isinstance(local, int) and 0 <= local < len(indices) else None
        result.rejected.append({**rejection, "index": mapped})


class _SendTracker:
    """Collects the answers to the frames of one ``send`` call."""

    def __init__(self, result: SendResult, progress: Callable[[int], None] | None) -> None:
        self.result = result
        self.errors: list[dict[str, Any]] = []
        self.progress = progress
        self.settled = 0

    def on_reply(self, indices: list[int], seq: int, reply: dict[str, Any], _t_ns: int) -> None:
        if reply.get("op") == "error":
            self.errors.append(
                {
                    "seq": seq,
                    "first_index": indices[0],
                    "events": len(indices),
                    "code": reply.get("code", "internal"),
                    "message": reply.get("message", ""),
                }
            )
        else:
            merge_ack(self.result, reply, indices)
        self.advance(len(indices))

    def advance(self, events: int) -> None:
        self.settled += events
        if self.progress is not None and events:
            self.progress(self.settled)


# ------------------------------------------------------------- async client


_UNWRITTEN = -1  # _Pending.generation of a frame that must be (re)written


@dataclass(slots=True, eq=False)
class _Pending:
    """A frame sent (or queued) and not yet answered; kept whole for resending."""

    seq: int
    data: bytes
    future: asyncio.Future[dict[str, Any]]
    on_ack: OnAck | None
    retry_internal: bool
    generation: int = _UNWRITTEN  # connection it was last written on
    resends: int = 0


def _backoff(attempt: int) -> float:
    # Jitter keeps the many connections of a benchmark from reconnecting in step.
    return min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2)


def _consume(future: asyncio.Future[Any]) -> None:
    # Marks the exception retrieved: the caller already gets the first failure.
    if not future.cancelled():
        future.exception()


class AsyncClient:
    """An asyncio producer connection to a Cairn gateway.

    Use as ``async with AsyncClient(...) as client:`` or call ``connect`` and
    ``close``. A frame is resent at most ``reconnect_attempts`` times; each outage
    is retried ``reconnect_attempts`` times with exponential backoff, after which
    every waiting call fails with ``CairnConnectionError``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        name: str = "cairn-python/0.1",
        max_in_flight: int = 32,
        frame_events: int = 1000,
        connect_timeout: float = 10.0,
        reconnect_attempts: int = 20,
    ) -> None:
        if max_in_flight < 1 or frame_events < 1:
            raise ValueError("max_in_flight and frame_events must be at least 1")
        self.host, self.port, self.token, self.name = host, port, token, name
        self.max_in_flight = max_in_flight
        self.frame_events = frame_events
        self.connect_timeout = connect_timeout
        self.reconnect_attempts = reconnect_attempts
        #: Limits announced by the server in ``welcome``.
        self.max_frame = DEFAULT_MAX_FRAME
        self.max_batch = DEFAULT_MAX_BATCH
        self.server: str | None = None
        #: Last connection-level ``error`` frame (seq nil) the server sent, if any.
        self.last_error: dict[str, Any] | None = None
        self._seqs = itertools.count(1)
        self._slots = asyncio.Semaphore(max_in_flight)
        # Insertion order is send order, which is also the resend order.
        self._pending: dict[int, _Pending] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._generation = 0
        self._resending: int | None = None  # generation whose resend is under way
        self._draining: int | None = None  # generation the server is shutting down
        self._connected_once = False
        self._closed = False
        self._fatal: BaseException | None = None

    # ----------------------------------------------------------- lifecycle

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection and do the handshake; fail fast (no retry).

        Raises ``CairnServerError`` if the server refuses (e.g. ``unauthorized``)
        and ``CairnConnectionError`` if it cannot be reached.
        """
        if self._connected_once:
            return
        try:
            await self._open()
        except ValueError as exc:  # undecodable answer
            raise CairnProtocolError(f"bad handshake answer: {exc}") from exc
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            raise CairnConnectionError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        self._connected_once = True

    async def close(self) -> None:
        """Close the connection; frames still unanswered fail with ``CairnConnectionError``."""
        self._closed = True
        for task in (self._reconnect_task, self._reader_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._drop_writer()
        self._fail_all(CairnConnectionError("client closed"))

    @property
    def in_flight(self) -> int:
        """Frames sent or queued and not yet answered."""
        return len(self._pending)

    # --------------------------------------------------------- public ops

    def reserve_seqs(self, n: int) -> range:
        """Reserve ``n`` consecutive seqs for frames built ahead (``send_raw``)."""
        first = next(self._seqs)
        self._seqs = itertools.count(first + n)
        return range(first, first + n)

    async def send_raw(
        self, body: bytes, seq: int, on_ack: OnAck | None = None, *, retry_internal: bool = False
    ) -> asyncio.Future[dict[str, Any]]:
        """Send one pre-encoded frame body carrying ``seq``; return its answer's future.

        Waits while ``max_in_flight`` frames are unanswered (and for TCP
        backpressure), not for the answer. The future resolves to the reply dict
        (``ack`` or an admin reply) or fails with ``CairnServerError`` for an
        ``error`` answer. ``on_ack(seq, reply, t_ack_ns)`` is called for either as
        soon as it is read. ``seq`` must not be in flight already; take it from
        ``reserve_seqs`` when mixing with ``send``/``request``. With
        ``retry_internal`` an ``internal`` error (a shard failed, part of the frame
        may be committed) resends the frame instead of failing it; only for
        idempotent frames such as events.
        """
        self._check_usable()
        await self._slots.acquire()
        if self._fatal is not None or self._closed or seq in self._pending:
            self._slots.release()
            self._check_usable()
            raise ValueError(f"seq {seq} is already in flight")
        future = asyncio.get_running_loop().create_future()
        pending = _Pending(seq, frame_bytes(body), future, on_ack, retry_internal)
        self._pending[seq] = pending
        # Otherwise the next resend picks this frame up, after older ones.
        if self._may_write():
            self._write(pending)
            await self._drain()
        return pending.future

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One admin round trip: send ``{"op": op, "seq": n, **fields}``, return the answer.

        Used for the admin ops of docs/wire-protocol.md (``apply``, ``contact``,
        ``explain``, ``programs``, ``attributes``, ``segment``, ``clock``,
        ``status``, ``dead_letters``). An ``error`` answer raises
        ``CairnServerError``. Like event frames, a request unanswered when the
        connection drops is resent.
        """
        seq = next(self._seqs)
        body = msgpack.packb({"op": op, **fields, "seq": seq}, use_bin_type=True)
        return await (await self.send_raw(body, seq))

    async def member(self, contact: str) -> dict[str, Any] | None:
        """``contact`` as a loyalty member: ``{contact, shard, programs: {name: {tier,
        vip, qualifying, non_qualifying, pending, joined_ms, birthday, rewards: [{code,
        reward, status, granted_ms, expires_ms, redeemed_ms, redeemed_at}], ...}},
        ledger: [{ts, event_id, program, rule, version, kind, entry, delta,
        pending_delta, balance, pending, reason, reference}]}``; None when it is in no
        program."""
        return (await self.request("member", contact=contact))["found"]

    async def simulate(self, definitions: str, from_ms: int, name: str = "<rules>", limit: int = 50) -> dict[str, Any]:
        """Replay stored history through the loyalty rules in ``definitions`` (YAML
        text) and the live ones, from ``from_ms`` to the engine's now; nothing is
        written. ``{from_ms, until_ms, events, seconds, events_per_s, shards,
        programs: {name: {candidate, live, tiers}}, changed, members: [{contact,
        program, candidate, live, delta}]}``."""
        reply = await self.request("simulate", definitions=definitions, name=name, from_ms=from_ms, limit=limit)
        reply.pop("op", None)
        reply.pop("seq", None)
        return reply

    async def explain(self, contact: str, program: str | None = None) -> list[dict[str, Any]]:
        """``contact``'s runs through its programs (or ``program``), oldest first, each
        ``{program, version, run, trigger, status, steps: [{node, outcome, reason,
        event_id, event_type, ts}]}``: the path and why every step went that way."""
        return (await self.request("explain", contact=contact, program=program))["runs"]

    async def send(
        self, events: Iterable[dict[str, Any]], progress: Callable[[int], None] | None = None
    ) -> SendResult:
        """Send ``events`` in pipelined frames; return once every frame is answered.

        ``progress(n)`` is called with the number of events settled so far
        (answered by the server or refused locally). If some frames get an
        ``error`` answer, ``CairnSendError`` is raised after all the others are
        answered, carrying the partial result. Connection failures that outlast
        the reconnect budget raise ``CairnConnectionError``.
        """
        result = SendResult()
        tracker = _SendTracker(result, progress)
        futures: list[asyncio.Future[dict[str, Any]]] = []
        try:
            await self._send_frames(events, tracker, futures)
            await asyncio.gather(*futures, return_exceptions=True)
        finally:
            for future in futures:
                future.add_done_callback(_consume)
        self._raise_lost(futures)
        result.rejected.sort(key=lambda r: (r["index"] is None, r["index"] or 0))
        if tracker.errors:
            raise CairnSendError(result, tracker.errors)
        return result

    async def _send_frames(
        self, events: Iterable[dict[str, Any]], tracker: _SendTracker, futures: list[asyncio.Future[Any]]
    ) -> None:
        limit = max(1, min(self.frame_events, self.max_batch))
        refused: list[dict[str, Any]] = []  # kept apart: acks append to result.rejected meanwhile
        reported = 0
        for frame in plan_frames(events, limit, self.max_frame, refused):
            tracker.advance(len(refused) - reported)
            reported = len(refused)
            seq = next(self._seqs)
            on_ack = partial(tracker.on_reply, frame.indices)
            body = events_body(seq, frame.packed)
            futures.append(await self.send_raw(body, seq, on_ack, retry_internal=True))
            if len(futures) >= 4 * self.max_in_flight:
                # Forget answered frames so a huge import keeps a bounded list.
                self._raise_lost(futures)
                futures[:] = [f for f in futures if not f.done()]
        tracker.advance(len(refused) - reported)
        tracker.result.rejected.extend(refused)

    @staticmethod
    def _raise_lost(futures: list[asyncio.Future[Any]]) -> None:
        # Server errors are collected by the tracker; anything else means the
        # connection is gone for good.
        for future in futures:
            if future.done() and not future.cancelled():
                exc = future.exception()
                if exc is not None and not isinstance(exc, CairnServerError):
                    raise exc

    # ----------------------------------------------------------- plumbing

    def _check_usable(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise CairnConnectionError("client closed")
        if not self._connected_once:
            raise CairnConnectionError("not connected: call connect() first")

    async def _open(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout
        )
        try:
            welcome = await asyncio.wait_for(self._handshake(reader, writer), self.connect_timeout)
        except BaseException:
            writer.close()
            raise
        self.max_frame = int(welcome.get("max_frame") or DEFAULT_MAX_FRAME)
        self.max_batch = int(welcome.get("max_batch") or DEFAULT_MAX_BATCH)
        self.server = welcome.get("server")
        self._generation += 1
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read_loop(reader, self._generation))

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> dict[str, Any]:
        hello: dict[str, Any] = {"op": "hello", "version": PROTOCOL_VERSION, "client": self.name}
        if self.token is not None:
            hello["token"] = self.token
        writer.write(encode(hello))
        await writer.drain()
        body = await read_frame(reader, _MAX_REPLY)
        if body is None:
            raise CairnConnectionError("server closed the connection during the handshake")
        reply = decode(body)
        if not isinstance(reply, dict):
            raise CairnProtocolError(f"handshake answer is not a map: {reply!r}")
        if reply.get("op") == "error":
            raise CairnServerError.from_reply(reply)
        if reply.get("op") != "welcome":
            raise CairnProtocolError(f"expected welcome, got {reply.get('op')!r}")
        return reply

    def _write(self, pending: _Pending) -> None:
        assert self._writer is not None
        self._writer.write(pending.data)
        pending.generation = self._generation

    async def _drain(self) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the reader task sees the loss too and starts the reconnect

    async def _read_loop(self, reader: asyncio.StreamReader, generation: int) -> None:
        reason: object = "server closed the connection"
        try:
            while True:
                body = await read_frame(reader, _MAX_REPLY)
                if body is None:
                    break
                self._dispatch(decode(body), time.perf_counter_ns())
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.IncompleteReadError, FrameTooLarge, ValueError, CairnProtocolError) as exc:
            reason = exc
        self._connection_lost(generation, reason)

    def _dispatch(self, reply: Any, t_ns: int) -> None:
        if not isinstance(reply, dict):
            raise CairnProtocolError(f"answer is not a map: {reply!r}")
        seq = reply.get("seq")
        if reply.get("op") == "error" and seq is None:
            self._on_connection_error(reply)
            return
        pending = self._pending.get(seq)
        if pending is None:
            log.debug("answer for unknown seq %r ignored", seq)
            return
        if reply.get("op") == "error" and self._retried(pending, reply):
            return
        self._settle(pending, reply, t_ns)

    def _retried(self, pending: _Pending, reply: dict[str, Any]) -> bool:
        """Keep a frame whose error answer calls for a resend; False if the error is final."""
        code = reply.get("code")
        if code == "shutting_down":
            # Not committed: the next connection resends it.
            pending.generation = _UNWRITTEN
            self._stop_writing()
            return True
        if code == "internal" and pending.retry_internal and pending.resends < self.reconnect_attempts:
            # A shard failed and part of the frame may be committed: resending is
            # safe (dedup by id), though this frame then lands after later ones.
            pending.resends += 1
            pending.generation = _UNWRITTEN
            asyncio.get_running_loop().call_later(_backoff(pending.resends - 1), self._rewrite, pending)
            return True
        return False

    def _rewrite(self, pending: _Pending) -> None:
        # A reconnect since the error has resent it already, or will.
        if self._pending.get(pending.seq) is pending and pending.generation == _UNWRITTEN and self._may_write():
            self._write(pending)

    def _may_write(self) -> bool:
        return self._writer is not None and self._generation not in (self._resending, self._draining)

    def _stop_writing(self) -> None:
        # The server finishes (and acks) what it accepted, then closes; frames sent
        # from now on wait for the reconnect.
        self._draining = self._generation

    def _settle(self, pending: _Pending, reply: dict[str, Any], t_ns: int) -> None:
        del self._pending[pending.seq]
        self._slots.release()
        if pending.on_ack is not None:
            try:
                pending.on_ack(pending.seq, reply, t_ns)
            except Exception:  # a faulty callback must not kill the reader task
                log.exception("on_ack callback failed for seq %s", pending.seq)
        if pending.future.done():
            return
        if reply.get("op") == "error":
            pending.future.set_exception(CairnServerError.from_reply(reply, pending.seq))
        else:
            pending.future.set_result(reply)

    def _on_connection_error(self, reply: dict[str, Any]) -> None:
        self.last_error = reply
        code = str(reply.get("code"))
        if code in _FATAL_CODES:
            self._fail_all(CairnServerError.from_reply(reply))
            self._drop_writer()
        elif code == "shutting_down":
            self._stop_writing()
        else:
            # The server closes after such errors; do not wait for it to do so.
            self._connection_lost(self._generation, f"server error {code}: {reply.get('message')}")

    def _connection_lost(self, generation: int, reason: object) -> None:
        if self._closed or self._fatal is not None or generation != self._generation:
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            return
        log.warning("connection to %s:%s lost (%s); reconnecting", self.host, self.port, reason)
        self._drop_writer()
        self._reconnect_task = asyncio.create_task(self._reconnect(reason))

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        self._generation += 1  # answers from the old connection no longer count
        if writer is not None:
            writer.close()
        task, self._reader_task = self._reader_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _reconnect(self, reason: object) -> None:
        for attempt in range(self.reconnect_attempts):
            await asyncio.sleep(_backoff(attempt))
            if self._closed:
                return
            try:
                await self._open()
            except CairnServerError as exc:
                self._fail_all(exc)
                return
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, CairnError, ValueError) as exc:
                reason = exc
                continue
            self._reconnect_task = None
            await self._resend(self._generation)
            return
        self._fail_all(CairnConnectionError(f"gave up after {self.reconnect_attempts} reconnect attempts: {reason!r}"))

    async def _resend(self, generation: int) -> None:
        """Write every frame not yet written on this connection, oldest first."""
        self._resending = generation
        try:
            while self._generation == generation and not self._closed:
                stale = [p for p in self._pending.values() if p.generation != generation]
                if not stale:
                    return
                for pending in stale:
                    if self._generation != generation or pending.seq not in self._pending:
                        continue
                    if pending.generation >= 0:
                        pending.resends += 1
                    if pending.resends > self.reconnect_attempts:
                        # A frame that keeps killing the connection would loop forever.
                        self._fail_one(pending, CairnConnectionError(f"frame seq {pending.seq} resent too often"))
                        continue
                    self._write(pending)
                    await self._drain()
        finally:
            if self._resending == generation:
                self._resending = None

    def _fail_one(self, pending: _Pending, exc: BaseException) -> None:
        if self._pending.pop(pending.seq, None) is not None:
            self._slots.release()
        if not pending.future.done():
            pending.future.set_exception(exc)

    def _fail_all(self, exc: BaseException) -> None:
        if not self._closed:
            self._fatal = exc
        for pending in list(self._pending.values()):
            self._fail_one(pending, exc)


# -------------------------------------------------------------- sync client


class Client:
    """Synchronous producer client: an ``AsyncClient`` on a private background loop.

    Takes the same arguments as ``AsyncClient`` and connects at once (raising
    ``CairnServerError`` or ``CairnConnectionError``), so a failure shows where the
    client is made. Use as a context manager, or call ``close``. ``progress``
    callbacks run on the background thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cairn-client", daemon=True)
        self._thread.start()
        # Built on the loop's thread so every asyncio object belongs to that loop.
        self._client: AsyncClient = self._run(_make_client(host, port, options))
        try:
            self.connect()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def max_frame(self) -> int:
        """``max_frame`` announced by the server."""
        return self._client.max_frame

    @property
    def max_batch(self) -> int:
        """``max_batch`` announced by the server."""
        return self._client.max_batch

    def connect(self) -> None:
        """Connect and handshake if not done yet (see ``AsyncClient.connect``)."""
        self._run(self._client.connect())

    def send(self, events: Iterable[dict[str, Any]], progress: Callable[[int], None] | None = None) -> SendResult:
        """Send events and wait for all acks (see ``AsyncClient.send``)."""
        return self._run(self._client.send(events, progress))

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One admin round trip (see ``AsyncClient.request``)."""
        return self._run(self._client.request(op, **fields))

    def member(self, contact: str) -> dict[str, Any] | None:
        """A contact as a loyalty member, with its ledger (see ``AsyncClient.member``)."""
        return self._run(self._client.member(contact))

    def simulate(self, definitions: str, from_ms: int, name: str = "<rules>", limit: int = 50) -> dict[str, Any]:
        """A candidate loyalty rule set against the live one (see ``AsyncClient.simulate``)."""
        return self._run(self._client.simulate(definitions, from_ms, name, limit))

    def explain(self, contact: str, program: str | None = None) -> list[dict[str, Any]]:
        """A contact's paths through its programs, with reasons (see ``AsyncClient.explain``)."""
        return self._run(self._client.explain(contact, program))

    def close(self) -> None:
        """Close the connection and stop the background loop."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def _run(self, coro: Awaitable[_T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]


async def _make_client(host: str, port: int, options: dict[str, Any]) -> AsyncClient:
    return AsyncClient(host, port, **options)
