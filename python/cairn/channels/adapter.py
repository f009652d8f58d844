"""The interface every channel adapter implements."""

from __future__ import annotations

from typing import Any, Protocol
from collections.abc import Mapping


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
