"""The manual clock and the durations `cairn clock advance` reads."""

from __future__ import annotations

import pytest

from cairn.clock import ManualClock, parse_duration_ms


@pytest.mark.parametrize(("text", "ms"), [("90s", 90_000), ("30m", 1_800_000), ("12h", 43_200_000),
                                          ("3d", 259_200_000), ("1d12h", 129_600_000), ("2w", 1_209_600_000),
                                          ("500ms", 500), ("1500", 1500)])
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "d", "3x", "1d2", "-1d", "1.5h"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="duration|no unit"):
        parse_duration_ms(text)


def test_manual_clock_moves_only_forward():
    clock = ManualClock(1_000)
    assert clock() == 1_000
    assert clock.advance(500) == 1_500 == clock()
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
