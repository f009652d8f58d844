"""Per-shard batching between the gateway and the shard actors.

Each shard has one ``ShardLane``. Connections hand it the shard's slice of every
event frame; the lane packs slices into one actor call when it holds ``batch_events``
events or when the oldest slice has waited ``linger_ms``, whichever comes first. At
most ``max_in_flight`` calls per shard run at once, and a lane holding more than
``max_queued`` events makes ``submit`` wait: that pause propagates to the socket as
TCP backpressure. Ray runs one caller's calls to an actor in order, so events of one
contact are applied in the order they arrived.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.ticket import Ticket

#: Sends one batch to a shard: (parts, now_ms) -> [(accepted, duplicates)] per part.
ApplyFn = Callable[[list[bytes], int], Awaitable[list[tuple[int, int]]]]


@dataclass
class _Slice:
    body: bytes
    count: int
    ticket: Ticket


@dataclass
class ShardLane:
    """Batches slices for one shard and keeps its calls in order."""

    apply: ApplyFn
    clock: Callable[[], int]
    batch_events: int = 4000
    linger_ms: float = 2.0
    max_in_flight: int = 2
    max_queued: int = 40_000
    _pending: deque[_Slice] = field(default_factory=deque)
    _pending_events: int = 0
    _in_flight: int = 0
    _timer: asyncio.TimerHandle | None = None
    _room: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    batches: int = 0
    events: int = 0

    async def submit(self, body: bytes, count: int, ticket: Ticket) -> None:
        """Queue one frame's slice for this shard; waits while the lane is full."""
        async with self._room:
            await self._room.wait_for(lambda: self._pending_events < self.max_queued)
        self._pending.append(_Slice(body, count, ticket))
        self._pending_events += count
        if self._pending_events >= self.batch_events:
            self._maybe_flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.linger_ms / 1000, self._on_linger)

    def _on_linger(self) -> None:
        self._timer = None
        self._maybe_flush(force=True)

    def _maybe_flush(self, force: bool = False) -> None:
        while self._pending and self._in_flight < self.max_in_flight:
            if not force and self._pending_events < self.batch_events:
                break
            self._start_call(self._take())

    def _take(self) -> list[_Slice]:
        taken: list[_Slice] = []
        n = 0
        while self._pending and (not taken or n + self._pending[0].count <= self.batch_events):
            s = self._pending.popleft()
            taken.append(s)
            n += s.count
        self._pending_events -= n
        return taken

    def _start_call(self, slices: list[_Slice]) -> None:
        self._in_flight += 1
        task = asyncio.ensure_future(self._call(slices))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, slices: list[_Slice]) -> None:
        try:
            results = await self.apply([s.body for s in slices], self.clock())
        except Exception as exc:  # the shard failed: nothing of this batch is acked
            for s in slices:
                s.ticket.fail(f"shard call failed: {type(exc).__name__}: {exc}")
        else:
            for s, (accepted, duplicates) in zip(slices, results):
                s.ticket.part_done(accepted, duplicates)
            self.batches += 1
            self.events += sum(s.count for s in slices)
        finally:
            self._in_flight -= 1
            async with self._room:
                self._room.notify_all()
            # Anything that queued while this call ran goes next, full or not:
            # it has already waited at least one call's time.
            self._maybe_flush(force=True)

    async def drain(self) -> None:
        """Wait until everything submitted so far has been applied."""
        while self._pending or self._in_flight:
            self._maybe_flush(force=True)
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            else:
                await asyncio.sleep(0.001)
