"""The shard store on its own: a real LMDB environment in a temporary folder, no Ray;
and the shard lane over real stores (acks follow what the store reports durable)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgpack
import pytest

from actors.store import ShardStore, StoreError
from cairn import _core
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


def test_an_out_of_order_append_aborts_the_whole_batch(tmp_path):
    store = ShardStore(tmp_path / "shard", fsync=False)
    store.install(parse(DEFS, "defs.yaml")[0], 1)
    store.apply([part(store, purchases(range(3)))], NOW)
    with store.env.begin(write=True, db=store.dbs["meta"]) as txn:
        txn.put(b"history_seq", (1).to_bytes(8, "big"))  # behind the stored history
    store.close()
    damaged = ShardStore(tmp_path / "shard", fsync=False)  # the store reads history_seq on opening
    def stored() -> dict:  # the row counts, not where time (and CPU) went
        return {k: v for k, v in damaged.status().items() if k != "timing"}

    before = stored()
    with pytest.raises(StoreError, match="not after the last stored key"):
        damaged.apply([part(damaged, purchases(range(3, 6)))], NOW)
    assert stored() == before
    assert damaged.contact("ann")["state"]["loyalty"]["club"]["qualifying"] == 30
    damaged.close()


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


RECENT = """
loyalty:
  - name: club
    rules:
      - name: every_purchase
        event: purchase
        effects: [{credit: {points: 10, kind: qualifying}}]
programs:
  - name: thanks
    trigger: {event: purchase}
    nodes:
      - id: say
        type: action
        send: {channel: in_app, text: "{{ profile.name }}: {{ recent | map(attribute='id') | join(',') }}"}
        next: done
      - {id: done, type: end}
"""
COUNTING = RECENT + """
segments:
  - name: buyers
    when: {event: purchase, within: 30d, count: {op: gte, value: 3}}
