"""The core's batch apply with 1,000 journeys of mixed node types, on contacts that
carry 30 days of history (issue: journeys complete). Through the Python binding, one
core, as a shard calls it: stored states in, rows out.

With benchmarks enabled (`pytest benches --benchmark-enable`, `make bench`) the
contacts are 100,000; under `make test` (benchmarks disabled, run once as a test)
they are 2,000 so the suite stays fast.
"""

from __future__ import annotations

import random

import msgpack
import pytest

from cairn import _core
from cairn.benchdefs import JOURNEY_TYPES, STORES, journey_definitions

NOW = 1_795_424_400_000  # 2026-11-23T09:00:00Z
DAY = 86_400_000
BATCH = 10_000
HISTORY_PER_CONTACT = 10  # events over the 30 days before NOW


def _event(rng: random.Random, n: int, contact: int, ts: int) -> dict:
    return {"id": f"h{n}", "contact": f"c{contact}", "type": rng.choice(JOURNEY_TYPES), "ts": ts,
            "attrs": {"store": rng.choice(STORES), "amount": rng.randrange(100),
                      "order_id": f"o{rng.randrange(1_000_000)}"}}


def _apply(catalog: _core.Catalog, batch: _core.Batch, states: dict[bytes, bytes], timers: set[bytes],
           now: int) -> None:
    """One batch as a shard applies it: states and timers in, states and timers out."""
    stored = [(k, states[k]) for k in batch.state_keys() if k in states]
    result = catalog.apply(batch, stored, [], now)
    states.update(result.states)
    timers.update(result.timers)
    timers.difference_update(result.timer_deletes)


def _replay(catalog: _core.Catalog, events: list[dict], states: dict[bytes, bytes], timers: set[bytes],
            now: int) -> None:
    """Fire the timers due by ``now`` (as the shard's timer pump does), then apply."""
    due = sorted(k for k in timers if int.from_bytes(k[:8], "big") <= now)
    if due:
        _apply(catalog, _core.Batch.timers(due), states, timers, now)
    part = catalog.split_frame(msgpack.packb({"op": "events", "events": events}), 1, now).batches[0][1]
    _apply(catalog, _core.Batch([part]), states, timers, now)


@pytest.fixture(scope="module")
def world(request):
    """The catalog, 30 days of history replayed into the states, and a fresh batch."""
    # --benchmark-enable on the command line overrides the --benchmark-disable of addopts.
    enabled = request.config.getoption("benchmark_enable") or not request.config.getoption("benchmark_disable")
    contacts = 100_000 if enabled else 2_000
    catalog = _core.Catalog.compile(msgpack.packb(journey_definitions(1000)), 1)
    rng = random.Random(7)
    states: dict[bytes, bytes] = {}
    timers: set[bytes] = set()
    history = sorted(((NOW - 30 * DAY + rng.randrange(30 * DAY), c) for c in range(contacts)
                      for _ in range(HISTORY_PER_CONTACT)))
    step = max(len(history) // 200, 1)  # ~3.6 hours of history per replayed batch
    for start in range(0, len(history), step):
        chunk = history[start:start + step]
        events = [_event(rng, start + k, c, ts) for k, (ts, c) in enumerate(chunk)]
        _replay(catalog, events, states, timers, chunk[-1][0])
    fresh = [_event(rng, 10**9 + k, rng.randrange(contacts), NOW) for k in range(BATCH)]
    part = catalog.split_frame(msgpack.packb({"op": "events", "events": fresh}), 1, NOW).batches[0][1]
    batch = _core.Batch([part])
    stored = [(k, states[k]) for k in batch.state_keys() if k in states]
    return catalog, part, stored, contacts, len(timers), list(states.items())


def test_batch_apply_1000_journeys(benchmark, world):
    catalog, part, stored, contacts, waiting, _ = world

    def run():
        return catalog.apply(_core.Batch([part]), stored, [], NOW)

    result = benchmark(run)
    assert result.accepted == BATCH and result.duplicates == 0
    assert result.outbox and result.timers  # messages and waits: real work
    benchmark.extra_info.update(events=BATCH, contacts=contacts, programs=1000,
                                effects_per_event=round(len(result.outbox) / BATCH, 2),
                                timers_per_event=round(len(result.timers) / BATCH, 2),
                                avg_state_bytes=round(sum(len(v) for _, v in stored) / max(len(stored), 1)),
                                runs_waiting=waiting)


def test_batch_apply_1000_journeys_held_states(benchmark, bench_held, world):
    """The same batch as a running shard applies it: every contact's state held
    decoded from earlier batches (`cairn._core.States`), none read from storage."""
    catalog, part, _, contacts, _, all_states = world
    result = bench_held(catalog, part, all_states, NOW)
    assert result.accepted == BATCH and result.duplicates == 0
    assert result.outbox and result.timers
    benchmark.extra_info.update(events=BATCH, contacts=contacts, programs=1000, held=contacts)
