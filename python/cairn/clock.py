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


class ManualClock:
    """A clock that moves only when told (``cairn serve --clock manual``, tests):
    "wait 3 days" passes in one ``advance``."""

    def __init__(self, start_ms: int | None = None) -> None:
        self.now_ms = wall_clock() if start_ms is None else start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        """Move forward by ``ms`` (never backwards); returns the new now."""
        if ms < 0:
            raise ValueError(f"a clock only moves forward; got {ms} ms")
        self.now_ms += ms
        return self.now_ms


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def parse_duration_ms(text: str) -> int:
    """``"3d"``, ``"12h"``, ``"90s"``, ``"1d12h"`` or a plain number of ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text:
        raise ValueError("an empty duration; write e.g. 90s, 30m, 12h, 3d or 1d12h")
    total, number = 0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit():
            number += c
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else c
        if not number or unit not in _UNITS_MS:
            raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 30m, 12h, 3d or 1d12h")
        total += int(number) * _UNITS_MS[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"{text!r} is not a duration: {number!r} has no unit (ms, s, m, h, d, w)")
    return total
