"""Definitions, programs and loyalty end to end: socket -> Ray shards -> LMDB -> outbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.client import CairnServerError, Client
from cairn.definitions import DefinitionsInvalid
from cairn.render import collect_runs

DEFS = """
profile_fields: {email: text, email_opt_in: bool, phone: text, first_name: text, tag: text, gender: text}
interaction_types:
  - {name: store_visit, channel: store, source: api, attributes: {store_code: text}}
programs:
  - name: milan
    trigger: {event: purchase, filter: {attr: store_code, op: equals, value: MI}}
    nodes:
      - id: vip
        type: decision
        when:
          all:
            - {attr: total_amount, op: gte, value: 100}
            - {profile: tag, op: equals, value: top spender}
            - {profile: gender, op: equals, value: female}
        yes: sms
        no: mail
      - id: sms
        type: action
        send: {channel: sms, text: "Ciao {{ profile.first_name }}, {{ event.total_amount }} EUR in {{ event.store_code }}"}
        next: done
      - id: mail
        type: action
        send: {channel: email, subject: "Thanks {{ profile.first_name }}", text: "You spent {{ event.total_amount }}"}
        next: done
      - id: done
        type: end
loyalty:
  - name: club
    currency: EUR
    join: auto
    rules:
      - name: big_basket
        event: purchase
        when: {attr: total_amount, op: gte, value: 100}
        effects: [{credit: {points: 50, kind: non_qualifying}}]
"""

T0 = 1_764_000_000_000


def profile(i: int, contact: str, **fields: object) -> dict[str, object]:
    return {"id": f"p{i}", "contact": contact, "type": "$profile", "ts": T0 + i, "attrs": {"set": fields}}


def purchase(i: int, contact: str, amount: float, store: str = "MI") -> dict[str, object]:
    return {"id": f"o{i}", "contact": contact, "type": "Purchase", "ts": T0 + 1000 + i,
            "attrs": {"total_amount": amount, "store_code": store, "currency": "EUR"}}


def sent(engine) -> list[dict]:
    sink = Path(engine.config.data_dir) / "sent.ndjson"
    return [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []


def test_program_branches_on_event_and_profile_and_sends(engine):
    engine.apply(DEFS)
    with Client(host=engine.host, port=engine.port) as client:
        result = client.send([
            profile(1, "ann", first_name="Ann", tag="top spender", gender="female", phone="+39333", email="a@x.it"),
            profile(2, "bob", first_name="Bob", tag="top spender", gender="male", email="bob@x.it",
                    email_opt_in=True),
            profile(3, "cy", first_name="Cy"),  # no address at all
            purchase(1, "ann", 240.0),
            purchase(2, "bob", 240.0),
            purchase(3, "cy", 240.0),
            purchase(4, "ann", 300.0, store="RM"),  # trigger filter: not Milan
        ])
    assert (result.accepted, result.duplicates, result.rejected) == (7, 0, [])
    engine.flush()
    messages = {(m["contact"], m["channel"]): m for m in sent(engine)}
    assert set(messages) == {("ann", "sms"), ("bob", "email")}
    assert messages[("ann", "sms")]["to"] == "+39333"
    assert messages[("ann", "sms")]["message"]["text"] == "Ciao Ann, 240.0 EUR in MI"
    assert messages[("bob", "email")]["message"]["subject"] == "Thanks Bob"

    ann = engine.contact("ann")
    (run,) = [r for r in collect_runs(ann) if r["program"] == "milan"]
    assert run["event_id"] == "o1"
    assert [(s["node"], s["outcome"]) for s in run["steps"]] == [("vip", "yes"), ("sms", "sent"), ("done", "end")]
    assert "top spender" in run["steps"][0]["reason"]

    (run,) = collect_runs(engine.contact("cy"))
    assert [(s["node"], s["outcome"]) for s in run["steps"]][:2] == [("vip", "no"), ("mail", "skipped")]
    assert "email" in run["steps"][1]["reason"]


def test_loyalty_rule_credits_points_with_ledger(engine):
    engine.apply(DEFS)
    with Client(host=engine.host, port=engine.port) as client:
        client.send([purchase(1, "ann", 99.99), purchase(2, "ann", 100), purchase(3, "ann", 250.5)])
    found = engine.contact("ann")
    assert found["state"]["loyalty"]["club"]["non_qualifying"] == 100
    ledger = found["ledger"]
    assert [(r["rule"], r["entry"], r["delta"], r["balance"], r["event_id"]) for r in ledger] == [
        ("big_basket", "earn", 50, 50, "o2"), ("", "join", 0, 0, "o2"), ("big_basket", "earn", 50, 100, "o3")]
    assert sum(r["delta"] for r in ledger) == found["state"]["loyalty"]["club"]["non_qualifying"]


def test_other_currency_does_not_earn(engine):
    engine.apply(DEFS)
    usd = purchase(1, "ann", 500) | {"attrs": {"total_amount": 500, "currency": "USD", "store_code": "RM"}}
    with Client(host=engine.host, port=engine.port) as client:
        client.send([usd])
    found = engine.contact("ann")
    # The ledger explains why nothing was earned: one zero row naming the currency.
    assert [(r["delta"], r["balance"]) for r in found["ledger"]] == [(0, 0)]
    assert "USD" in found["ledger"][0]["reason"] and "EUR" in found["ledger"][0]["reason"]
    assert found["state"].get("loyalty", {}).get("club", {}).get("non_qualifying", 0) == 0


def test_invalid_definitions_name_file_and_path_and_change_nothing(engine):
    first = engine.apply(DEFS)
    bad = DEFS.replace("op: gte, value: 100}\n            - {profile: tag",
                       "op: starts_with, value: 100}\n            - {profile: tag")
    bad = bad.replace("yes: sms", "yes: nowhere")
    with pytest.raises(DefinitionsInvalid) as info:
        engine.apply(bad, "shop.yaml")
    text = str(info.value)
    assert "shop.yaml" in text
    assert "programs[0].nodes[0]" in text
    assert "nowhere" in text
    assert len(info.value.problems) >= 2
    assert engine.status()["definitions_version"] == first["version"]


def test_bad_yaml_and_bad_template_are_reported(engine):
    with pytest.raises(DefinitionsInvalid, match="line"):
        engine.apply("programs: [\n", "broken.yaml")
    with pytest.raises(DefinitionsInvalid, match=r"send\.text.*template"):
        engine.apply(DEFS.replace("Ciao {{ profile.first_name }}", "Ciao {{ profile.first_name "), "t.yaml")


def test_apply_over_the_socket_reports_errors(engine):
    with Client(host=engine.host, port=engine.port) as client:
        reply = client.request("apply", name="ok.yaml", definitions=DEFS)
        assert reply["op"] == "applied" and reply["summary"]["programs"] == ["milan"]
        with pytest.raises(CairnServerError) as info:
            client.request("apply", name="dup.yaml", definitions=DEFS + """
