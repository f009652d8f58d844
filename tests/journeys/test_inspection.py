"""What an operator or a marketer asks a running engine, through the CLI: the
attributes seen per event type (J-6), segment members (I-4), program versions,
the clock, and a contact's path (explain)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from cairn.cli import main

DEFS = """\
interaction_types:
  - {name: store_visit, channel: store, source: api, attributes: {store: text}}
segments:
  - name: milan_regulars
    description: visited the Milan store at least twice in 30 days
    when:
      all:
        - {event: store_visit, where: {attr: store, op: equals, value: MI}, within: 30d, count: {op: gte, value: 2}}
        - {profile: city, op: equals, value: Milano}
programs:
  - name: regular_thanks
    trigger: {event: store_visit}
    nodes:
      - {id: regular, type: decision, when: {segment: milan_regulars}, yes: later, no: done}
      - {id: later, type: wait, duration: 1d, next: thanks}
      - {id: thanks, type: action, send: {channel: push, text: "Grazie!"}, next: done}
      - {id: done, type: end}
"""


def test_unknown_event_types_are_warned_about_at_apply(journeys):
    j = journeys
    j.send("ann", "wishlist_add", sku="A")  # seen: known from now on
    reply = j.apply("""\
programs:
  - name: p
    trigger: {event: wishlist_add}
    nodes:
      - {id: w, type: wait_for, event: purchse, timeout: 1d, occurred: e, not_occurred: e}
      - {id: e, type: end}
""")
    assert reply["warnings"] == ["programs[0].nodes[0].event: event type 'purchse' is not declared, "
                                 "built in, or seen yet"]


def cli(j: Any, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--port", str(j.engine.port)], catch_exceptions=False)


def test_attributes_segments_programs_clock_and_explain_from_the_cli(journeys, tmp_path):
    j = journeys
    j.apply(DEFS)
    for name, city, visits in [("ann", "Milano", 2), ("bob", "Milano", 1), ("cy", "Roma", 3), ("dee", "Milano", 3)]:
        j.profile(name, city=city)
        for _ in range(visits):
            j.send(name, "store_visit", store="MI", minutes=12, visited_at="2026-11-23T09:00:00Z", vip=True)

    attrs = json.loads(cli(j, "attributes", "Store_Visit", "--json").output)
    by_name = {a["attribute"]: a for a in attrs["attributes"]}
    assert by_name["store"]["declared"] == "text" and by_name["store"]["seen_as"] == ["text"]
    assert by_name["minutes"]["seen_as"] == ["number"] and "between" in by_name["minutes"]["operators"]["number"]
    assert by_name["visited_at"]["seen_as"] == ["date"] and "within_last" in by_name["visited_at"]["operators"]["date"]
    assert by_name["vip"]["operators"] == {"bool": ["is_true", "is_false", "exists", "not_exists"]}
    shown = " ".join(cli(j, "attributes", "store_visit").output.split())
    assert "minutes" in shown and "number" in shown

    out = tmp_path / "members.txt"
    result = CliRunner().invoke(main, ["segment", "milan_regulars", "--out", str(out), "--port", str(j.engine.port)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(out.read_text().split()) == ["ann", "dee"]
    assert "2 member(s)" in result.output
    bad = CliRunner().invoke(main, ["segment", "nope", "--port", str(j.engine.port)])
    assert bad.exit_code != 0 and "unknown segment 'nope'" in bad.output

    programs = json.loads(cli(j, "programs", "--json").output)
    [p] = programs
    assert {n["id"]: n["contacts"] for n in p["nodes"]} == {"regular": 0, "later": 2, "thanks": 0, "done": 0}

    # The engine runs on a manual clock: advancing it fires the two waits.
    moved = cli(j, "clock", "advance", "1d")
    assert "2 timer(s) fired" in moved.output
    assert sorted(c for c, *_ in j.messages()) == ["ann", "dee"]

    explained = " ".join(cli(j, "explain", "ann", "regular_thanks").output.split())
    assert "regular -> yes" in explained and "later -> woke" in explained and "thanks -> sent" in explained
    first, second = json.loads(cli(j, "explain", "ann", "--json").output)
    assert first["steps"][0]["reason"].endswith("in segment milan_regulars => false => no")
    assert second["steps"][0]["reason"] == ("event store_visit (filtered) within 30d count = 2 gte 2: true; "
                                            "profile city = 'Milano' equals 'Milano': true; "
                                            "in segment milan_regulars => true => yes")
    missing = CliRunner().invoke(main, ["explain", "nobody", "--port", str(j.engine.port)])
    assert missing.exit_code != 0 and "no program runs recorded" in missing.output


def test_a_segment_applied_later_counts_the_history_already_stored(journeys, tmp_path):
    j = journeys
    for name, store, visits in [("ann", "MI", 3), ("bob", "MI", 1), ("cy", "RM", 3)]:
        for _ in range(visits):
            j.send(name, "store_visit", store=store)
    j.advance("2d")
    j.apply("""\
segments:
  - name: loyal_milan
    when: {event: store_visit, where: {attr: store, op: equals, value: MI}, within: 7d, count: {op: gte, value: 2}}
""")
    out = tmp_path / "members.txt"
    done = CliRunner().invoke(main, ["segment", "loyal_milan", "--out", str(out), "--port", str(j.engine.port)],
                              catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert out.read_text().split() == ["ann"]
    # A week later the visits are out of the window.
    j.advance("6d")
    again = CliRunner().invoke(main, ["segment", "loyal_milan", "--count", "--port", str(j.engine.port)],
                               catch_exceptions=False)
    assert "0 member(s)" in again.output
