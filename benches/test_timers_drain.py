"""Durable timers: how fast one shard drains due timers (issue: journeys complete).

1,000,000 timers (100,000 contacts in 10 programs that each wait a day) are set
through the real batch path into a real LMDB shard; then the clock moves a day and
`ShardStore.fire_due` drains them, each through `apply` (wake the run, send the
message, delete the timer, in one transaction per 10,000 timers, fsync on).
Under `make test` (benchmarks disabled) it runs once with 10,000 timers.
"""

from __future__ import annotations

import time

import msgpack
import pytest

from actors.store import ShardStore

NOW = 1_795_424_400_000
DAY = 86_400_000
PROGRAMS = 10


def _definitions() -> bytes:
    return msgpack.packb({"programs": [
        {"name": f"remind_{i}", "trigger": {"event": "signup"},
         "nodes": [{"id": "wait", "type": "wait", "duration": "1d", "next": "send"},
                   {"id": "send", "type": "action", "send": {"channel": "in_app", "text": f"Reminder {i}"},
                    "next": "done"},
                   {"id": "done", "type": "end"}]}
        for i in range(PROGRAMS)]})


@pytest.fixture
def loaded(request, tmp_path):
    enabled = request.config.getoption("benchmark_enable") or not request.config.getoption("benchmark_disable")
    contacts = 100_000 if enabled else 1_000
    store = ShardStore(tmp_path / "shard")
    store.install(_definitions(), 1)
    for start in range(0, contacts, 10_000):
        events = [{"id": f"s{c}", "contact": f"c{c}", "type": "signup", "ts": NOW}
                  for c in range(start, min(start + 10_000, contacts))]
        part = store.catalog.split_frame(msgpack.packb({"op": "events", "events": events}), 1, NOW).batches[0][1]
        store.apply([part], NOW)
    assert store.status()["timers"] == contacts * PROGRAMS
    yield store, contacts * PROGRAMS
    store.close()


def test_drain_due_timers(benchmark, loaded):
    store, timers = loaded

    took: list[float] = []

    def drain() -> int:
        start, total = time.perf_counter(), 0
        while fired := store.fire_due(NOW + DAY, 10_000):
            total += fired
        took.append(time.perf_counter() - start)
        return total

    fired = benchmark.pedantic(drain, rounds=1, iterations=1)
    assert fired == timers
    status = store.status()
    assert status["timers"] == 0 and status["outbox"] == timers  # one message per timer
    benchmark.extra_info.update(timers=timers, timers_per_s=round(timers / took[0]))
