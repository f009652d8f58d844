"""Shared by the benchmarks: applying a batch as a running shard does, with its
contacts' states held decoded. The held-state benchmarks take `bench_held` as a
fixture; the profilers (`profile_*.py`) import `timed_rounds` from here.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from cairn import _core

#: timed rounds of the held-state benchmarks (each needs an untimed warm-up)
ROUNDS = 10


def held_states(stored: Sequence[tuple[bytes, bytes]]) -> _core.States:
    """Every stored state decoded and held, as a shard holds its contacts'."""
    held = _core.States(max(len(stored), 1))
    held.load(stored)
    return held


@pytest.fixture
def bench_held(benchmark: Any) -> Callable[..., _core.BatchResult]:
    """`bench_held(catalog, part, stored, now_ms)` times decoding and applying `part`
    against held states; each round starts from the stored states again (the
    warm-up is not timed)."""

    def bench(catalog: _core.Catalog, part: bytes, stored: Sequence[tuple[bytes, bytes]],
              now_ms: int) -> _core.BatchResult:
        def run(held: _core.States) -> _core.BatchResult:
            return catalog.apply(_core.Batch([part]), [], [], now_ms, 1, held)

        return benchmark.pedantic(run, setup=lambda: ((held_states(stored),), {}), rounds=ROUNDS, iterations=1)

    return bench


def timed_rounds(catalog: _core.Catalog, part: bytes, stored: Sequence[tuple[bytes, bytes]], now_ms: int,
                 rounds: int, held: bool) -> tuple[float, _core.BatchResult]:
    """Seconds spent decoding and applying `part` `rounds` times (states held
    beforehand, untimed, when `held`), and the last result."""
    elapsed = 0.0
    result = None
    for _ in range(rounds):
        states = held_states(stored) if held else None
        start = time.perf_counter()
        result = catalog.apply(_core.Batch([part]), [] if held else stored, [], now_ms, 1, states)
        elapsed += time.perf_counter() - start
    assert result is not None
    return elapsed, result


class _EnabledOptions:
    """A benchmark fixture's view of pytest options, benchmarks enabled: lets a
    profiler build a benchmark's full-size world outside pytest."""

    class config:  # noqa: N801 - mimics request.config
        @staticmethod
        def getoption(name: str) -> bool:
            return name == "benchmark_enable"


def profiled_world(world: Any, cache: Path) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The (batch part, stored states) of a benchmark's `world` fixture at full
    size, cached in `cache` (building it takes minutes)."""
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    _, part, stored, *_ = world.__wrapped__(_EnabledOptions())
    cache.write_bytes(pickle.dumps((part, stored)))
    return part, stored


def profile_args() -> tuple[int, bool]:
    """(rounds, --held) from a profiler's command line."""
    args = [a for a in sys.argv[1:] if a != "--held"]
    return (int(args[0]) if args else 10), "--held" in sys.argv
