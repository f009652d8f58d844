"""The interface every channel adapter implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable
from collections.abc import Awaitable, Mapping


class Adapter(Protocol):
    """Delivers rendered effects over one transport.

    ``send`` raises :class:`~cairn.channels.errors.PermanentError` or
    :class:`~cairn.channels.errors.TemporaryError`; any other exception is a bug
    and is treated as temporary by the dispatcher.
    """

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """Deliver one effect whose message fields are already rendered."""
        ...

    async def flush(self) -> None:
        """Make the sends of the current batch durable (called before settling)."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class BatchingAdapter(Adapter, Protocol):
    """An adapter that holds effects back to send them in batches (ads audiences).

    The dispatcher calls :meth:`submit` instead of ``send`` and awaits the result
    outside its concurrency slots and its pass, settling the effect only once
    the batch holding it was delivered.  ``close`` must deliver what is buffered.
    """

    @property
    def max_delay_s(self) -> float:
        """Longest a submitted effect may wait for its batch to start.

        The dispatcher adds it to its send timeout.
        """
        ...

    def submit(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> Awaitable[None]:
        """Buffer the effect now; the result completes when its batch was delivered.

        Cancelling the result before its batch is taken withdraws the effect.
        """
        ...
