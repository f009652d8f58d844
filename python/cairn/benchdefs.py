"""Synthetic definitions for benchmarks: N programs and M loyalty rules.

The mix is documented in docs/benchmarks.md and shared by ``cairn bench`` and the
pytest-benchmark suite in benches/, so both measure the same load.
"""

from __future__ import annotations

from typing import Any

import msgpack

#: Event types the programs and rules spread over (the load generator's "mixed" mix).
EVENT_TYPES = ["purchase", "view", "cart_update", "store_visit", "app_open",
               "email_click", "category_view", "product_review", "email_open", "app_install"]
STORES = ["MI", "RM", "TO", "NA"]


def bench_definitions(programs: int = 100, rules: int = 100) -> dict[str, Any]:
    """A definitions document with ``programs`` programs and ``rules`` loyalty rules.

    Program i triggers on ``EVENT_TYPES[i % 10]`` filtered on one store, decides on
    the amount and a profile field, and sends an in-app message or ends. Rule j
    watches ``EVENT_TYPES[j % 10]`` with an amount threshold spread over 0..990, so a
    purchase of 0..249 EUR earns on about a quarter of the purchase rules.
    """
    return {
        "interaction_types": [
            {"name": "store_visit", "channel": "store", "source": "api"},
            {"name": "product_review", "channel": "web", "source": "web_tracker"},
        ],
        "programs": [_program(i) for i in range(programs)],
        "loyalty": [{"name": "bench_club", "currency": "EUR", "join": "auto",
                     "rules": [_rule(j) for j in range(rules)]}] if rules else [],
    }


def _program(i: int) -> dict[str, Any]:
    return {
        "name": f"program_{i:04d}",
        "trigger": {"event": EVENT_TYPES[i % len(EVENT_TYPES)],
                    "filter": {"attr": "store_code", "op": "equals", "value": STORES[i % len(STORES)]}},
        "nodes": [
            {"id": "check", "type": "decision",
             "when": {"any": [{"attr": "total_amount", "op": "gte", "value": (i * 7) % 250},
                              {"profile": "tag", "op": "equals", "value": "vip"}]},
             "yes": "notify", "no": "done"},
            {"id": "notify", "type": "action",
             "send": {"channel": "in_app", "text": "Thanks for {{ event.total_amount }} EUR"}, "next": "done"},
            {"id": "done", "type": "end"},
        ],
    }


def _rule(j: int) -> dict[str, Any]:
    return {
        "name": f"rule_{j:04d}",
        "event": EVENT_TYPES[j % len(EVENT_TYPES)],
        "when": {"attr": "total_amount", "op": "gte", "value": (j * 10) % 1000},
        "effects": [{"credit": {"points": 1 + j % 5, "kind": "qualifying" if j % 2 else "non_qualifying"}}],
    }


def packed_definitions(programs: int = 100, rules: int = 100) -> bytes:
    """``bench_definitions`` as the msgpack document ``Catalog.compile`` takes."""
    return msgpack.packb(bench_definitions(programs, rules))


#: Event types the journey benchmark spreads 1,000 programs over (10 per type).
JOURNEY_TYPES = [f"evt_{k:02d}" for k in range(100)]


def journey_definitions(programs: int = 1000) -> dict[str, Any]:
    """``programs`` programs of mixed node types over ``JOURNEY_TYPES``.

    Program i triggers on ``JOURNEY_TYPES[i % 100]`` filtered on one of four stores
    (so an event enters 2.5 of the 10 programs watching its type) and, by i % 4:
    decides on the contact's history (an event of another type in 7 days) and the
    amount, then messages; splits on the amount, waits a day, then messages; splits
    at random with a control group and updates the profile; or waits up to two days
    for an event with the same order_id, messaging when it does not come.
    """
    return {"programs": [_journey(i) for i in range(programs)]}


def _journey(i: int) -> dict[str, Any]:
    types = JOURNEY_TYPES
    kind = types[i % len(types)]
    store = STORES[i % len(STORES)]
    send = {"id": "send", "type": "action", "send": {"channel": "in_app", "text": "Hi {{ event.amount }}"},
            "next": "done"}
    end = {"id": "done", "type": "end"}
    shape = i % 4
    if shape == 0:
        nodes = [{"id": "check", "type": "decision",
                  "when": {"all": [{"event": types[(i + 1) % len(types)], "within": "7d"},
                                   {"attr": "amount", "op": "gte", "value": (i * 7) % 100}]},
                  "yes": "send", "no": "done"}, send, end]
    elif shape == 1:
        nodes = [{"id": "split", "type": "splitter",
                  "branches": [{"when": {"attr": "amount", "op": "gte", "value": 80}, "next": "later"},
                               {"when": {"attr": "amount", "op": "lt", "value": 20}, "next": "send"}],
                  "else": "done"},
                 {"id": "later", "type": "wait", "duration": "1d", "next": "send"}, send, end]
    elif shape == 2:
        nodes = [{"id": "ab", "type": "random", "control": 10,
                  "branches": [{"weight": 1, "next": "tag"}, {"weight": 1, "next": "done"}]},
                 {"id": "tag", "type": "action", "update_profile": {"set": {f"seen_{i % 10}": True}},
                  "next": "done"}, end]
    else:
        nodes = [{"id": "follow", "type": "wait_for", "event": types[(i + 2) % len(types)], "same": "order_id",
                  "timeout": "2d", "occurred": "done", "not_occurred": "send"}, send, end]
    return {"name": f"journey_{i:04d}", "trigger": {"event": kind, "filter": {"attr": "store", "op": "equals",
                                                                              "value": store}},
            "nodes": nodes}


