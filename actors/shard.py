"""The Ray actor that owns one contact shard.

A plain class over ``ShardStore``; ``ray.remote`` is applied in one factory
(``shard_actor_class``) so the options live in one place. Ray runs an actor's calls
from one caller in submission order and, with the default concurrency of one, one at a
time: that is what gives per-contact ordering and LMDB's single writer.
"""

from __future__ import annotations

import gc
import uuid
from typing import Any

import ray

from actors.store import DEFAULT_HELD_STATES, ShardStore, Submitted
from cairn.lanes import Report


class ShardActor:
    """Holds one shard's journey and loyalty state in LMDB and applies batches."""

    def __init__(self, index: int, path: str, fsync: bool = True, map_size: int = 64 << 30,
                 held_states: int = DEFAULT_HELD_STATES, pipelined: bool = True) -> None:
        # Set when each batch held all its row tuples at once (tens of thousands),
        # which the default cyclic-GC threshold (700 allocations) scanned dozens of
        # times per batch for cycles they cannot form. Rows now reach putmulti one
        # tuple at a time (cairn._core.Rows), and a store batch measures the same
        # instructions with either threshold; the larger one stays for the actor's
        # other bulk lists (getmulti results, due effects).
        gc.set_threshold(100_000, 20, 20)
        self.index = index
        # Batch numbers restart with each actor process (Ray restarts a dead shard):
        # callers match a report to the batches they sent to this instance.
        self.instance = uuid.uuid4().hex[:12]
        self.store = ShardStore(path, map_size=map_size, fsync=fsync, held_states=held_states)
        # Off: each batch is committed before `apply` answers (no overlap of a
        # commit with the next batch's core).
        self.pipelined = pipelined

    def ready(self) -> int:
        """Return the definitions version once the store is open."""
        return self.store.catalog.version

    def install(self, doc: bytes, version: int) -> int:
        self.store.install(doc, version)
        return version

    def apply(self, parts: list[bytes], now_ms: int) -> Report:
        """Compute a batch and queue its commit (pipelined; ``ShardStore.submit``)."""
        return self._report(self.store.submit(parts, now_ms, wait=not self.pipelined))

    def sync(self) -> Report:
        """Wait for every queued commit and report the outcomes."""
        return self._report(self.store.sync())

    def _report(self, s: Submitted) -> Report:
        return (self.instance, s.number, s.counts, s.durable, s.failures)

    def fire_due(self, now_ms: int, limit: int) -> int:
        return self.store.fire_due(now_ms, limit)

    def history(self, contact: str) -> list[dict[str, Any]]:
        return self.store.history(contact)

    def positions(self) -> tuple[list[tuple[str, int, str, int]], dict[str, list[int]]]:
        return self.store.positions()

    def segment_page(self, name: str, now_ms: int, after: bytes, limit: int) -> tuple[list[str], bytes | None, int]:
        return self.store.segment_page(name, now_ms, after, limit)

    def attributes(self, event_type: str) -> list[tuple[str, str, int]]:
        return self.store.attributes(event_type)

    def event_types(self) -> list[str]:
        return self.store.event_types()

    def outbox_due(self, limit: int, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        return self.store.outbox_due(limit, now_ms)

    def outbox_settle(self, sent: list[bytes], failed: list[tuple[bytes, str, int | None]], now_ms: int) -> None:
        self.store.outbox_settle(sent, failed, now_ms)

    def contact(self, contact: str, last: int = 20) -> dict[str, Any] | None:
        return self.store.contact(contact, last)

    def member(self, contact: str) -> dict[str, Any] | None:
        return self.store.member(contact)

    def simulate(self, candidate: bytes, from_ms: int, until_ms: int) -> dict[str, Any]:
        return self.store.simulate(candidate, from_ms, until_ms)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.dead_letters(limit)

    def status(self) -> dict[str, Any]:
        return {"shard": self.index, **self.store.status()}

    def close(self) -> None:
        self.store.close()


def shard_actor_class(num_cpus: float) -> Any:
    """The Ray actor class for shards, with the engine's resource options."""
    # A dead shard actor is restarted (its __init__ reopens the same LMDB folder, where
    # everything committed is). Calls are not retried by Ray: the batch in flight at
    # the death fails its frames with `internal`, and the producer resends them; a
    # batch that had committed is then recognised as duplicates.
    return ray.remote(num_cpus=num_cpus, max_restarts=-1, max_task_retries=0)(ShardActor)
