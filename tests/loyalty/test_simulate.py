"""`cairn simulate`: a candidate rule set replayed over stored history on every
shard, against the live rules, writing nothing."""

from __future__ import annotations

from typing import Any

from cairn.client import CairnServerError

LIVE = """\
loyalty:
  - name: club
    currency: EUR
    tiers: [{name: base, threshold: 0}, {name: gold, threshold: 300}]
    rules:
      - {name: per_euro, template: points_per_amount, tiers: [base, gold], amount: 1, points: 1, kind: qualifying}
"""

CANDIDATE = """\
loyalty:
  - name: club
    currency: EUR
    tiers: [{name: base, threshold: 0}, {name: gold, threshold: 300}]
    rewards: [{name: thanks}]
    rules:
      - {name: per_euro, template: points_per_amount, tiers: [base, gold], amount: 1, points: 2, kind: qualifying}
      - name: big
        event: purchase
        tiers: [base, gold]
        purchase: {spent: {op: gte, value: 100}}
        effects: [{reward: thanks}]
"""


def test_simulate_reports_both_rule_sets_and_changes_nothing(loyalty: Any) -> None:
    loyalty.apply(LIVE)
    contacts = [f"m{i}" for i in range(30)]
    for c in contacts:
        loyalty.send(c, "purchase", total_amount=50, currency="EUR")
        loyalty.send(c, "purchase", total_amount=150 if c < "m2" else 20, currency="EUR")
    before = {c: loyalty.member(c) for c in contacts}

    found = loyalty.client.simulate(CANDIDATE, 0, name="candidate.yaml", limit=5)
    club = found["programs"]["club"]
    # m0, m1 and m10..m19 (names below "m2") spent 150 + 50; the others 50 + 20.
    spent = {c: 50 + (150 if c < "m2" else 20) for c in contacts}
    assert club["live"]["qualifying"] == sum(spent.values())
    assert club["candidate"]["qualifying"] == 2 * sum(spent.values())
    assert club["candidate"]["rewards"] == sum(1 for c in contacts if c < "m2")
    assert club["live"]["rewards"] == 0
    # Doubled points take the 200-EUR spenders (m0, m1, m10..m19) to gold.
    assert club["tiers"] == {"live": {"base": 30}, "candidate": {"base": 18, "gold": 12}}
    assert found["events"] == 60 and found["changed"] == 30 and len(found["members"]) == 5
    top = found["members"][0]
    assert top["contact"] in spent and top["delta"]["qualifying"] == spent[top["contact"]]
    # Nothing was written: members are exactly as before.
    assert {c: loyalty.member(c) for c in contacts} == before


def test_simulate_rejects_an_invalid_rule_set(loyalty: Any) -> None:
    loyalty.apply(LIVE)
    try:
        loyalty.client.simulate("loyalty: [{name: x, rules: [{name: r, event: purchase, effects: []}]}]", 0)
    except CairnServerError as exc:
        assert "a rule needs at least one effect" in exc.message
    else:
        raise AssertionError("an invalid rule set must be refused")
    for text, says in (("loyalty: [unclosed", "not valid YAML"), ("programs: []", "needs loyalty programs")):
        try:
            loyalty.client.simulate(text, 0)
        except CairnServerError as exc:
            assert says in exc.message
        else:
            raise AssertionError(f"{text!r} must be refused")
