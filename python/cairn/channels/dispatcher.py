"""The dispatcher: drains shard outboxes, renders, sends, retries, dead-letters.

Each pass asks every :class:`OutboxSource` for its due effects, delivers them
concurrently (bounded), makes file sinks durable, then settles the batch so the
source can delete, reschedule or dead-letter each key.  Delivery is
at-least-once: a crash between sending and settling resends, which receivers
can drop thanks to the stable effect id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import msgpack

from .adapter import Adapter
from .backoff import retry_at
from .config import ChannelConfig
from .errors import PermanentError, TemporaryError
from .outbox import DueItem, FailedItem, OutboxSource
from .registry import AdapterRegistry
from .templates import render_message

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

    def fail(self, message: str, permanent: bool) -> _Outcome:
        self.error, self.permanent, self.adapter = message, permanent, None
        return self


def _decode(raw: bytes) -> dict[str, Any]:
    effect = msgpack.unpackb(raw, raw=False)
    if not isinstance(effect, dict):
        raise ValueError(f"effect is a {type(effect).__name__}, not a map")
    return effect


class Dispatcher:
    """Delivers effects from shard outboxes through the configured channel adapters.

    ``stats`` maps each effect channel (``"email"``, ``"sms"``...) to counters
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

    # --- loop -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Drain all sources until ``stop`` is set; source errors are logged, not raised."""
        while not stop.is_set():
            handled = 0
            for source in self.sources:
                try:
                    handled += await self._drain_source(source)
                except Exception:  # noqa: BLE001 - a restarting shard must not stop the others
                    log.exception("draining outbox %r failed", source)
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
        """One pass over every source; returns how many effects were handled."""
        handled = 0
        for source in self.sources:
            handled += await self._drain_source(source)
        return handled

    async def close(self) -> None:
        """Close all adapters (SMTP connections, HTTP pools, files)."""
        await self._registry.close()

    # --- one batch --------------------------------------------------------------

    async def _drain_source(self, source: OutboxSource) -> int:
        due = await source.due(self.batch_size, self.clock())
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(item) for item in due))
        await self._flush(outcomes)
        now = self.clock()
        sent, failed = self._settlement(outcomes, now)
        await source.settle(sent, failed, now)
        self._count(outcomes, failed)
        return len(due)

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
            rendered = render_message(effect)
            adapter = self._registry.adapter_for(effect.get("channel"))
            await asyncio.wait_for(adapter.send(effect, rendered), self.send_timeout_s)
        except PermanentError as err:
            return outcome.fail(str(err), permanent=True)
        except TemporaryError as err:
            return outcome.fail(str(err), permanent=False)
        except asyncio.TimeoutError:
            return outcome.fail(f"send timed out after {self.send_timeout_s}s", permanent=False)
        except Exception as err:  # noqa: BLE001 - adapter bug: retry rather than lose the effect
            log.exception("channel %s: unexpected error sending %s", outcome.channel, outcome.effect_id)
            return outcome.fail(f"{type(err).__name__}: {err}", permanent=False)
        outcome.adapter = adapter
        return outcome

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
