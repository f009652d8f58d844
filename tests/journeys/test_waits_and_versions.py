"""Wait-and-check correlated with the trigger, goals, entry rules, random splits,
versioning and `cairn programs` counts, end to end on a manual clock."""

from __future__ import annotations

CART = """\
interaction_types:
  - {name: cart_update, channel: web, source: web_tracker, attributes: {cart_id: text}}
programs:
  - name: cart_reminder
    trigger: {event: cart_update}
    entry: {concurrent: true}       # one reminder per cart
    nodes:
      - id: bought
        type: wait_for
        event: purchase
        same: cart_id               # this cart's purchase, not any purchase
        timeout: 1d
        occurred: done
        not_occurred: remind
      - id: remind
        type: action
        send: {channel: push, text: "Your cart {{ event.cart_id }} is waiting."}
        next: done
      - id: done
        type: end
"""


def test_correlated_wait_cancels_only_the_purchased_carts_reminder(journeys):
    j = journeys
    j.apply(CART)
    j.send("ann", "cart_update", cart_id="C1")
    j.send("ann", "cart_update", cart_id="C2")
    j.advance("2h")
    j.send("ann", "purchase", cart_id="C1", total_amount=30)
    assert j.messages() == []
    assert j.advance("22h") == 1  # C2's timeout; C1's timer went with its purchase
    assert j.messages() == [("ann", "push", "remind", "Your cart C2 is waiting.")]
    c1, c2 = j.explain("ann", "cart_reminder")
    assert j.path(c1) == [("bought", "waiting"), ("bought", "occurred"), ("done", "end")]
    assert c1["steps"][1]["event_type"] == "purchase"
    assert "waiting for purchase with cart_id 'C1'" in c1["steps"][0]["reason"]
    assert j.path(c2) == [("bought", "waiting"), ("bought", "not_occurred"), ("remind", "sent"), ("done", "end")]
    assert j.engine.status()["totals"]["timers"] == 0


GOAL = """\
programs:
  - name: winback
    trigger: {event: app_open}
    goal: {event: purchase, filter: {attr: total_amount, op: gte, value: 10}}
    nodes:
      - {id: pause, type: wait, duration: 2d, next: nudge}
      - {id: nudge, type: action, send: {channel: push, text: "We miss you"}, next: pause_again}
      - {id: pause_again, type: wait, duration: 2d, next: nudge_again}
      - {id: nudge_again, type: action, send: {channel: push, text: "Still here"}, next: done}
      - {id: done, type: end}
"""


def test_goal_takes_the_contact_out_wherever_it_is(journeys):
    j = journeys
    j.apply(GOAL)
    j.send("ann", "app_open")
    j.send("bob", "app_open")
    j.advance("2d")  # both nudged once, both waiting at pause_again
    j.send("ann", "purchase", total_amount=5)  # below the goal's filter: still inside
    j.send("bob", "purchase", total_amount=50)  # the goal: out at once, a conversion
    j.send("bob", "app_open")  # one active run per contact: bob may enter again now
    j.advance("2d")
    # ann got both nudges; bob one per run (his first run ended at the goal).
    assert sorted((c, t) for c, _, _, t in j.messages()) == [
        ("ann", "Still here"), ("ann", "We miss you"), ("bob", "We miss you"), ("bob", "We miss you")]
    first, second = j.explain("bob", "winback")
    assert j.path(first)[-1] == ("pause_again", "goal")
    assert "goal: purchase" in first["steps"][-1]["reason"] and "conversion" in first["steps"][-1]["reason"]
    assert second["status"] == "waiting at pause_again"
    log = j.engine.contact("bob")["state"]["journeys"]["winback"]
    assert (log["entries"], log["conversions"]) == (2, 1)
    [listed] = j.client.request("programs")["programs"]
    assert (listed["entries"], listed["conversions"]) == (3, 1)  # ann once, bob twice; one conversion
    # bob is inside again: another app_open does not start a second run.
    j.send("bob", "app_open")
    refused = j.explain("bob", "winback")[-1]
    assert refused["run"] == 0 and "already in the program" in refused["steps"][0]["reason"]


