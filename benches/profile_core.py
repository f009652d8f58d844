"""Apply the foundation benchmark's batch in a loop, for profilers.

    .venv/bin/python benches/profile_core.py [ROUNDS]

Builds the same world as `test_core_apply.py` (100 programs, 100 loyalty rules,
2,000 contacts that already have state), then applies a 10,000-event purchase
batch ROUNDS times and prints events/s, the bytes per event each table is written
(keys and values) and a sample row of each. Under a profiler:

    perf record --call-graph dwarf .venv/bin/python benches/profile_core.py 15
    valgrind --tool=callgrind --toggle-collect='*pymethod_apply*' \\
        .venv/bin/python benches/profile_core.py 1      # instructions, deterministic

The toggle also collects the apply that gives the contacts their state (a
10,000-event batch from empty states, about as costly as the measured one): the
total for ROUNDS=1 covers two batches. One steady batch is the total for ROUNDS=2
minus the total for ROUNDS=1.

The wall clock of this machine is noisy (10-30% between runs); instruction counts
from callgrind are not, so compare builds with them.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import test_core_apply as bench  # noqa: E402

from cairn import _core  # noqa: E402
from cairn.benchdefs import packed_definitions  # noqa: E402


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    catalog = _core.Catalog.compile(packed_definitions(100, 100), 1)
    first = catalog.split_frame(bench._frame(bench.EVENTS), 1, bench.NOW)
    states = catalog.apply(_core.Batch([first.batches[0][1]]), [], [], bench.NOW).states
    second = catalog.split_frame(bench._frame(bench.EVENTS, offset=bench.EVENTS), 1, bench.NOW)
    part = second.batches[0][1]
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for _ in range(rounds):
        result = catalog.apply(_core.Batch([part]), states, [], bench.NOW)
    elapsed = time.perf_counter() - start
    print(f"{bench.EVENTS * rounds / elapsed:,.0f} events/s over {rounds} rounds")
    for name in ("states", "history", "ledger", "outbox"):
        rows = getattr(result, name)
        size = sum(len(k) + len(v) for k, v in rows)
        print(f"{name}: {len(rows)} rows, {size / bench.EVENTS:.0f} bytes/event")
    for name in ("history", "ledger", "outbox", "states"):
        rows = getattr(result, name)
        print(f"{name} sample ({len(rows[0][1])} bytes): {rows[0][1]!r}")


if __name__ == "__main__":
    main()