"""


def _rewrite_named(store: ShardStore) -> None:
    """Store every history row and outbox effect as the named maps earlier builds
    wrote (the core's named forms, decision reasons rendered as text, are those
    bytes exactly), retries included."""
    with store.env.begin(write=True) as txn:
        history = txn.cursor(store.dbs["history"])
        for key, raw in list(history):
            txn.put(key, store.catalog.named_history(raw, int.from_bytes(key, "big")), db=store.dbs["history"])
        for key, raw in list(txn.cursor(store.dbs["outbox"])):
            txn.put(key, store.catalog.named_effect(raw), db=store.dbs["outbox"])
        for key, raw in list(txn.cursor(store.dbs["retry"])):
            info = msgpack.unpackb(raw)
            info["effect"] = store.catalog.named_effect(info["effect"])
            txn.put(key, msgpack.packb(info), db=store.dbs["retry"])


def test_rows_are_stored_compactly_and_read_as_named_maps(make_store):
    store = make_store(RECENT, "compact")
    store.apply([part(store, [{"id": "p", "contact": "ann", "type": "$profile", "attrs": {"set": {"name": "Ann"}}}]
                      + purchases(range(3)))], NOW)
    with store.env.begin() as txn:
        key, raw = next(iter(txn.cursor(store.dbs["history"])))
        effects = [v for _, v in txn.cursor(store.dbs["outbox"])]
    # Arrays without field names; the sequence is only in the key.
    assert msgpack.unpackb(raw)[:4] == ["p", "ann", "$profile", NOW]
    assert b"contact" not in raw and b"contact" not in effects[0]
    row = msgpack.unpackb(_core.named_history(raw, 1))
    assert (row["id"], row["seq"], row["runs"]) == ("p", 1, [])
    due = [msgpack.unpackb(e) for _, e, _ in store.outbox_due(10, NOW)]
    assert [(e["kind"], e["to"], e["event_id"], e["context"]["contact"]) for e in due] == [
        ("message", "ann", f"o{i}", "ann") for i in range(3)]
    # Templates read recent events from history rows, and the profile and balances.
    assert [[r["id"] for r in e["context"]["recent"]] for e in due] == [[], ["o0"], ["o1", "o0"]]
    assert due[2]["context"]["profile"] == {"name": "Ann"}
    # The template does not read the balances: the effect carries none.
    assert due[2]["context"]["loyalty"] == {}
    with pytest.raises(_core.CairnError, match="history row 7"):
        _core.named_history(b"\x93\x01\x02\x03", 7)
    with pytest.raises(_core.CairnError):
        _core.named_effect(raw)  # a history row is not an effect


def test_rows_stored_as_named_maps_by_earlier_builds_still_read(make_store, tmp_path):
    store = make_store(RECENT, "old")
    store.apply([part(store, purchases(range(4)))], NOW)
    (first, *_rest) = store.outbox_due(10, NOW)
    store.outbox_settle([], [(first[0], "busy", NOW)], NOW)  # one waits in the retry table
    before = (store.history("ann"), store.contact("ann"), store.outbox_due(10, NOW))
    _rewrite_named(store)
    with store.env.begin() as txn:
        assert msgpack.unpackb(txn.get((1).to_bytes(8, "big"), db=store.dbs["history"]))["seq"] == 1
    assert (store.history("ann"), store.contact("ann"), store.outbox_due(10, NOW)) == before
    # Old and new rows side by side: the new effect's template reads both.
    store.apply([part(store, purchases(range(4, 5)))], NOW)
    assert [e["id"] for e in store.history("ann")] == [f"o{i}" for i in range(5)]
    *_, (_, newest, _) = store.outbox_due(10, NOW)
    assert [r["id"] for r in msgpack.unpackb(newest)["context"]["recent"]] == ["o3", "o2", "o1", "o0"]
    # The dead-letter list keeps the named effect, from either form.
    due = store.outbox_due(10, NOW)
    store.outbox_settle([], [(h, "gone", None) for h, _, _ in due], NOW)
    assert [d["effect"]["event_id"] for d in store.dead_letters()] == [f"o{i}" for i in range(5)]
    # New counted histories are backfilled from old rows as from new ones.
    store.install(parse(COUNTING, "counting.yaml")[0], 2)
    assert store.segment_page("buyers", NOW)[0] == ["ann"]


MAIL = """
programs:
  - name: mail
    transactional: true
    trigger: {event: purchase}
    nodes:
      - id: m
        type: action
        send: {channel: email, subject: "Hi {{ profile.name }}", text: "Thanks for {{ event.total_amount }}",
               html: "<b>{{ event.total_amount }}</b>"}
        next: hook
      - id: hook
        type: action
        webhook: {url: "https://hooks.test/x", body: "{{ event.id }}"}
        next: done
      - {id: done, type: end}
