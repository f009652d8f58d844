"""A shard lane over real shard stores (LMDB in a temporary folder, no Ray): frames
are acked only once their batch is reported durable, and failed when it is reported
failed or when the shard that took it is gone."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgpack

from actors.store import ShardStore
from cairn.definitions import parse
from cairn.lanes import Report, ShardLane
from cairn.ticket import Ticket

DEFS = """
loyalty:
  - name: club
    rules:
      - name: every_purchase
        event: purchase
        effects: [{credit: {points: 10, kind: qualifying}}]
"""
NOW = 1_764_000_000_000


class Shard:
    """Plays the shard actor's two calls on a real store, as `actors/shard.py` does."""

    def __init__(self, store: ShardStore, instance: str) -> None:
        self.store, self.instance = store, instance

    async def apply(self, parts: list[bytes], now_ms: int) -> Report:
        s = self.store.submit(parts, now_ms)
        return (self.instance, s.number, s.counts, s.durable, s.failures)

    async def sync(self) -> Report:
        s = await asyncio.to_thread(self.store.sync)
        return (self.instance, s.number, s.counts, s.durable, s.failures)


def store_at(tmp_path: Any, name: str) -> ShardStore:
    store = ShardStore(tmp_path / name, fsync=False)
    store.install(parse(DEFS, "defs.yaml")[0], 1)
    return store


def part(store: ShardStore, ids: range) -> bytes:
    events = [{"id": f"o{i}", "contact": "ann", "type": "purchase", "attrs": {"total_amount": 10}} for i in ids]
    return store.catalog.split_frame(msgpack.packb({"op": "events", "events": events}), 1, NOW).batches[0][1]


def lane_over(shard: Shard) -> ShardLane:
    # One slice per call: each frame below is its own batch.
    return ShardLane(apply=shard.apply, sync=shard.sync, clock=lambda: NOW, batch_events=1, max_in_flight=1)


async def send(lane: ShardLane, store: ShardStore, frames: list[range]) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = [{} for _ in frames]
    for seq, ids in enumerate(frames):
        ticket = Ticket(seq, 1, [], replies[seq].update)
        await lane.submit(part(store, ids), len(ids), ticket)
    await lane.drain()
    return replies


def test_frames_are_acked_once_durable_and_failed_when_their_commit_fails(tmp_path):
    store = store_at(tmp_path, "shard")
    stray = (1 << 40).to_bytes(8, "big")  # a history row ahead of history_seq: appends fail

    async def run() -> list[dict[str, Any]]:
        lane = lane_over(Shard(store, "a"))
        first = await send(lane, store, [range(0, 3)])
        with store.env.begin(write=True, db=store.dbs["history"]) as txn:
            txn.put(stray, b"\xc0")
        # Hold the commit thread so that the second frame's batch is computed on
        # top of the first's, whose commit will fail (white box: the store's executor).
        gate = threading.Event()
        store._committer.submit(gate.wait)
        pending = asyncio.ensure_future(send(lane, store, [range(3, 6), range(6, 9)]))
        await asyncio.sleep(0.2)
        assert not pending.done(), "nothing may be acked before its commit"
        gate.set()
        failed = await pending
        with store.env.begin(write=True, db=store.dbs["history"]) as txn:
            txn.delete(stray)
        again = await send(lane, store, [range(3, 9)])
        return first + failed + again

    first, second, third, again = asyncio.run(run())
    assert (first["op"], first["accepted"]) == ("ack", 3)
    assert second["op"] == third["op"] == "error"
    assert "not after the last stored key" in second["message"]
    assert "an earlier batch failed" in third["message"]
    assert (again["op"], again["accepted"], again["duplicates"]) == ("ack", 6, 0)
    assert store.contact("ann")["state"]["loyalty"]["club"]["qualifying"] == 90
    store.close()


def test_batches_awaited_from_a_shard_that_is_gone_are_failed(tmp_path):
    """A restarted shard actor numbers its batches afresh: the lane fails the ones
    it was still waiting for from the old one instead of taking the new one's
    report for them."""
    old, new = store_at(tmp_path, "old"), store_at(tmp_path, "new")
    gate = threading.Event()
    old._committer.submit(gate.wait)  # the old shard's commit never comes

    class Restarting(Shard):
        async def apply(self, parts: list[bytes], now_ms: int) -> Report:
            report = await super().apply(parts, now_ms)
            self.store, self.instance = new, "new"  # the actor dies after answering
            return report

    async def run() -> list[dict[str, Any]]:
        lane = lane_over(Restarting(old, "old"))
        replies: list[dict[str, Any]] = [{}, {}]
        # Both slices queue before the first call answers: no sync goes to the old shard.
        await lane.submit(part(old, range(0, 3)), 3, Ticket(0, 1, [], replies[0].update))
        await lane.submit(part(new, range(3, 6)), 3, Ticket(1, 1, [], replies[1].update))
        await lane.drain()
        return replies

    try:
        lost, acked = asyncio.run(run())
    finally:
        gate.set()
    assert lost["op"] == "error" and "restarted" in lost["message"]
    assert (acked["op"], acked["accepted"]) == ("ack", 3)
    for s in (old, new):
        s.close()