SPLIT = """\
programs:
  - name: ab_test
    trigger: {event: app_open}
    nodes:
      - id: pick
        type: random
        control: 20
        branches:
          - {weight: 1, next: a}
          - {weight: 1, next: b}
      - {id: a, type: action, send: {channel: in_app, text: "A"}, next: done}
      - {id: b, type: action, send: {channel: in_app, text: "B"}, next: done}
      - {id: done, type: end}
"""


def test_random_split_is_sticky_with_a_control_group(journeys):
    j = journeys
    j.apply(SPLIT)
    contacts = [f"c{i}" for i in range(60)]
    for c in contacts:
        j.send(c, "app_open")
        j.send(c, "app_open")
    sent = j.messages()
    by_contact: dict[str, set[str]] = {}
    for c, _, _, text in sent:
        by_contact.setdefault(c, set()).add(text)
    assert all(len(v) == 1 for v in by_contact.values())  # sticky: same branch both times
    held_out = [c for c in contacts if c not in by_contact]
    assert 2 <= len(held_out) <= 25  # ~20% control group
    assert {t for v in by_contact.values() for t in v} == {"A", "B"}
    run = j.explain(held_out[0], "ab_test")[0]
    assert j.path(run) == [("pick", "control")] and "held out" in run["steps"][0]["reason"]


V1 = """\
programs:
  - name: onboarding
    trigger: {event: app_install}
    nodes:
      - {id: day1, type: wait, duration: 1d, next: tip}
      - {id: tip, type: action, send: {channel: push, text: "Tip from v1"}, next: done}
      - {id: done, type: end}
  - name: untouched
    trigger: {event: app_install}
    nodes:
      - {id: later, type: wait, duration: 3d, next: done}
      - {id: done, type: end}
"""

V2 = V1.replace("Tip from v1", "Tip from v2")


def test_contacts_keep_the_version_they_entered_with(journeys):
    j = journeys
    assert j.apply(V1)["version"] == 1
    j.send("ann", "app_install")
    assert j.apply(V2)["version"] == 2
    j.send("bob", "app_install")
    programs = {(p["name"], p["version"]): p for p in j.client.request("programs")["programs"]}
    # onboarding changed: v2 is current, v1 is retired with ann still inside;
    # untouched kept its version 1.
    assert set(programs) == {("onboarding", 2), ("untouched", 1), ("onboarding", 1)}
    assert programs[("onboarding", 1)]["current"] is False
    assert {n["id"]: n["contacts"] for n in programs[("onboarding", 1)]["nodes"]}["day1"] == 1
    assert {n["id"]: n["contacts"] for n in programs[("onboarding", 2)]["nodes"]}["day1"] == 1
    assert programs[("untouched", 1)]["contacts"] == 2
    j.advance("1d")
    assert sorted((c, t) for c, _, _, t in j.messages()) == [("ann", "Tip from v1"), ("bob", "Tip from v2")]
    # The same holds after a restart: every version is compiled again from disk.
    [ann] = j.explain("ann", "onboarding")
    assert ann["version"] == 1 and ann["status"] == "left"


RECENT = """\
programs:
  - name: basket_reminder
    trigger: {event: cart_update}
    nodes:
      - {id: pause, type: wait, duration: 1h, next: remind}
      - id: remind
        type: action
        send:
          channel: push
          text: >-
            {{ profile.first_name | default('Hi') }}, you looked at
            {{ recent | selectattr('type', 'equalto', 'view') | map(attribute='product_id') | join(', ') }};
            {{ loyalty.club.non_qualifying | default(0) }} points waiting; cart {{ event.cart_id }}.
        next: done
      - {id: done, type: end}
loyalty:
  - name: club
    rules:
      - {name: views, event: view, effects: [{credit: {points: 5, kind: non_qualifying}}]}
"""


def test_templates_read_trigger_profile_loyalty_and_recent_events(journeys):
    j = journeys
    j.apply(RECENT)
    j.send("ann", "view", product_id="P1")
    j.send("ann", "view", product_id="P2")
    j.send("ann", "cart_update", cart_id="K9")
    j.send("ann", "view", product_id="P3")  # during the wait: the message is decided after it
    j.advance("1h")
    [(_, _, _, text)] = j.messages()
    # No first_name in the profile: the declared default renders, no exception;
    # recent events and balances are those when the message was decided.
    assert text == "Hi, you looked at P3, P2, P1; 15 points waiting; cart K9."
