"""Starting Ray for Cairn: one place for the settings every Cairn driver uses.

The gateway sends each shard its batches as actor call arguments (a few hundred
KB: up to ``batch_events`` events of ~110 bytes). Ray puts arguments above
``max_direct_call_object_size`` (100 KB by default) into its shared-memory object
store, which costs a put, a raylet round trip and a release per call; below it they
travel inline in the call itself. Inline was 10-15% more events/s end to end
(docs/benchmarks.md), so Cairn raises the limit in the driver, whose core worker is
the one that decides, unless the operator set it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

#: Arguments up to this size travel inline in an actor call (``RAY_max_direct_call_object_size``).
INLINE_ARGS_BYTES = 16 << 20


def start_ray(**kwargs: Any) -> None:
    """``ray.init`` with Cairn's settings: quiet, no dashboard, and batches inline in
    actor calls. Keyword arguments go to ``ray.init`` (e.g. ``num_cpus``, ``address``
    to join a running cluster)."""
    os.environ.setdefault("RAY_max_direct_call_object_size", str(INLINE_ARGS_BYTES))
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    ray.init(**{**options, **kwargs})