interaction_types:
  - {name: Store_Visit, channel: store, source: api}
  - {name: store_visit, channel: store, source: api}
""")
    assert info.value.code == "invalid"
    assert "dup.yaml" in info.value.message


def test_strict_types_reject_unknown_event_types(engine):
    engine.apply("strict_types: true\n" + DEFS)
    with Client(host=engine.host, port=engine.port) as client:
        result = client.send([
            {"id": "1", "contact": "a", "type": "store_visit", "attrs": {"store_code": "MI"}},
            {"id": "2", "contact": "a", "type": "STORE_VISIT", "attrs": {"store_code": "MI"}},
            {"id": "3", "contact": "a", "type": "gym_checkin"},
            {"id": "4", "contact": "a", "type": "store_visit", "attrs": {"store_code": 12}},
        ])
    assert result.accepted == 2
    codes = {r["index"]: r["code"] for r in result.rejected}
    assert codes == {2: "unknown_type", 3: "invalid"}


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "one_at_a_time"])
def test_restart_finds_everything_acked(make_engine, pipelined):
    first = make_engine(pipelined_commits=pipelined)
    first.apply(DEFS)
    with Client(host=first.host, port=first.port) as client:
        client.send([purchase(i, f"c{i % 7}", 150) for i in range(200)])
    before = {c: first.contact(f"c{c}") for c in range(7)}
    first.stop()
    second = make_engine(pipelined_commits=pipelined)
    assert second.status()["definitions_version"] == 1
    assert second.status()["totals"]["events"] == 200
    for c in range(7):
        assert second.contact(f"c{c}") == before[c]
    with Client(host=second.host, port=second.port) as client:
        again = client.send([purchase(i, f"c{i % 7}", 150) for i in range(200)])
    assert (again.accepted, again.duplicates) == (0, 200)


def test_a_killed_shard_actor_restarts_with_its_data(engine):
    import os
    import time

    import ray

    engine.apply(DEFS)
    events = [purchase(i, f"c{i}", 150) for i in range(40)]
    with Client(host=engine.host, port=engine.port) as client:
        assert client.send(events).accepted == 40
    before = {f"c{i}": engine.contact(f"c{i}") for i in range(40)}
    actor = engine.engine.actors[0]

    def pid() -> int:
        return ray.get(actor.__ray_call__.remote(lambda _self: os.getpid()), timeout=10)

    old_pid = pid()
    ray.kill(actor, no_restart=False)  # the process dies; Ray starts a new one
    deadline = time.monotonic() + 60
    while True:
        try:
            if pid() != old_pid:
                break
        except ray.exceptions.RayError:
            pass  # dead or restarting
        assert time.monotonic() < deadline, "the shard actor did not come back"
        time.sleep(0.2)
    assert {f"c{i}": engine.contact(f"c{i}") for i in range(40)} == before
    with Client(host=engine.host, port=engine.port) as client:
        again = client.send(events + [purchase(99, "c99", 150)])
    assert (again.accepted, again.duplicates) == (1, 40)
    assert engine.status()["definitions_version"] == 1


def test_shard_count_is_fixed_by_the_data_folder(make_engine, tmp_path):
    from cairn.layout import LayoutError, open_layout

    open_layout(tmp_path / "d", 3)
    with pytest.raises(LayoutError, match="--shards 3"):
        open_layout(tmp_path / "d", 2)
