"""Decision reasons are stored as compact traces and read back as the text they
always were (docs/architecture.md, "Explain").

The expected texts below were produced by the build that still stored reasons as
text, on the same events: what explain shows must not change.
"""

from __future__ import annotations

import msgpack
import pytest

from actors.store import ShardStore
from cairn import _core
from cairn.definitions import parse

NOW = 1_764_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR

DEFS = """
profile_fields: {tier: text, vip: bool}
segments:
  - name: regulars
    when: {event: purchase, within: 30d, count: {op: gte, value: 2}}
programs:
  - name: traced
    trigger: {event: purchase}
    entry: {concurrent: true}
    nodes:
      - id: big
        type: decision
        when:
          any:
            - all:
                - {attr: total_amount, op: gte, value: 100}
                - {profile: tier, op: equals, value: gold}
            - not: {attr: coupon, op: exists}
            - {segment: regulars}
        yes: route
        no: route
      - id: route
        type: splitter
        branches:
          - when: {event: view, same: product_id, within: 7d, count: {op: gt, value: 1}}
            next: pause
          - when: {attr: paid_at, op: within_last, value: 1h}
            next: pause
          - when: {profile: vip, op: is_true}
            next: pause
        else: pause
      - {id: pause, type: wait, duration: 1h, next: later}
      - id: later
        type: decision
        when:
          all:
            - {attr: total_amount, op: lt, value: 50}
            - {attr: store, op: in, value: [MI, RM]}
            - {profile: tier, op: exists}
        yes: mark
        no: awaiting
      - {id: mark, type: action, update_profile: {set: {tier: silver}}, next: after_mark}
      - id: after_mark
        type: decision
        when: {profile: tier, op: equals, value: silver}
        yes: awaiting
        no: awaiting
      - id: awaiting
        type: wait_for
        event: review
        timeout: 1d
        occurred: final
        not_occurred: final
      - id: final
        type: splitter
        branches:
          - when: {attr: paid_at, op: within_last, value: 1h}
            next: done
          - when: {not: {attr: total_amount, op: between, value: [10, 200]}}
            next: done
        else: done
      - {id: done, type: end}
  - name: reviews
    trigger: {event: review}
    nodes:
      - id: score
        type: decision
        when:
          any:
            - {attr: total_amount, op: gt, value: 500}
            - {profile: tier, op: starts_with, value: sil}
        yes: done
        no: done
      - {id: done, type: end}
"""


def _send(store: ShardStore, events: list[dict], now: int) -> None:
    split = store.catalog.split_frame(msgpack.packb({"op": "events", "seq": 1, "events": events}), 1, now)
    assert not split.rejected
    store.apply([split.batches[0][1]], now)


def _scenario(store: ShardStore) -> None:
    """Decisions of every kind, on entry and after a timer or an awaited event (whose
    attributes differ from the trigger's, which is what the decisions read)."""
    ev = [
        {"id": "v1", "contact": "ann", "type": "view", "ts": NOW - 2 * DAY, "attrs": {"product_id": "p1"}},
        {"id": "v2", "contact": "ann", "type": "view", "ts": NOW - DAY, "attrs": {"product_id": "p1"}},
        {"id": "o1", "contact": "ann", "type": "purchase", "ts": NOW,
         "attrs": {"total_amount": 148, "store": "MI", "product_id": "p1", "coupon": "X",
                   "paid_at": "2025-11-24T15:50:00Z"}},
        {"id": "o2", "contact": "ann", "type": "purchase", "ts": NOW,
         "attrs": {"total_amount": "abc", "store": "RM", "paid_at": 5}},
        {"id": "p1", "contact": "ann", "type": "$profile", "ts": NOW, "attrs": {"set": {"tier": "gold", "vip": True}}},
        {"id": "o3", "contact": "ann", "type": "purchase", "ts": NOW,
         "attrs": {"total_amount": 30, "store": "RM", "product_id": "p2", "coupon": None,
                   "paid_at": "2025-11-24T15:30:00Z"}},
        {"id": "o4", "contact": "bob", "type": "purchase", "ts": NOW,
         "attrs": {"total_amount": 30.5, "store": "TO", "coupon": "Y"}},
    ]
    _send(store, ev, NOW)
    assert store.fire_due(NOW + HOUR) == 4
    _send(store, [{"id": "r1", "contact": "ann", "type": "review", "ts": NOW + 2 * HOUR,
                   "attrs": {"total_amount": 999, "store": "XX", "paid_at": NOW + 2 * HOUR}}], NOW + 2 * HOUR)
    assert store.fire_due(NOW + 2 * DAY) == 1


def _reasons(store: ShardStore, contact: str) -> list[tuple[str, int, str, str, str]]:
    return [(row["id"], run[2], node, outcome, reason)
            for row in store.history(contact) for run in row["runs"] for node, outcome, reason in run[3]]


