"""Property tests of the loyalty ledger through the core's public API: under random
streams of purchases, returns, spends, resends (duplicate ids) and clock jumps,
every member's balances equal the sums of its ledger rows, and restrictions are
never exceeded. The shard is an in-memory stand-in for the store's tables (the
same calls `actors/store.py` makes), so hypothesis can run hundreds of streams."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn import _core
from cairn.definitions import parse

T0 = 1_795_424_400_000
DAY = 86_400_000

RULES = """\
loyalty:
  - name: shop
    currency: EUR
    pending: 3d
    expiry: {months: 1}
    tiers:
      - {name: base, threshold: 0}
      - {name: plus, threshold: 200}
    rules:
      - {name: per_euro, template: points_per_amount, tiers: [base, plus], amount: 1, points: 1,
         kind: non_qualifying}
      - {name: tier_points, template: points_per_amount, tiers: [base, plus], amount: 2, points: 1,
         kind: qualifying}
      - name: daily_bonus
        event: purchase
        tiers: [base, plus]
        limit: {times: 2, per: day}
        effects: [{credit: {points: 7, kind: qualifying}}]
      - name: plus_double
        event: purchase
        tiers: [plus]
        effects: [{multiply: {factor: 2, kind: non_qualifying}}]
      - name: spend
        event: points_spent
        tiers: [base, plus]
        effects: [{debit: {points: 40, kind: non_qualifying}}]
"""


class MemoryShard:
    """States, seen ids, timers and the ledger of one shard, in dicts."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self.states: dict[bytes, bytes] = {}
        self.seen: dict[bytes, bytes] = {}
        self.timers: set[bytes] = set()
        #: (contact, entry): an entry's contact is that of the history row of its row key's seq.
        self.ledger: list[tuple[str, dict[str, Any]]] = []
        self.next_seq = 1

    def _apply(self, batch: Any, now: int) -> None:
        states = [(k, self.states[k]) for k in batch.state_keys() if k in self.states]
        r = self.catalog.apply(batch, states, lambda keys: [(k, self.seen[k]) for k in keys if k in self.seen],
                               now, self.next_seq)
        self.next_seq = r.next_seq
        self.states.update(r.states)
        self.seen.update(r.seen)
        self.timers.update(r.timers)
        self.timers.difference_update(r.timer_deletes)
        contact_of = {key: msgpack.unpackb(_core.named_history(raw, int.from_bytes(key, "big")))["contact"]
                      for key, raw in r.history}
        self.ledger.extend((contact_of[k[:8]], entry) for k, v in r.ledger for entry in msgpack.unpackb(_core.named_ledger(v)))

    def send(self, events: list[dict[str, Any]], now: int) -> None:
        split = self.catalog.split_frame(msgpack.packb({"op": "events", "seq": 1, "events": events}), 1, now)
        assert not split.rejected, split.rejected
        self._apply(_core.Batch([part for _, part, _ in split.batches]), now)

    def fire(self, now: int) -> None:
        due = sorted(k for k in self.timers if int.from_bytes(k[:8], "big") <= now)
        if due:
            self._apply(_core.Batch.timers(due), now)

    def member(self, contact: str) -> dict[str, Any] | None:
        raw = self.states.get(contact.encode())
        if raw is None:
            return None
        return msgpack.unpackb(_core.named_state(contact, raw), strict_map_key=False)["loyalty"].get("shop")


def _catalog() -> Any:
    packed, _ = parse(RULES, "rules.yaml")
    return _core.Catalog.compile(packed, 1, None, b"k" * 32)


CONTACTS = ["ann", "bob"]
step = st.one_of(
    st.tuples(st.just("purchase"), st.sampled_from(CONTACTS), st.integers(1, 400)),
    st.tuples(st.just("return"), st.sampled_from(CONTACTS), st.integers(0, 30)),
    st.tuples(st.just("spend"), st.sampled_from(CONTACTS), st.just(0)),
    st.tuples(st.just("resend"), st.sampled_from(CONTACTS), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.just(""), st.integers(1, 20 * 24)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40))
def test_balances_are_ledger_sums_and_limits_hold(steps: list[tuple[str, str, int]]) -> None:
    shard = MemoryShard(_catalog())
    now, sent = T0, []
    for n, (kind, contact, x) in enumerate(steps):
        if kind == "wait":
            now += x * 3_600_000
            shard.fire(now)
            continue
        if kind == "resend":
            if sent:
                shard.send([sent[x % len(sent)]], now)  # a duplicate: changes nothing
            continue
        if kind == "purchase":
            ev = {"id": f"e{n}", "contact": contact, "type": "purchase", "ts": now,
                  "attrs": {"total_amount": x, "currency": "EUR", "receipt_id": f"r{n}"}}
        elif kind == "return":
            receipts = [e for e in sent if e["type"] == "purchase" and e["contact"] == contact]
            if not receipts:
                continue
            target = receipts[x % len(receipts)]
            ev = {"id": f"e{n}", "contact": contact, "type": "purchase_return", "ts": now,
                  "attrs": {"receipt": target["attrs"]["receipt_id"], "total_amount": (x % 3) * 50}}
        else:
            ev = {"id": f"e{n}", "contact": contact, "type": "points_spent", "ts": now, "attrs": {}}
        sent.append(ev)
        shard.send([ev], now)

    bonus_days: Counter[tuple[str, int]] = Counter()
    for contact in CONTACTS:
        m = shard.member(contact)
        mine = [r for c, r in shard.ledger if c == contact]
        if m is None:
            assert not [r for r in mine if r["delta"] or r["pending_delta"]]
            continue
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in mine:
            sums[r["kind"]][0] += r["delta"]
            sums[r["kind"]][1] += r["pending_delta"]
            if r["rule"] == "daily_bonus" and r["entry"] == "earn":
                bonus_days[(contact, (r["ts"] - T0) // DAY)] += 1
        assert sums["qualifying"] == [m["qualifying"], m["pending"][0]]
        assert sums["non_qualifying"] == [m["non_qualifying"], m["pending"][1]]
        assert m["qualifying"] >= 0 and m["non_qualifying"] >= 0
    assert all(n <= 2 for n in bonus_days.values()), bonus_days

