"""The contract between the dispatcher and a shard's durable outbox.

The engine implements :class:`OutboxSource` on top of its LMDB-backed shard
actors; tests use an in-memory stand-in.  Keys are opaque to the dispatcher.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

#: (outbox key, msgpack-encoded effect, delivery attempts made so far)
DueItem = tuple[bytes, bytes, int]
#: (outbox key, error message, retry_at_ms — ``None`` means dead-letter it)
FailedItem = tuple[bytes, str, int | None]


@runtime_checkable
class OutboxSource(Protocol):
    """One shard's outbox, drained by the :class:`~cairn.channels.Dispatcher`."""

    async def due(self, limit: int, now_ms: int) -> list[DueItem]:
        """Return up to ``limit`` effects whose retry time is ``<= now_ms``.

        Items returned here must not be returned again until they are settled,
        so one effect is never sent twice at once.  If ``settle`` never comes
        (dispatcher crashed, settle call failed) the source should offer the
        items again after a lease timeout; receivers dedupe by effect id.
        """
        ...

    async def settle(self, sent: list[bytes], failed: list[FailedItem], now_ms: int) -> None:
        """Record the outcome of a batch returned by :meth:`due`.

        ``sent`` keys are delivered and can be deleted.  Each ``failed`` entry is
        rescheduled for ``retry_at_ms`` with its attempt count incremented, or
        moved to the dead-letter list when ``retry_at_ms`` is ``None``.
        """
        ...
