"""Nothing awarded twice across a crash: SIGKILL the engine after the acks, restart
on the same data, resend the whole stream; balances, rewards and the ledger are
those of one pass. Codes survive (the shard's reward secret is on disk)."""

from __future__ import annotations

import pytest

from cairn.client import Client

DEFS = """\
loyalty:
  - name: club
    currency: EUR
    rewards: [{name: big_spender}]
    rules:
      - {name: per_euro, template: points_per_amount, amount: 1, points: 1, kind: non_qualifying}
      - name: big
        event: purchase
        purchase: {spent: {op: gte, value: 100}}
        effects: [{reward: big_spender}]
"""


def _stream(contacts: list[str]) -> list[dict]:
    return [{"id": f"{c}-{k}", "contact": c, "type": "purchase", "ts": 1_795_424_400_000 + k,
             "attrs": {"total_amount": 60 * k, "currency": "EUR"}} for c in contacts for k in range(1, 4)]


@pytest.mark.slow
def test_nothing_is_awarded_twice_after_a_crash_and_a_resend(serve):
    contacts = [f"m{i}" for i in range(50)]
    engine = serve()
    with Client(host="127.0.0.1", port=engine.port) as c:
        c.request("apply", name="defs.yaml", definitions=DEFS)
        assert c.send(_stream(contacts)).accepted == 150
        before = {m: c.member(m) for m in contacts}
    engine.kill()

    engine = serve()
    with Client(host="127.0.0.1", port=engine.port) as c:
        result = c.send(_stream(contacts))
        assert (result.accepted, result.duplicates) == (0, 150)
        after = {m: c.member(m) for m in contacts}
    assert after == before
    club = after["m0"]["programs"]["club"]
    assert club["non_qualifying"] == 60 + 120 + 180
    assert [g["reward"] for g in club["rewards"]] == ["big_spender", "big_spender"]
    assert len(after["m0"]["ledger"]) == 3 + 2 + 1  # earns, grants, join
