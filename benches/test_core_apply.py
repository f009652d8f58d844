"""pytest-benchmark benchmarks of the Rust core through its Python binding.

Run with `make bench` (or `pytest benches --benchmark-enable`); under `make test`
they run once each as plain tests (`--benchmark-disable`). Figures and the machine
they were measured on are in docs/benchmarks.md.
"""

from __future__ import annotations

import msgpack
import pytest

from cairn import _core
from cairn.benchdefs import packed_definitions

EVENTS = 10_000
CONTACTS = 2_000
NOW = 1_764_000_000_000
STORES = ["MI", "RM", "TO", "NA"]


def _frame(n: int, offset: int = 0) -> bytes:
    events = [{"id": f"e{offset + i}", "contact": f"c{i % CONTACTS}", "type": "purchase", "ts": NOW + i,
               "attrs": {"total_amount": (i * 37) % 250, "store_code": STORES[i % 4], "currency": "EUR"}}
              for i in range(n)]
    return msgpack.packb({"op": "events", "seq": 1, "events": events})


@pytest.fixture(scope="module")
def catalog() -> _core.Catalog:
    return _core.Catalog.compile(packed_definitions(100, 100), 1)


@pytest.fixture(scope="module")
def warm(catalog):
    """A batch of fresh events for contacts that already have state (steady state)."""
    first = catalog.split_frame(_frame(EVENTS), 1, NOW)
    states = catalog.apply(_core.Batch([first.batches[0][1]]), [], [], NOW).states
    second = catalog.split_frame(_frame(EVENTS, offset=EVENTS), 1, NOW)
    return second.batches[0][1], states


def test_split_frame(benchmark, catalog):
    frame = _frame(EVENTS)
    split = benchmark(catalog.split_frame, frame, 2, NOW)
    assert split.total == EVENTS and not split.rejected
    benchmark.extra_info["events"] = EVENTS


def test_batch_apply_100_programs_100_rules(benchmark, catalog, warm):
    part, states = warm

    def run():
        batch = _core.Batch([part])
        return catalog.apply(batch, states, [], NOW)

    result = benchmark(run)
    assert result.accepted == EVENTS and result.duplicates == 0
    assert result.ledger and result.outbox  # rules earned and programs sent: real work
    benchmark.extra_info["events"] = EVENTS
