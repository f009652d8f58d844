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
def make_store(tmp_path):
    """Open shard stores under tmp_path with definitions installed; closed after."""
    opened: list[ShardStore] = []

    def make(definitions: str, name: str = "shard") -> ShardStore:
        s = ShardStore(tmp_path / name, fsync=False)
        s.install(parse(definitions, f"{name}.yaml")[0], 1)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store) -> ShardStore:
    return make_store(DEFS)


def test_history_ledger_and_dedup_survive_reopening(tmp_path):
    store = ShardStore(tmp_path / "shard", fsync=False)
    store.install(parse(DEFS, "defs.yaml")[0], 1)
    assert store.apply([part(store, purchases(range(30)))], NOW) == [(30, 0)]
    store.close()
    reopened = ShardStore(tmp_path / "shard", fsync=False)
    assert reopened.catalog.version == 1
    # 16 ids in the state, 14 older ones in the seen table: all of them duplicates.
    assert reopened.apply([part(reopened, purchases(range(35)))], NOW) == [(5, 30)]
    found = reopened.contact("ann", last=50)
    assert [e["id"] for e in found["history"]] == [f"o{i}" for i in range(35)]
    points = [r for r in found["ledger"] if r["kind"] != "member"]  # and one join row
    assert [r["balance"] for r in points] == [10 * (i + 1) for i in range(35)]
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


NOTIFY = """
programs:
  - name: thanks
    trigger: {event: purchase}
    nodes:
      - {id: say, type: action, send: {channel: in_app, text: "thanks"}, next: done}
      - {id: done, type: end}
"""


@pytest.fixture
def notifying(make_store) -> ShardStore:
    return make_store(NOTIFY, "notify")


def test_outbox_retry_and_dead_letter_lifecycle(notifying):
    store = notifying
    store.apply([part(store, purchases(range(3)))], NOW)
    due = store.outbox_due(10, NOW)
    assert [attempts for _, _, attempts in due] == [0, 0, 0]
    assert [msgpack.unpackb(e)["event_id"] for _, e, _ in due] == ["o0", "o1", "o2"]  # creation order
    (h0, _, _), (h1, _, _), (h2, _, _) = due
    store.outbox_settle([h0], [(h1, "timeout", NOW + 1000), (h2, "HTTP 400", None)], NOW)
    status = store.status()
    assert (status["outbox"], status["retrying"], status["dead_letters"]) == (1, 1, 1)
    assert store.outbox_due(10, NOW) == []  # the retry is not due yet
    (retry,) = store.outbox_due(10, NOW + 1000)
    assert retry[2] == 1 and msgpack.unpackb(retry[1])["event_id"] == "o1"
    store.outbox_settle([], [(retry[0], "timeout again", NOW + 5000)], NOW + 1000)
    (retry,) = store.outbox_due(10, NOW + 5000)
    assert retry[2] == 2
    store.outbox_settle([retry[0]], [], NOW + 5000)
    store.outbox_settle([retry[0]], [(retry[0], "late", None)], NOW + 5000)  # settled twice: no-op
    status = store.status()
    assert (status["outbox"], status["retrying"], status["dead_letters"]) == (0, 0, 1)
    (dead,) = store.dead_letters()
    assert (dead["error"], dead["attempts"], dead["effect"]["event_id"]) == ("HTTP 400", 1, "o2")


def test_due_retries_come_before_first_attempts_and_respect_the_limit(notifying):
    store = notifying
    store.apply([part(store, purchases(range(2)))], NOW)
    _, (second, _, _) = store.outbox_due(10, NOW)
    store.outbox_settle([], [(second, "busy", NOW)], NOW)
    store.apply([part(store, purchases(range(2, 4)))], NOW)
    due = store.outbox_due(2, NOW)
    assert [msgpack.unpackb(e)["event_id"] for _, e, _ in due] == ["o1", "o0"]
