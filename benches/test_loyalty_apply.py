"""The core's batch apply with 1,000 loyalty rules, on 100,000 members, of purchase
events with 5 receipt lines each (issue: loyalty complete); and the simulation's
replay speed over stored history. Through the Python binding, one core.

With benchmarks enabled (`pytest benches --benchmark-enable`, `make bench`) the
members are 100,000; under `make test` (benchmarks disabled, run once as a test)
they are 2,000 so the suite stays fast.
"""

from __future__ import annotations

import msgpack
import pytest

from cairn import _core
from cairn.benchdefs import LOYALTY_STORES, loyalty_definitions, purchase_lines

NOW = 1_795_424_400_000  # 2026-11-23T09:00:00Z
BATCH = 10_000


def ledger_entries(result: _core.BatchResult) -> int:
    """Ledger entries of a batch (one row per event holds all of its entries)."""
    return sum(len(msgpack.unpackb(_core.named_ledger(raw))) for _, raw in result.ledger)


def _purchase(n: int, contact: int, ts: int) -> dict:
    lines = purchase_lines(n)
    return {"id": f"p{n}", "contact": f"m{contact}", "type": "purchase", "ts": ts,
            "attrs": {"total_amount": sum(line["total_line_amount"] for line in lines), "currency": "EUR",
                      "store_code": LOYALTY_STORES[n % len(LOYALTY_STORES)], "receipt_id": f"r{n}", "lines": lines}}


def _part(catalog: _core.Catalog, events: list[dict], now: int) -> bytes:
    return catalog.split_frame(msgpack.packb({"op": "events", "events": events}), 1, now).batches[0][1]


@pytest.fixture(scope="module")
def world(request):
    """The catalog, every member's state after 3 earlier purchases, a fresh batch,
    and the history rows those purchases wrote (for the simulation)."""
    enabled = request.config.getoption("benchmark_enable") or not request.config.getoption("benchmark_disable")
    members = 100_000 if enabled else 2_000
    catalog = _core.Catalog.compile(msgpack.packb(loyalty_definitions(1000)), 1, None, b"s" * 32)
    states: dict[bytes, bytes] = {}
    history: list[bytes] = []
    seq = 1
    for day in range(3):
        ts = NOW - (3 - day) * 86_400_000
        for start in range(0, members, 20_000):
            events = [_purchase(day * members + c, c, ts) for c in range(start, min(start + 20_000, members))]
            batch = _core.Batch([_part(catalog, events, ts)])
            result = catalog.apply(batch, [(k, states[k]) for k in batch.state_keys() if k in states], [], ts, seq)
            seq = result.next_seq
            states.update(result.states)
            history.extend(v for _, v in result.history)
    fresh = [_purchase(10**8 + k, (k * 7919) % members, NOW) for k in range(BATCH)]
    part = _part(catalog, fresh, NOW)
    stored = [(k, states[k]) for k in _core.Batch([part]).state_keys() if k in states]
    return catalog, part, stored, members, history, list(states.items())


def test_batch_apply_1000_loyalty_rules(benchmark, world):
    catalog, part, stored, members, _, _ = world

    def run():
        return catalog.apply(_core.Batch([part]), stored, [], NOW)

    result = benchmark(run)
    assert result.accepted == BATCH and result.duplicates == 0
    assert ledger_entries(result) > BATCH  # rules earned: real work
    benchmark.extra_info.update(events=BATCH, members=members, rules=1000, lines_per_event=5,
                                ledger_entries_per_event=round(ledger_entries(result) / BATCH, 2),
                                avg_state_bytes=round(sum(len(v) for _, v in stored) / max(len(stored), 1)))


def test_simulation_replay(benchmark, world):
    catalog, _, _, members, history, _ = world
    rows = history[:BATCH * 3]

    def run():
        sim = _core.Simulation(catalog, 0)
        sim.feed(rows)
        return sim.events, sim.finish(NOW)

    events, outcome = benchmark(run)
    assert events == len(rows) and outcome
    benchmark.extra_info.update(events=events, members=members, rules=1000)


def test_batch_apply_1000_loyalty_rules_held_states(benchmark, bench_held, world):
    """The same batch as a running shard applies it: every member's state held
    decoded from earlier batches (`cairn._core.States`), none read from storage."""
    catalog, part, _, members, _, all_states = world
    result = bench_held(catalog, part, all_states, NOW)
    assert result.accepted == BATCH and result.duplicates == 0
    assert ledger_entries(result) > BATCH
    benchmark.extra_info.update(events=BATCH, members=members, rules=1000, held=members)
