"""Apply the loyalty benchmark's batch in a loop, for profilers.

    .venv/bin/python benches/profile_loyalty.py [ROUNDS] [--held]

Builds the same world as `test_loyalty_apply.py` (one program of 1,000 rules,
100,000 members with 3 earlier purchases; cached in /tmp after the first run), then
decodes and applies the 10,000-purchase batch (5 receipt lines each) ROUNDS times
and prints events/s. With --held, each round's states are held decoded beforehand
(`cairn._core.States`, untimed), as in a running shard. Under callgrind, counting
the batch decode and the apply (instructions are deterministic; this machine's
wall clock is not):

    valgrind --tool=callgrind --toggle-collect='*pymethod_apply*' \\
        --toggle-collect='*Batch*pymethod___new__*' \\
        .venv/bin/python benches/profile_loyalty.py 1 [--held]
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).parent))

import test_loyalty_apply as bench  # noqa: E402
from conftest import profile_args, profiled_world, timed_rounds  # noqa: E402

from cairn import _core  # noqa: E402
from cairn.benchdefs import loyalty_definitions  # noqa: E402

CACHE = Path("/tmp/cairn-loyalty-world.pkl")
SECRET = b"s" * 32


def main() -> None:
    rounds, held = profile_args()
    catalog = _core.Catalog.compile(msgpack.packb(loyalty_definitions(1000)), 1, None, SECRET)
    part, stored = profiled_world(bench.world, CACHE)
    gc.collect()
    gc.freeze()
    elapsed, result = timed_rounds(catalog, part, stored, bench.NOW, rounds, held)
    print(f"{bench.BATCH * rounds / elapsed:,.0f} events/s over {rounds} rounds; "
          f"{len(result.ledger) / bench.BATCH:.2f} ledger rows per event")


if __name__ == "__main__":
    main()
