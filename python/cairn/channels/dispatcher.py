"""The dispatcher: drains shard outboxes, renders, sends, retries, dead-letters.

Each pass asks every :class:`OutboxSource` for its due effects, delivers them
concurrently (bounded), makes file sinks durable, then settles the batch so the
source can delete, reschedule or dead-letter each key.  Delivery is
at-least-once: a crash between sending and settling resends, which receivers
can drop thanks to the stable effect id.

Effects of a :class:`~.adapter.BatchingAdapter` (ads audiences) are the
exception: they are buffered during the pass and settled later, by a background
task, once their batch was delivered; meanwhile the dispatcher keeps their keys
"in flight" and skips them when a source offers them again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable, Sequence

import msgpack

from .adapter import Adapter, BatchingAdapter
from .backoff import retry_at
from .config import ChannelConfig
from .errors import PermanentError, TemporaryError
from .kinds import effect_kind, render_effect
from .outbox import DueItem, FailedItem, OutboxSource
from .registry import AdapterRegistry

log = logging.getLogger("cairn.channels")

UNKNOWN_CHANNEL = "unknown"


def wall_clock_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


@dataclass
class _Outcome:
    """Result of one delivery attempt, before it is settled."""

    key: bytes
    effect_id: str
    channel: str
    attempts: int
    adapter: Adapter | None = None
    error: str | None = None
    permanent: bool = False
    #: Set while a batching adapter holds the effect; yields this outcome when done.
    waiting: asyncio.Future[_Outcome] | None = None

    def fail(self, message: str, permanent: bool) -> _Outcome:
        self.error, self.permanent, self.adapter = message, permanent, None
        return self


class _Lane:
    """One source and the keys it handed out that are not settled yet."""

    def __init__(self, source: OutboxSource) -> None:
        self.source = source
        self.in_flight: set[bytes] = set()
        # Held around ``due`` + filtering and around ``settle``: a background settle
        # landing in between would let a just-settled effect through as new.
        self.lock = asyncio.Lock()


def _decode(raw: bytes) -> dict[str, Any]:
    effect = msgpack.unpackb(raw, raw=False)
    if not isinstance(effect, dict):
        raise ValueError(f"effect is a {type(effect).__name__}, not a map")
    return effect


class Dispatcher:
    """Delivers effects from shard outboxes through the configured channel adapters.

    ``stats`` maps each effect channel (``"email"``, ``"sms"``, ``"ads"``,
    ``"webhook"``...) to counters
    ``{"sent", "retried", "dead"}``; ``last_error`` keeps the latest error text
    per channel.  Both are meant for ``cairn status``.
    """

    def __init__(
        self,
        sources: Sequence[OutboxSource],
        config: ChannelConfig,
        data_dir: Path,
        clock: Callable[[], int] = wall_clock_ms,
        *,
        batch_size: int = 256,
        concurrency: int = 32,
        idle_sleep_s: float = 0.05,
        send_timeout_s: float = 120.0,
    ) -> None:
        self.sources = list(sources)
        self.config = config
        self.clock = clock
        self.batch_size = batch_size
        self.idle_sleep_s = idle_sleep_s
        self.send_timeout_s = send_timeout_s
        self.stats: dict[str, dict[str, int]] = {}
        self.last_error: dict[str, str] = {}
        self._registry = AdapterRegistry(config, Path(data_dir))
        self._slots = asyncio.Semaphore(concurrency)
        self._lanes = [_Lane(source) for source in self.sources]
        self._settling: set[asyncio.Task[None]] = set()

    # --- loop -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Drain all sources until ``stop`` is set; source errors are logged, not raised."""
        while not stop.is_set():
            handled = 0
            for lane in self._lanes:
                try:
                    handled += await self._drain_source(lane)
                except Exception:  # noqa: BLE001 - a restarting shard must not stop the others
                    log.exception("draining outbox %r failed", lane.source)
            # When work was found there may be more: only yield to the loop.
            await self._pause(stop, 0 if handled else self.idle_sleep_s)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def drain_once(self) -> int:
        """One pass over every source; returns how many effects were handled.

        Effects held by a batching adapter are settled later: see :meth:`settled`.
        """
        handled = 0
        for lane in self._lanes:
            handled += await self._drain_source(lane)
        return handled

    async def settled(self) -> None:
        """Wait until every effect held by a batching adapter has been settled."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)

    async def close(self) -> None:
        """Close all adapters (SMTP connections, HTTP pools, files).

        Batching adapters deliver what they buffered while closing; those effects
        are settled before this returns, so sources must still be usable.
        """
        await self._registry.close()
        await self.settled()

    # --- one batch --------------------------------------------------------------

    async def _drain_source(self, lane: _Lane) -> int:
        async with lane.lock:
            # A source may offer unsettled effects again (the engine's outbox does):
            # ask for that many more and skip them, so new effects are not starved.
            due = await lane.source.due(self.batch_size + len(lane.in_flight), self.clock())
            due = [item for item in due if item[0] not in lane.in_flight]
            lane.in_flight.update(key for key, _, _ in due)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(item) for item in due))
        waiting = [o for o in outcomes if o.waiting is not None]
        if waiting:
            self._settle_later(lane, waiting)
        await self._settle(lane, [o for o in outcomes if o.waiting is None])
        return len(due)

    async def _settle(self, lane: _Lane, outcomes: Sequence[_Outcome]) -> None:
        """Flush the adapters involved, then settle ``outcomes`` with the source."""
        if not outcomes:
            return
        await self._flush(outcomes)
        now = self.clock()
        sent, failed = self._settlement(outcomes, now)
        async with lane.lock:
            try:
                await lane.source.settle(sent, failed, now)
            finally:
                # Even if settling failed: the source offers them again and they are resent.
                lane.in_flight.difference_update(o.key for o in outcomes)
        self._count(outcomes, failed)

    def _settle_later(self, lane: _Lane, outcomes: Sequence[_Outcome]) -> None:
        waiting = [o.waiting for o in outcomes if o.waiting is not None]
        task = asyncio.ensure_future(self._settle_when_done(lane, waiting))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_when_done(self, lane: _Lane, waiting: list[asyncio.Future[_Outcome]]) -> None:
        """Settle batched effects as their batches complete, one settle call per wake-up."""
        pending: set[asyncio.Future[_Outcome]] = set(waiting)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            try:
                # In outbox order (``done`` is a set), so settles are reproducible.
                await self._settle(lane, [future.result() for future in waiting if future in done])
            except Exception:  # noqa: BLE001 - the effects stay in the outbox and are resent
                log.exception("settling batched effects with %r failed", lane.source)

    async def _deliver(self, item: DueItem) -> _Outcome:
        key, raw, attempts = item
        outcome = _Outcome(key=key, effect_id=key.hex(), channel=UNKNOWN_CHANNEL, attempts=attempts)
        try:
            effect = _decode(raw)
        except Exception as err:  # noqa: BLE001 - any decode failure is permanent
            return outcome.fail(f"undecodable effect: {err}", permanent=True)
        outcome.effect_id = str(effect.get("id") or outcome.effect_id)
        outcome.channel = str(effect.get("channel") or UNKNOWN_CHANNEL)
        async with self._slots:
            return await self._send(effect, outcome)

    async def _send(self, effect: dict[str, Any], outcome: _Outcome) -> _Outcome:
        try:
            kind = effect_kind(effect)
            rendered = render_effect(effect, kind)
            adapter = self._registry.adapter_for(effect.get("channel"), kind)
            if not isinstance(adapter, BatchingAdapter):
                return await self._attempt(adapter.send(effect, rendered), adapter, outcome, self.send_timeout_s)
            waiter = adapter.submit(effect, rendered)
        except Exception as err:  # noqa: BLE001 - classified by _failed
            return self._failed(err, outcome)
        # The batch is awaited outside the concurrency slot and this pass, which
        # would otherwise stall every channel (and batching itself) for the delay.
        timeout = self.send_timeout_s + adapter.max_delay_s
        outcome.waiting = asyncio.ensure_future(self._attempt(waiter, adapter, outcome, timeout))
        return outcome

    async def _attempt(self, sending: Awaitable[None], adapter: Adapter, outcome: _Outcome,
                       timeout: float) -> _Outcome:
        """Await one send; the outcome records success or the classified failure."""
        try:
            await asyncio.wait_for(sending, timeout)
        except asyncio.TimeoutError:
            return outcome.fail(f"send timed out after {timeout}s", permanent=False)
        except Exception as err:  # noqa: BLE001 - classified by _failed
            return self._failed(err, outcome)
        outcome.adapter = adapter
        return outcome

    def _failed(self, err: Exception, outcome: _Outcome) -> _Outcome:
        if isinstance(err, PermanentError):
            return outcome.fail(str(err), permanent=True)
        if isinstance(err, TemporaryError):
            return outcome.fail(str(err), permanent=False)
        # Adapter bug: retry rather than lose the effect.
        log.error("channel %s: unexpected error sending %s", outcome.channel, outcome.effect_id, exc_info=err)
        return outcome.fail(f"{type(err).__name__}: {err}", permanent=False)

    async def _flush(self, outcomes: Sequence[_Outcome]) -> None:
        """Make sent effects durable before settling; a failed flush means not sent."""
        adapters = {id(o.adapter): o.adapter for o in outcomes if o.adapter is not None}
        for adapter_id, adapter in adapters.items():
            try:
                await adapter.flush()
            except Exception as err:  # noqa: BLE001 - e.g. disk full on fsync
                for o in outcomes:
                    if id(o.adapter) == adapter_id:
                        o.fail(f"flush failed: {err}", permanent=False)

    def _settlement(self, outcomes: Sequence[_Outcome], now: int) -> tuple[list[bytes], list[FailedItem]]:
        sent = [o.key for o in outcomes if o.error is None]
        failed: list[FailedItem] = []
        for o in outcomes:
            if o.error is not None:
                when = retry_at(self.config.retry, o.effect_id, o.attempts, now, o.permanent)
                failed.append((o.key, o.error, when))
        return sent, failed

    def _count(self, outcomes: Sequence[_Outcome], failed: Sequence[FailedItem]) -> None:
        retry_by_key = {key: when for key, _, when in failed}
        for o in outcomes:
            counters = self.stats.setdefault(o.channel, {"sent": 0, "retried": 0, "dead": 0})
            if o.error is None:
                counters["sent"] += 1
                continue
            self.last_error[o.channel] = o.error
            counters["dead" if retry_by_key[o.key] is None else "retried"] += 1
            if retry_by_key[o.key] is None:
                log.warning("channel %s: dead-lettered %s: %s", o.channel, o.effect_id, o.error)