"""


def test_effects_name_their_templates_and_read_them_from_the_definitions(make_store):
    store = make_store(MAIL, "mail")
    store.apply([part(store, [{"id": "p", "contact": "ann", "type": "$profile",
                               "attrs": {"set": {"name": "Ann", "email": "ann@example.com"}}}]
                      + purchases(range(2)))], NOW)
    with store.env.begin() as txn:
        rows = list(txn.cursor(store.dbs["outbox"]))
    # The rows carry no template: `[]` names the node's, in the version they name.
    assert all(b"{{" not in raw for _, raw in rows)
    assert [msgpack.unpackb(raw)[9:12] for _, raw in rows[:2]] == [[[], None, None], [None, None, []]]
    with pytest.raises(_core.CairnError, match="Catalog.named_effect"):
        _core.named_effect(rows[0][1])
    due = [msgpack.unpackb(e) for _, e, _ in store.outbox_due(10, NOW)]
    assert [e["kind"] for e in due] == ["message", "webhook"] * 2
    assert due[0]["message"] == {"subject": "Hi {{ profile.name }}", "text": "Thanks for {{ event.total_amount }}",
                                 "html": "<b>{{ event.total_amount }}</b>"}
    assert list(due[0]["message"]) == ["text", "subject", "html"]
    assert due[1]["webhook"] == {"url": "https://hooks.test/x", "body": "{{ event.id }}"}
    # Rows of the build before, compact with their templates inline, read the same,
    # with or without the definitions.
    with store.env.begin(write=True) as txn:
        for (key, raw), effect in zip(rows, due):
            old = msgpack.unpackb(raw)
            if old[9] == []:
                old[9] = [effect["message"]["text"], effect["message"]["subject"], effect["message"]["html"], None]
            if old[11] == []:
                old[11] = [effect["webhook"]["url"], effect["webhook"]["body"]]
            inline = msgpack.packb(old)
            assert msgpack.unpackb(_core.named_effect(inline)) == effect
            txn.put(key, inline, db=store.dbs["outbox"])
    assert [msgpack.unpackb(e) for _, e, _ in store.outbox_due(10, NOW)] == due
    # A new version with other templates: rows written before read the templates of
    # theirs (both forms), new rows those of the new one; retries and dead letters too.
    store.install(parse(MAIL.replace("Thanks for", "Thank you for"), "mail2.yaml")[0], 2)
    store.apply([part(store, purchases(range(2, 3)))], NOW)
    handles = store.outbox_due(10, NOW)
    store.outbox_settle([], [(h, "busy", NOW) for h, _, _ in handles[:3]], NOW)
    due = [msgpack.unpackb(e) for _, e, _ in store.outbox_due(10, NOW)]
    assert [(e["version"], e["message"]["text"]) for e in due if e["kind"] == "message"] == [
        (1, "Thanks for {{ event.total_amount }}"), (1, "Thanks for {{ event.total_amount }}"),
        (2, "Thank you for {{ event.total_amount }}")]
    store.outbox_settle([], [(h, "gone", None) for h, _, _ in store.outbox_due(10, NOW)], NOW)
    dead = [d["effect"] for d in store.dead_letters()]
    assert sorted(e["message"]["text"] for e in dead if e["kind"] == "message") == [
        "Thank you for {{ event.total_amount }}", "Thanks for {{ event.total_amount }}",
        "Thanks for {{ event.total_amount }}"]


BALANCES = DEFS + """
programs:
  - name: thanks
    trigger: {event: purchase}
    nodes:
      - id: points
        type: action
        send: {channel: in_app, title: "{{ loyalty.club.qualifying }} points", text: "Thanks {{ event.id }}"}
        next: plain
      - id: plain
        type: action
        send: {channel: web, text: "Thanks {{ event.id }} ({{ event.loyalty_code }})"}
        next: done
      - {id: done, type: end}
