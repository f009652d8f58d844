"""Time for the engine: one injectable source of ``now`` in milliseconds.

The core never reads a clock; the engine reads this one and passes ``now_ms`` into
every call, so a test (or a replay) can give the engine a clock of its own.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> int: ...


def wall_clock() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000