EXPECTED = [
    ('o1', 1, 'big', 'no', "attr total_amount = 148 gte 100: true; profile tier missing equals 'gold': false; attr coupon = 'X' exists: true; not => false; event purchase within 30d count = 1 gte 2: false; in segment regulars => false => no"),
    ('o1', 1, 'route', 'branch', 'event view same product_id within 7d count = 2 gt 1: true => branch 1'),
    ('o1', 1, 'pause', 'wait', 'wait 1h: until 2025-11-24T17:00:00Z'),
    ('o2', 2, 'big', 'yes', "attr total_amount = 'abc' gte 100: false (wrong type); attr coupon missing exists: false; not => true => yes"),
    ('o2', 2, 'route', 'else', 'event view same product_id within 7d (trigger has no product_id) count = 0 gt 1: false | attr paid_at = 5 within_last 1h: false | profile vip missing is_true: false => else'),
    ('o2', 2, 'pause', 'wait', 'wait 1h: until 2025-11-24T17:00:00Z'),
    ('o3', 3, 'big', 'yes', 'attr total_amount = 30 gte 100: false; attr coupon missing exists: false; not => true => yes'),
    ('o3', 3, 'route', 'branch', "event view same product_id within 7d count = 0 gt 1: false | attr paid_at = '2025-11-24T15:30:00Z' within_last 1h: true => branch 2"),
    ('o3', 3, 'pause', 'wait', 'wait 1h: until 2025-11-24T17:00:00Z'),
    ('$timer:1:1764003600000', 1, 'pause', 'woke', 'timer due 2025-11-24T17:00:00Z'),
    ('$timer:1:1764003600000', 1, 'later', 'no', 'attr total_amount = 148 lt 50: false => no'),
    ('$timer:1:1764003600000', 1, 'awaiting', 'waiting', 'waiting for review until 2025-11-25T17:00:00Z'),
    ('$timer:2:1764003600000', 2, 'pause', 'woke', 'timer due 2025-11-24T17:00:00Z'),
    ('$timer:2:1764003600000', 2, 'later', 'no', "attr total_amount = 'abc' lt 50: false (wrong type) => no"),
    ('$timer:2:1764003600000', 2, 'awaiting', 'waiting', 'waiting for review until 2025-11-25T17:00:00Z'),
    ('$timer:3:1764003600000', 3, 'pause', 'woke', 'timer due 2025-11-24T17:00:00Z'),
    ('$timer:3:1764003600000', 3, 'later', 'yes', "attr total_amount = 30 lt 50: true; attr store = 'RM' in ['MI', 'RM']: true; profile tier = 'gold' exists: true => yes"),
    ('$timer:3:1764003600000', 3, 'mark', 'updated', 'profile fields tier'),
    ('$timer:3:1764003600000', 3, 'after_mark', 'yes', "profile tier = 'silver' equals 'silver': true => yes"),
    ('$timer:3:1764003600000', 3, 'awaiting', 'waiting', 'waiting for review until 2025-11-25T17:00:00Z'),
    ('r1', 1, 'awaiting', 'occurred', "review 'r1' arrived"),
    ('r1', 1, 'final', 'else', "attr paid_at = '2025-11-24T15:50:00Z' within_last 1h: false | attr total_amount = 148 between [10, 200]: true; not => false => else"),
    ('r1', 1, 'done', 'end', ''),
    ('r1', 2, 'awaiting', 'occurred', "review 'r1' arrived"),
    ('r1', 2, 'final', 'branch', "attr paid_at = 5 within_last 1h: false | attr total_amount = 'abc' between [10, 200]: false (wrong type); not => true => branch 2"),
    ('r1', 2, 'done', 'end', ''),
    ('r1', 3, 'awaiting', 'occurred', "review 'r1' arrived"),
    ('r1', 3, 'final', 'else', "attr paid_at = '2025-11-24T15:30:00Z' within_last 1h: false | attr total_amount = 30 between [10, 200]: true; not => false => else"),
    ('r1', 3, 'done', 'end', ''),
    ('r1', 4, 'score', 'yes', 'attr total_amount = 999 gt 500: true => yes'),
    ('r1', 4, 'done', 'end', ''),
    ('o4', 1, 'big', 'no', "attr total_amount = 30.5 gte 100: false; attr coupon = 'Y' exists: true; not => false; event purchase within 30d count = 1 gte 2: false; in segment regulars => false => no"),
    ('o4', 1, 'route', 'else', 'event view same product_id within 7d (trigger has no product_id) count = 0 gt 1: false | attr paid_at missing within_last 1h: false | profile vip missing is_true: false => else'),
    ('o4', 1, 'pause', 'wait', 'wait 1h: until 2025-11-24T17:00:00Z'),
    ('$timer:1:1764003600000', 1, 'pause', 'woke', 'timer due 2025-11-24T17:00:00Z'),
    ('$timer:1:1764003600000', 1, 'later', 'no', "attr total_amount = 30.5 lt 50: true; attr store = 'TO' in ['MI', 'RM']: false => no"),
    ('$timer:1:1764003600000', 1, 'awaiting', 'waiting', 'waiting for review until 2025-11-25T17:00:00Z'),
    ('$timer:1:1764090000000', 1, 'awaiting', 'not_occurred', 'no matching review by 2025-11-25T17:00:00Z'),
    ('$timer:1:1764090000000', 1, 'final', 'else', 'attr paid_at missing within_last 1h: false | attr total_amount = 30.5 between [10, 200]: true; not => false => else'),
    ('$timer:1:1764090000000', 1, 'done', 'end', ''),
]