"""


def test_effects_carry_the_balances_only_when_a_template_reads_them(make_store):
    from cairn.channels.templates import render_message

    store = make_store(BALANCES, "balances")
    store.apply([part(store, purchases(range(3)))], NOW)
    due = [msgpack.unpackb(e) for _, e, _ in store.outbox_due(10, NOW)]
    assert [e["node"] for e in due] == ["points", "plain"] * 3
    # Loyalty runs before programs: the message about the third purchase sees its points.
    assert due[4]["context"]["loyalty"] == {"club": {
        "qualifying": 30, "non_qualifying": 0, "pending_qualifying": 0, "pending_non_qualifying": 0,
        "tier": "", "vip": False, "rewards": 0}}
    assert render_message(due[4]) == {"title": "30 points", "text": "Thanks o2"}
    # `loyalty_code` is another name: that node's effects carry no balances.
    assert [e["context"]["loyalty"] for e in due[1::2]] == [{}, {}, {}]
    assert render_message(due[5]) == {"text": "Thanks o2 ()"}


def test_rows_from_the_core_are_a_sequence_read_lazily(store):
    batch = _core.Batch([part(store, purchases(range(3)) + purchases(range(2), "bob"))])
    result = store.catalog.apply(batch, [], [], NOW)
    history = result.history
    assert len(history) == 5 and bool(history) and not result.seen
    seqs = [int.from_bytes(key, "big") for key, _ in history]
    assert seqs == [1, 2, 3, 4, 5]
    assert history[-1] == history[4] == list(history)[4]
    assert all(type(r) is tuple and type(r[0]) is bytes and type(r[1]) is bytes for r in history)
    with pytest.raises(IndexError):
        history[5]
    first, second = iter(history), iter(history)
    assert [next(first), next(first)] == [history[0], history[1]]
    assert next(second) == history[0], "each iterator walks the rows on its own"
    assert first.__length_hint__() == 3
    # Rows go back in as stored states, as putmulti input, and into a dict.
    states = result.states
    assert [k for k, _ in states] == [b"ann", b"bob"] and dict(states).keys() == {b"ann", b"bob"}
    assert store.catalog.apply(batch, states, [], NOW).duplicates == 5


# -- decoded states held between batches ----------------------------------------------


def test_a_batch_that_does_not_commit_leaves_no_held_state_behind(store):
    store.apply([part(store, purchases(range(3)))], NOW)
    stray = (1 << 40).to_bytes(8, "big")  # a history row ahead of history_seq: appends fail
    with store.env.begin(write=True, db=store.dbs["history"]) as txn:
        txn.put(stray, b"\xc0")
    with pytest.raises(StoreError):
        store.apply([part(store, purchases(range(3, 6)))], NOW)
    with store.env.begin(write=True, db=store.dbs["history"]) as txn:
        txn.delete(stray)
    # The failed batch's events are new: not duplicates of a state never stored.
    assert store.apply([part(store, purchases(range(3, 6)))], NOW) == [(3, 0)]
    assert store.contact("ann")["state"]["loyalty"]["club"]["qualifying"] == 60


def _tables(store: ShardStore) -> dict[str, list[tuple[bytes, bytes]]]:
    store.checkpoint()  # logged states into the state table
    with store.env.begin() as txn:
        return {name: list(txn.cursor(store.dbs[name])) for name in ("state", "seen", "history", "ledger", "outbox")}


def test_held_states_store_exactly_what_decoding_every_batch_stores(tmp_path):
    """Three shards fed the same batches, holding no states, 3 of them and all of
    them, store the same bytes, across a definitions install whose counted
    history rewrites the stored states (held copies are dropped)."""
    stores = [ShardStore(tmp_path / f"s{n}", fsync=False, held_states=n) for n in (0, 3, 1000)]
    contacts = [f"c{i}" for i in range(8)]
    for s in stores:
        s.install(parse(RECENT, "recent.yaml")[0], 1)
    for round_ in range(6):
        if round_ == 3:
            for s in stores:
                s.install(parse(COUNTING, "counting.yaml")[0], 2)
        events = [{"id": f"r{round_}-{k}", "contact": contacts[(round_ * 3 + k % 4) % 8], "type": "purchase",
                   "attrs": {"total_amount": 10 + k}} for k in range(12)]
        events.append(dict(events[0]))  # a resend within the batch
        parts = [part(stores[0], events)]
        assert len({tuple(s.apply(parts, NOW + round_)) for s in stores}) == 1
        # Capacity 3: the batch's 4 contacts stay, the others were dropped. All held:
        # 3 new contacts a round, until the install drops them (its backfill
        # rewrote the stored states).
        assert (len(stores[1].held), len(stores[2].held)) == (4, min(8, 4 + 3 * (round_ % 3)))
    first = _tables(stores[0])
    assert first["state"] and all(_tables(s) == first for s in stores[1:])
    for s in stores:
        s.close()


# -- pipelined commits (submit / sync) ----------------------------------------------


def test_pipelined_batches_store_exactly_what_one_at_a_time_stores(tmp_path):
    """Batches submitted back to back (each computed while the one before commits,
    seen ids spilling past the 16 a state keeps) store the same bytes as batches
    applied one at a time, with and without held states."""
    stores = [ShardStore(tmp_path / f"s{n}", fsync=False, held_states=n) for n in (0, 2, 1000)]
    reference = ShardStore(tmp_path / "reference", fsync=False)
    for s in [*stores, reference]:
        s.install(parse(RECENT, "recent.yaml")[0], 1)
    batches = []
    for round_ in range(8):
        events = [{"id": f"r{round_}-{k}", "contact": f"c{(round_ + k) % 3}", "type": "purchase",
                   "attrs": {"total_amount": 10 + k}} for k in range(9)]
        events.append(dict(events[0]))  # a resend within the batch
        if round_:
            events.append({"id": "r0-1", "contact": "c1", "type": "purchase", "attrs": {"total_amount": 10}})
        batches.append([part(reference, events)])
    expected = [reference.apply(b, NOW + i) for i, b in enumerate(batches)]
    for s in stores:
        submitted = [s.submit(b, NOW + i) for i, b in enumerate(batches)]
        report = s.sync()
        assert [x.counts for x in submitted] == expected
        assert [x.number for x in submitted] == list(range(1, 9))
        assert report.durable == 8 and not report.failures
        assert all(not x.failures and x.durable <= x.number for x in submitted)
    first = _tables(reference)
    assert first["seen"] and all(_tables(s) == first for s in stores)
    for s in [*stores, reference]:
        s.close()


def test_a_failed_pipelined_commit_fails_the_batches_computed_on_top_of_it(store, tmp_path):
    """A batch computed while the one before it was still committing is refused
    when that one fails, and both are reported failed; the store then goes on from
    what LMDB holds, as if neither had been sent."""
    store.apply([part(store, purchases(range(3)))], NOW)
    stray = (1 << 40).to_bytes(8, "big")  # a history row ahead of history_seq: appends fail
    with store.env.begin(write=True, db=store.dbs["history"]) as txn:
        txn.put(stray, b"\xc0")
    # Hold the commit thread so that the second batch is computed on top of the
    # first, whose commit has not run yet (white box: the store's own executor).
    gate = threading.Event()
    store._committer.submit(gate.wait)
    first = store.submit([part(store, purchases(range(3, 6)))], NOW)
    second = store.submit([part(store, purchases(range(6, 9)))], NOW)
    assert (first.number, second.number, second.durable, second.failures) == (1, 2, 0, [])
    gate.set()
    report = store.sync()
    assert report.durable == 2
    assert [n for n, _ in report.failures] == [1, 2]
    assert "not after the last stored key" in report.failures[0][1]
    assert "an earlier batch failed" in report.failures[1][1]
    assert store.sync().failures == []  # reported once
    with store.env.begin(write=True, db=store.dbs["history"]) as txn:
        txn.delete(stray)
    # Neither batch is stored, and no state computed from them is held.
    again = store.submit([part(store, purchases(range(3, 9)))], NOW)
    assert again.counts == [(6, 0)]
    assert store.sync().durable == 3
    assert store.contact("ann")["state"]["loyalty"]["club"]["qualifying"] == 90
    reference = ShardStore(tmp_path / "reference", fsync=False)
    reference.install(parse(DEFS, "defs.yaml")[0], 1)
    reference.apply([part(reference, purchases(range(3)))], NOW)
    reference.apply([part(reference, purchases(range(3, 9)))], NOW)
    assert _tables(store) == _tables(reference)
    reference.close()


def test_an_undecodable_submitted_batch_changes_nothing(store):
    store.submit([part(store, purchases(range(3)))], NOW)
    with pytest.raises(_core.FrameError):
        store.submit([b"\x93\x01\x02"], NOW)
    report = store.sync()
    assert (report.durable, report.failures) == (1, [])
    assert store.status()["events"] == 3


def test_a_waited_submit_reports_its_own_batch_durable(store):
    report = store.submit([part(store, purchases(range(3)))], NOW, wait=True)
    assert (report.number, report.durable, report.counts, report.failures) == (1, 1, [(3, 0)], [])
    with store.env.begin(db=store.dbs["history"]) as txn:
        assert txn.stat(store.dbs["history"])["entries"] == 3


# -- the state log --------------------------------------------------------------------


_CRASHING_WRITER = """
import os, sys
import msgpack
from actors.store import ShardStore
from cairn.definitions import parse
store = ShardStore(sys.argv[1], fsync=True)
store.install(parse(sys.argv[2], "defs.yaml")[0], 1)
for b in range(4):
    events = [{"id": f"o{b}-{i}", "contact": f"c{i % 5}", "type": "purchase", "attrs": {"total_amount": 10}}
              for i in range(10)]
    frame = msgpack.packb({"op": "events", "seq": 1, "events": events})
    store.submit([store.catalog.split_frame(frame, 1, 0).batches[0][1]], 0)
