"""Cairn: a real-time customer interactions engine.

Producers send events over the wire protocol with :class:`Client` (sync) or
:class:`AsyncClient` (asyncio). :class:`Engine` runs an embedded engine (Ray shard
actors, LMDB state, the Rust core); ``cairn serve`` runs one from the command line.
"""

from __future__ import annotations

import os
from typing import Any

# The Rust core allocates through mimalloc, which by default asks the kernel for
# transparent huge pages. A shard's short-lived batch buffers then fault in fresh
# 2 MB pages that the kernel zeroes: a quarter of a shard's time in
# benches/profile_shard_disk.py (docs/benchmarks.md). mimalloc reads this when the
# extension loads, which is always after this package's import; set it to 1 to opt in.
os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")

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
