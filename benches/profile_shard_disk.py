"""One shard's share of the `cairn bench` stream through a real shard store: where the
time goes and how many bytes reach the disk per event.

    .venv/bin/python benches/profile_shard_disk.py [EVENTS] [--no-fsync] [--one-at-a-time]

Builds the same frames as `cairn bench` (purchase events for 100,000 contacts,
`python/cairn/loadgen.py`) with the benchmark definitions (100 programs, 100 loyalty
rules), keeps shard 0's half of EVENTS (default 400,000), and feeds it to a
`ShardStore` (fsync on, in a temporary folder under the data disk) in 4,000-event
batches, pipelined as the shard actor does (`submit`, then `sync`) unless
`--one-at-a-time`. No Ray, no gateway, no load generator on the same cores.

Prints events/s, the CPU per event (the process's, both threads: the figure that
holds when other processes take the cores), the time per phase (read, core, write,
commit, the wait for earlier commits, and the checkpoints of the state log, the
last one included in the timed run), the bytes the process wrote to the block device per event
(`/proc/self/io` write_bytes: row bytes plus LMDB's page copies, branch pages and
free lists), and per table the rows, their payload and pages. Bytes written do not
depend on the machine's speed; use them to compare builds. The wall clock here
does, and is noisy: compare runs of one session only.
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

from actors.store import DB_NAMES, ShardStore
from cairn.benchdefs import packed_definitions
from cairn.loadgen import build_frames

CONTACTS = 100_000
BATCH_EVENTS = 4_000
NOW = 1_700_000_010_000


def shard_batches(store: ShardStore, events: int) -> tuple[list[list[bytes]], int]:
    """Shard 0's parts of the bench frames (of two shards), grouped into batches."""
    frames = build_frames(events, 1, 500, 1 << 22, "disk", CONTACTS)[0]
    batches: list[list[bytes]] = [[]]
    size = total = 0
    for frame in frames:
        for shard, part, count in store.catalog.split_frame(frame.body, 2, NOW).batches:
            if shard != 0:
                continue
            batches[-1].append(part)
            size += count
            total += count
            if size >= BATCH_EVENTS:
                batches.append([])
                size = 0
    return [b for b in batches if b], total


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def table_sizes(store: ShardStore, events: int) -> None:
    with store.env.begin() as txn:
        for name in DB_NAMES:
            stat = txn.stat(store.dbs[name])
            if not stat["entries"]:
                continue
            pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
            payload = sum(len(k) + len(v) for k, v in txn.cursor(store.dbs[name]))
            print(f"  {name:10} rows {stat['entries']:8,}  payload {payload / events:6.0f} B/event"
                  f"  pages {pages:7,} ({pages * stat['psize'] / events:6.0f} B/event)")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    events = int(args[0]) if args else 400_000
    fsync = "--no-fsync" not in sys.argv
    pipelined = "--one-at-a-time" not in sys.argv
    gc.set_threshold(100_000, 20, 20)  # as actors/shard.py
    folder = tempfile.mkdtemp(prefix="cairn-shard-disk-", dir=Path.cwd())
    store = ShardStore(folder, fsync=fsync, map_size=16 << 30)
    try:
        store.install(packed_definitions(100, 100), 1)
        batches, total = shard_batches(store, events)
        gc.collect()
        before, start, cpu = written_bytes(), time.perf_counter(), time.process_time()
        if pipelined:
            for parts in batches:
                store.submit(parts, NOW)
            store.sync()
        else:
            for parts in batches:
                store.apply(parts, NOW)
        store.checkpoint()  # the states still in the log: their copy is part of the cost
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        written = written_bytes() - before
        mode = "pipelined" if pipelined else "one at a time"
        print(f"{total:,} events in {len(batches)} batches ({mode}, fsync {'on' if fsync else 'off'}): "
              f"{total / elapsed:,.0f} events/s; {written / total:,.0f} bytes written per event; "
              f"CPU {cpu / total * 1e6:.2f} µs per event (both threads)")
        for phase in ("read_s", "core_s", "write_s", "commit_s", "wait_s", "checkpoint_s"):
            seconds = store.timing[phase]
            print(f"  {phase[:-2]:10} {seconds:6.2f} s  {seconds / total * 1e6:6.2f} µs/event")
        print(f"  ({store.timing['checkpoints']} checkpoints of the state log)")
        table_sizes(store, total)
    finally:
        store.close()
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