store.sync()
assert store.timing["checkpoints"] == 0 and store.held.dirty == 5
os._exit(0)  # no close, no checkpoint: the states are only in the log
"""


def test_states_in_the_log_survive_a_crash_and_dedup_a_resend(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "shard"
    subprocess.run([sys.executable, "-c", _CRASHING_WRITER, str(folder), DEFS], check=True)
    store = ShardStore(folder, fsync=False)  # replays the log into the state table
    with store.env.begin() as txn:
        assert txn.stat(store.dbs["statelog"])["entries"] == 0
        assert txn.stat(store.dbs["state"])["entries"] == 5
    assert store.contact("c0")["state"]["loyalty"]["club"]["qualifying"] == 80
    events = [{"id": f"o{b}-{i}", "contact": f"c{i % 5}", "type": "purchase", "attrs": {"total_amount": 10}}
              for b in range(4) for i in range(10)]
    assert store.apply([part(store, events)], NOW) == [(0, 40)]
    store.close()


def test_a_shard_writes_changed_states_behind_and_checkpoints_them(make_store):
    store = make_store(DEFS)
    store.apply([part(store, purchases(range(3), contact=c)) for c in ("ann", "bob")], NOW)
    with store.env.begin() as txn:
        assert txn.stat(store.dbs["state"])["entries"] == 0  # only logged so far
        assert txn.stat(store.dbs["statelog"])["entries"] == 1  # one entry per batch, both states in it
    # Readers see the held copy of a changed state.
    assert store.contact("bob")["state"]["loyalty"]["club"]["qualifying"] == 30
    store.checkpoint()
    with store.env.begin() as txn:
        assert txn.stat(store.dbs["state"])["entries"] == 2
        assert txn.stat(store.dbs["statelog"])["entries"] == 0
    assert store.held.dirty == 0


def test_packed_rows_read_back_and_a_cut_entry_is_an_error_naming_the_row(store):
    store.apply([part(store, purchases(range(2), contact=c)) for c in ("ann", "bob")], NOW)
    rows = store.held.dirty_rows()
    packed = rows.packed()
    assert list(_core.unpack_rows(packed)) == list(rows) and len(rows) == 2
    with pytest.raises(_core.CairnError, match="packed rows: row 1: .* bytes left for a 3-byte key"):
        _core.unpack_rows(packed[:-1])


# -- the shard lane over pipelined stores -------------------------------------------


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


def lane_over(shard: Shard) -> ShardLane:
    # One slice per call: each frame below is its own batch.
    return ShardLane(apply=shard.apply, sync=shard.sync, clock=lambda: NOW, batch_events=1, max_in_flight=1)


async def send(lane: ShardLane, store: ShardStore, frames: list[range]) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = [{} for _ in frames]
    for seq, ids in enumerate(frames):
        ticket = Ticket(seq, 1, [], replies[seq].update)
        await lane.submit(part(store, purchases(ids)), len(ids), ticket)
    await lane.drain()
    return replies


def test_the_lane_acks_frames_once_durable_and_fails_them_when_their_commit_fails(store):
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


def test_the_lane_fails_batches_awaited_from_a_shard_that_is_gone(make_store):
    """A restarted shard actor numbers its batches afresh: the lane fails the ones
    it was still waiting for from the old one instead of taking the new one's
    report for them."""
    old, new = make_store(DEFS, "old"), make_store(DEFS, "new")
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
        await lane.submit(part(old, purchases(range(0, 3))), 3, Ticket(0, 1, [], replies[0].update))
        await lane.submit(part(new, purchases(range(3, 6))), 3, Ticket(1, 1, [], replies[1].update))
        await lane.drain()
        return replies

    try:
        lost, acked = asyncio.run(run())
    finally:
        gate.set()  # lets the old store close
    assert lost["op"] == "error" and "restarted" in lost["message"]
    assert (acked["op"], acked["accepted"]) == ("ack", 3)
