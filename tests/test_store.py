"""The shard store on its own: a real LMDB environment in a temporary folder, no Ray."""

from __future__ import annotations

import msgpack
import pytest

from actors.store import ShardStore, StoreError
from cairn import _core
from cairn.definitions import parse

DEFS = """
loyalty:
  - name: club
    rules:
      - name: every_purchase
        event: purchase
        effects: [{credit: {points: 10, kind: qualifying}}]
"""
NOW = 1_764_000_000_000


def part(store: ShardStore, events: list[dict]) -> bytes:
    split = store.catalog.split_frame(msgpack.packb({"op": "events", "seq": 1, "events": events}), 1, NOW)
    assert not split.rejected
    return split.batches[0][1]


def purchases(ids: range, contact: str = "ann") -> list[dict]:
    return [{"id": f"o{i}", "contact": contact, "type": "purchase", "attrs": {"total_amount": 10}} for i in ids]


@pytest.fixture
def store(tmp_path) -> ShardStore:
    s = ShardStore(tmp_path / "shard", fsync=False)
    doc, _ = parse(DEFS, "defs.yaml")
    s.install(doc, 1)
    yield s
    s.close()


def test_history_ledger_and_dedup_survive_reopening(store, tmp_path):
    assert store.apply([part(store, purchases(range(30)))], NOW) == [(30, 0)]
    store.close()
    reopened = ShardStore(tmp_path / "shard", fsync=False)
    assert reopened.catalog.version == 1
    # 16 ids in the state, 14 older ones in the seen table: all of them duplicates.
    assert reopened.apply([part(reopened, purchases(range(35)))], NOW) == [(5, 30)]
    found = reopened.contact("ann", last=50)
    assert [e["id"] for e in found["history"]] == [f"o{i}" for i in range(35)]
    assert [r["balance"] for r in found["ledger"]] == [10 * (i + 1) for i in range(35)]
    assert found["state"]["loyalty"]["club"]["qualifying"] == 350
    assert reopened.status()["events"] == 35
    reopened.close()


def test_an_out_of_order_append_aborts_the_whole_batch(store):
    store.apply([part(store, purchases(range(3)))], NOW)
    before = store.status()
    with store.env.begin(write=True, db=store.dbs["meta"]) as txn:
        txn.put(b"history_seq", (1).to_bytes(8, "big"))  # behind the stored history
    with pytest.raises(StoreError, match="not after the last stored key"):
        store.apply([part(store, purchases(range(3, 6)))], NOW)
    assert store.status() == before
    assert store.contact("ann")["state"]["loyalty"]["club"]["qualifying"] == 30


def test_undecodable_batch_changes_nothing(store):
    with pytest.raises(_core.FrameError):
        store.apply([b"\x93\x01\x02"], NOW)
    assert store.status()["events"] == 0
