"""Cairn: a real-time customer interactions engine.

Producers send events over the wire protocol with :class:`Client` (sync) or
:class:`AsyncClient` (asyncio). :class:`Engine` runs an embedded engine (Ray shard
actors, LMDB state, the Rust core); ``cairn serve`` runs one from the command line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "Engine", "EngineConfig", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily: a producer using the client should not pay for importing Ray.
    if name in ("Client", "AsyncClient"):
        from cairn import client

        return getattr(client, name)
    if name in ("Engine", "EngineConfig"):
        from cairn import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'cairn' has no attribute {name!r}")
