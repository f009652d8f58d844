"""Per-shard batching between the gateway and the shard actors.

Each shard has one ``ShardLane``. Connections hand it the shard's slice of every
event frame; the lane packs slices into one actor call when it holds ``batch_events``
events or when the oldest slice has waited ``linger_ms``, whichever comes first. At
most ``max_in_flight`` calls per shard run at once, and a lane holding more than
``max_queued`` events makes ``submit`` wait: that pause propagates to the socket as
TCP backpressure. Ray runs one caller's calls to an actor in order, so events of one
contact are applied in the order they arrived.

A shard answers a batch once it has computed it and queued its commit (pipelined
commits, ``ShardStore.submit``); the answer also says which earlier batches are now
durable or failed. The lane acknowledges a batch's slices only once it is durable,
and asks the shard to ``sync`` when it has nothing more to send while batches wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.ticket import Ticket

#: What a shard actor's ``apply`` and ``sync`` answer (``ShardStore.submit``): (actor
#: instance, batch number, (accepted, duplicates) per part, durable through,
#: failures [(number, message)]).
Report = tuple[str, int, list[tuple[int, int]], int, list[tuple[int, str]]]
#: Sends one batch to a shard: (parts, now_ms) -> its report.
ApplyFn = Callable[[list[bytes], int], Awaitable[Report]]
#: Waits for a shard's queued commits: () -> its report (batch number: the last sent).
SyncFn = Callable[[], Awaitable[Report]]


@dataclass
class _Slice:
    body: bytes
    count: int
    ticket: Ticket


@dataclass
class ShardLane:
    """Batches slices for one shard and keeps its calls in order."""

    apply: ApplyFn
    sync: SyncFn
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
    # Batches computed but not yet durable, by shard instance and batch number.
    _awaiting: dict[tuple[str, int], tuple[list[_Slice], list[tuple[int, int]]]] = field(default_factory=dict)
    _syncing: bool = False
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
            report = await self.apply([s.body for s in slices], self.clock())
        except Exception as exc:  # the shard failed: nothing of this batch is acked
            for s in slices:
                s.ticket.fail(f"shard call failed: {type(exc).__name__}: {exc}")
        else:
            instance, number, counts, _, _ = report
            self._awaiting[(instance, number)] = (slices, counts)
            self._settle(report)
        finally:
            self._in_flight -= 1
            async with self._room:
                self._room.notify_all()
            # Anything that queued while this call ran goes next, full or not:
            # it has already waited at least one call's time.
            self._maybe_flush(force=True)
            self._maybe_sync()

    def _settle(self, report: Report) -> None:
        """Ack the batches a shard reports durable, fail those it reports failed."""
        instance, _, _, durable, failures = report
        for number, message in failures:
            waiting = self._awaiting.pop((instance, number), None)
            if waiting is not None:
                for s in waiting[0]:
                    s.ticket.fail(f"shard commit failed: {message}")
        for key in sorted(k for k in self._awaiting if k[0] != instance or k[1] <= durable):
            slices, counts = self._awaiting.pop(key)
            if key[0] != instance:  # sent to a shard process that has since died
                for s in slices:
                    s.ticket.fail("the shard restarted before this batch was known to be committed")
                continue
            for s, (accepted, duplicates) in zip(slices, counts):
                s.ticket.part_done(accepted, duplicates)
            self.batches += 1
            self.events += sum(s.count for s in slices)

    def _maybe_sync(self) -> None:
        """With nothing more to send, ask the shard for the batches still waiting."""
        if self._awaiting and not self._pending and not self._in_flight and not self._syncing:
            self._syncing = True
            task = asyncio.ensure_future(self._sync())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sync(self) -> None:
        try:
            report = await self.sync()
        except Exception as exc:  # the shard died: the waiting batches are not known committed
            for key in list(self._awaiting):
                for s in self._awaiting.pop(key)[0]:
                    s.ticket.fail(f"shard call failed: {type(exc).__name__}: {exc}")
        else:
            self._settle(report)
        finally:
            self._syncing = False
            self._maybe_sync()

    async def drain(self) -> None:
        """Wait until everything submitted so far has been applied."""
        while self._pending or self._in_flight or self._awaiting:
            self._maybe_flush(force=True)
            self._maybe_sync()
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            else:
                await asyncio.sleep(0.001)
