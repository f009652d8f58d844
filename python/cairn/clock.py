"""Time for the engine: one injectable source of ``now`` in milliseconds.

The core never reads a clock; the engine reads this one and passes ``now_ms`` into
every call, so tests (and ``cairn serve --clock manual``) can drive time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> int: ...


def wall_clock() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (tests, replays)."""

    def __init__(self, start_ms: int | None = None) -> None:
        self.now_ms = wall_clock() if start_ms is None else start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        self.now_ms += ms
        return self.now_ms
