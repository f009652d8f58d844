"""Apply the journeys benchmark's batch in a loop, for profilers.

    .venv/bin/python benches/profile_journeys.py [ROUNDS] [--held]

Builds the same world as `test_journeys_apply.py` (1,000 programs, 100,000 contacts
with 30 days of replayed history; cached in /tmp after the first run), then applies
the 10,000-event batch ROUNDS times and prints events/s. With --held, each round's
states are held decoded beforehand (`cairn._core.States`, untimed), as in a running
shard. Under a profiler:

    perf record --call-graph dwarf .venv/bin/python benches/profile_journeys.py 15
    valgrind --tool=callgrind --toggle-collect='*pymethod_apply*' \\
        .venv/bin/python benches/profile_journeys.py 1      # instructions, deterministic

The wall clock of this machine is noisy (10-30% between runs); instruction counts
from callgrind are not, so compare builds with them.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).parent))

import test_journeys_apply as bench  # noqa: E402
from conftest import profile_args, profiled_world, timed_rounds  # noqa: E402

from cairn import _core  # noqa: E402

CACHE = Path("/tmp/cairn-journeys-world.pkl")


def main() -> None:
    rounds, held = profile_args()
    catalog = _core.Catalog.compile(msgpack.packb(bench.journey_definitions(1000)), 1)
    part, stored = profiled_world(bench.world, CACHE)
    gc.collect()
    gc.freeze()
    elapsed, result = timed_rounds(catalog, part, stored, bench.NOW, rounds, held)
    print(f"{bench.BATCH * rounds / elapsed:,.0f} events/s over {rounds} rounds; "
          f"{sum(len(v) for _, v in result.history) / bench.BATCH:.0f} history bytes and "
          f"{sum(len(v) for _, v in result.states) / len(result.states):.0f} state bytes per event")


if __name__ == "__main__":
    main()
