"""Apply the foundation benchmark's batches through a real shard store, for profilers.

    .venv/bin/python benches/profile_store.py [ROUNDS] [--default-gc]

Opens a `ShardStore` (LMDB, fsync off) in a temporary folder with the definitions
of `test_core_apply.py` (100 programs, 100 loyalty rules), applies one 10,000-event
purchase batch for 2,000 contacts to give them state, then ROUNDS more such batches
(fresh event ids) and prints events/s. Unlike `profile_core.py`, this includes what
the store does around the core: reading states, handing the rows to py-lmdb's
`putmulti`, committing. The cyclic GC runs with the shard actor's threshold
(`actors/shard.py`) unless `--default-gc` is given.

The batches run inside one `functools.reduce` call, a C function, so callgrind can
collect them alone:

    valgrind --tool=callgrind --toggle-collect='functools_reduce' \\
        .venv/bin/python benches/profile_store.py 1
    valgrind --tool=callgrind --toggle-collect='functools_reduce' \\
        .venv/bin/python benches/profile_store.py 3

Half the difference of the two totals is one batch in a store that already holds
some (the first batch after the warm-up costs a little less). Set PYTHONHASHSEED=0
for repeatable counts. The wall clock of this machine is noisy (10-30% between
runs); compare builds by instruction counts.
"""

from __future__ import annotations

import functools
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import test_core_apply as bench  # noqa: E402

from actors.store import ShardStore  # noqa: E402
from cairn.benchdefs import packed_definitions  # noqa: E402


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else 10
    if "--default-gc" not in sys.argv:
        gc.set_threshold(100_000, 20, 20)  # as actors/shard.py
    folder = tempfile.mkdtemp(prefix="cairn-profile-store-")
    store = ShardStore(folder, fsync=False, map_size=8 << 30)
    try:
        store.install(packed_definitions(100, 100), 1)

        def part(offset: int) -> bytes:
            frame = bench._frame(bench.EVENTS, offset=offset)
            return store.catalog.split_frame(frame, 1, bench.NOW).batches[0][1]

        store.apply([part(0)], bench.NOW)
        parts = [part(bench.EVENTS * (r + 1)) for r in range(rounds)]
        gc.collect()
        start = time.perf_counter()
        functools.reduce(lambda _, p: store.apply([p], bench.NOW), parts, None)
        elapsed = time.perf_counter() - start
        print(f"{bench.EVENTS * rounds / elapsed:,.0f} events/s over {rounds} rounds")
    finally:
        store.close()
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