@pytest.fixture
def store(tmp_path):
    s = ShardStore(tmp_path / "shard", fsync=False)
    s.install(parse(DEFS, "traces.yaml")[0], 1)
    yield s
    s.close()



_DECIDED = ("yes", "no", "branch", "else")


def _stored(store: ShardStore) -> list[tuple[bytes, bytes]]:
    with store.env.begin() as txn:
        return list(txn.cursor(store.dbs["history"]))


def test_explain_reads_the_decision_reasons_it_always_showed(store):
    _scenario(store)
    assert _reasons(store, "ann") + _reasons(store, "bob") == EXPECTED


def test_decision_reasons_are_stored_as_traces_and_other_reasons_as_text(store):
    _scenario(store)
    decisions = others = 0
    for _key, raw in _stored(store):
        for run in msgpack.unpackb(raw)[6]:
            for node, outcome, reason in run[3]:
                if outcome in _DECIDED:
                    # [mode, observed values...]: mode 1 (values stored) after a wait.
                    assert isinstance(reason, list) and reason[0] in (0, 1), (node, reason)
                    decisions += 1
                else:
                    assert isinstance(reason, str), (node, reason)
                    others += 1
    assert decisions == sum(1 for step in EXPECTED if step[3] in _DECIDED) == 18
    assert others == len(EXPECTED) - decisions
    # The $timer row of ann's third run: 'later' read the trigger's attributes
    # (stored: mode 1), then the profile; 'after_mark' the profile it had just set.
    rows = {msgpack.unpackb(raw)[0]: msgpack.unpackb(raw) for _, raw in _stored(store)}
    steps = {(run[2], node): reason for run in rows["$timer:3:1764003600000"][6] for node, _, reason in run[3]}
    assert steps[(3, "later")] == [1, 30, "RM", "gold"]
    assert steps[(3, "after_mark")] == [1, "silver"]
    # An entered run reads its own row's attributes: only what the row lacks is kept.
    steps = {(run[2], node): reason for run in rows["o2"][6] for node, _, reason in run[3]}
    assert steps[(2, "big")] == [0]
    assert steps[(2, "route")] == [0, None, False, None]  # no same key, within_last result, vip


def test_text_is_rendered_only_when_read_and_rows_shrink(store):
    _scenario(store)
    stored = _stored(store)
    text_rows = [store.catalog.named_history(raw, int.from_bytes(key, "big")) for key, raw in stored]
    assert sum(map(len, (raw for _, raw in stored))) * 2 < sum(map(len, text_rows))


def test_rows_with_text_reasons_still_read(store):
    """Rows stored by earlier builds (text reasons, named maps) read unchanged,
    with or without the catalog, next to rows with traces."""
    _scenario(store)
    before = store.history("ann")
    with store.env.begin(write=True) as txn:
        for key, raw in list(txn.cursor(store.dbs["history"])):
            if int.from_bytes(key, "big") % 2:
                text = store.catalog.named_history(raw, int.from_bytes(key, "big"))
                assert _core.named_history(text, int.from_bytes(key, "big")) == text
                txn.put(key, text, db=store.dbs["history"])
    assert store.history("ann") == before
    assert _reasons(store, "ann") + _reasons(store, "bob") == EXPECTED


def test_a_trace_without_its_program_reads_as_a_clear_fallback(store):
    _scenario(store)
    key, raw = next((k, r) for k, r in _stored(store) if msgpack.unpackb(r)[0] == "o1")
    seq = int.from_bytes(key, "big")
    cases = [(_core.named_history(raw, seq), "read without the definitions"),
             (_core.empty_catalog().named_history(raw, seq), "program 'traced' version 1 is not in the definitions")]
    for named, why in cases:
        (node, outcome, reason), *_ = msgpack.unpackb(named)["runs"][0][3]
        assert (node, outcome, reason) == ("big", "no", f"decision trace [0, nil, 1]: {why}")
    with pytest.raises(_core.CairnError, match="history row 7"):
        store.catalog.named_history(b"\x93\x01\x02\x03", 7)


def test_the_same_events_store_the_same_bytes(tmp_path):
    stored = []
    for name in ("a", "b"):
        s = ShardStore(tmp_path / name, fsync=False)
        s.install(parse(DEFS, "traces.yaml")[0], 1)
        _scenario(s)
        stored.append(_stored(s))
        s.close()
    assert stored[0] == stored[1]