#: Product categories and stores of the loyalty benchmark's receipts.
CATEGORIES = ["coffee", "winter", "shoes", "bags", "food", "toys", "books", "garden"]
LOYALTY_STORES = [f"S{k:02d}" for k in range(20)]
BRANDS = 50


def loyalty_definitions(rules: int = 1000) -> dict[str, Any]:
    """One tiered loyalty program with ``rules`` rules over ``EVENT_TYPES``.

    Rule j watches ``EVENT_TYPES[j % 10]`` (so 100 of 1,000 watch purchases), in
    the tiers of j % 3 and up, in one of 20 stores. Purchase rules, by (j // 10) %
    5: points per amount spent on one brand's lines; spent in one transaction at or
    above a threshold; a cumulative "every 200 spent" reward; a quantity in one
    transaction, at most twice a day; a x2 multiplier on one category. The other
    rules credit points when an attribute matches, at most 5 times a week. As in a
    real program, a purchase is looked at by ~100 rules and a few apply.
    """
    def rule(j: int) -> dict[str, Any]:
        kind = EVENT_TYPES[j % len(EVENT_TYPES)]
        store = LOYALTY_STORES[(j // 10) % len(LOYALTY_STORES)]
        base = {"name": f"rule_{j:04d}", "tiers": ["bronze", "silver", "gold"][j % 3:]}
        if kind != "purchase":
            return base | {"event": kind, "when": {"attr": "store_code", "op": "equals", "value": store},
                           "limit": {"times": 5, "per": "week"},
                           "effects": [{"credit": {"points": 1 + j % 5, "kind": "non_qualifying"}}]}
        shape = (j // 10) % 5
        if shape == 0:
            return base | {"event": "purchase", "purchase": {"lines": {"brand": [f"brand-{j % BRANDS}"]},
                                                             "every_spent_per_transaction": 1},
                           "effects": [{"credit": {"points": 1, "kind": "qualifying"}}]}
        if shape == 1:
            return base | {"event": "purchase", "purchase": {"stores": [store], "spent": {"op": "gte", "value": 20 + j % 200}},
                           "effects": [{"credit": {"points": 10, "kind": "non_qualifying"}}]}
        if shape == 2:
            return base | {"event": "purchase", "purchase": {"stores": [store], "every_spent": 200},
                           "effects": [{"reward": "voucher"}]}
        if shape == 3:
            return base | {"event": "purchase", "purchase": {"stores": [store], "quantity": {"op": "gte", "value": 3}},
                           "limit": {"times": 2, "per": "day"},
                           "effects": [{"credit": {"points": 5, "kind": "qualifying"}}]}
        category = CATEGORIES[j % len(CATEGORIES)]
        return base | {"event": "purchase",
                       "purchase": {"stores": [store], "lines": {"category": [category]}, "spent": {"op": "gte", "value": 20}},
                       "effects": [{"multiply": {"factor": 2, "kind": "qualifying"}}]}

    return {
        "loyalty": [{
            "name": "bench_club", "currency": "EUR",
            "tiers": [{"name": "bronze", "threshold": 0}, {"name": "silver", "threshold": 500},
                      {"name": "gold", "threshold": 2000}],
            "rewards": [{"name": "voucher", "expires": "30d"}],
            "rules": [rule(j) for j in range(rules)],
        }],
    }


def purchase_lines(i: int) -> list[dict[str, Any]]:
    """The 5 receipt lines of the loyalty benchmark's ``i``-th purchase."""
    return [{"product": f"sku-{(i * 7 + k) % 500}", "category": CATEGORIES[(i + k) % len(CATEGORIES)],
             "brand": f"brand-{(i * 3 + k * 11) % BRANDS}", "quantity": 1 + (i + k) % 3,
             "total_line_amount": 5 + (i * 13 + k * 7) % 60}
            for k in range(5)]
