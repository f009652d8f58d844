"""Reading definitions files (YAML) into the core's document, without an engine."""

from __future__ import annotations

import msgpack
import pytest

from cairn.definitions import DefinitionsInvalid, parse

PROGRAM = """
programs:
  - name: p
    trigger:
      event: purchase
      filter: {attr: day, op: after, value: 2026-11-23}
    nodes:
      - id: d
        type: decision
        when: {attr: mode, op: equals, value: on}
        yes: e
        no: e
      - id: e
        type: end
"""


def test_yaml_1_2_booleans_and_unquoted_dates():
    doc, catalog = parse(PROGRAM, "p.yaml", 7)
    assert catalog.version == 7
    node = msgpack.unpackb(doc)["programs"][0]["nodes"][0]
    assert (node["yes"], node["no"]) == ("e", "e")  # keys, not YAML 1.1 booleans
    assert node["when"]["value"] == "on"  # a string, not True
    assert msgpack.unpackb(doc)["programs"][0]["trigger"]["filter"]["value"] == "2026-11-23"


def test_every_problem_is_named_with_file_and_path():
    bad = PROGRAM.replace("op: after", "op: bigger").replace("yes: e", "yes: nowhere")
    with pytest.raises(DefinitionsInvalid) as info:
        parse(bad, "shop.yaml")
    text = str(info.value)
    assert text.startswith("shop.yaml: ")
    assert "programs[0].trigger.filter" in text and "bigger" in text


def test_not_a_mapping():
    with pytest.raises(DefinitionsInvalid, match="must hold a mapping"):
        parse("- a\n- b\n", "list.yaml")


JOURNEY_MISTAKES = """\
segments:
  - {name: vips, when: {attr: tier, op: equals, value: gold}}
programs:
  - name: loop
    trigger: {event: app_open}
    nodes:
      - {id: a, type: action, send: {channel: push, text: "hi"}, next: b}
      - {id: b, type: decision, when: {segment: nobody}, yes: a, no: c}
      - {id: c, type: wait_for, event: purchase, occurred: d, not_occurred: d}
      - {id: d, type: random, branches: [{weight: -1, next: e}]}
      - {id: e, type: wait, until: {weekday: someday}, next: f}
      - {id: f, type: action, send: {channel: sms, text: "{{ oops }"}, next: g}
      - {id: g, type: end}
      - {id: h, type: end}
"""


def test_invalid_journeys_name_file_path_and_problem():
    with pytest.raises(DefinitionsInvalid) as info:
        parse(JOURNEY_MISTAKES, "journeys.yaml")
    text = str(info.value)
    assert text.startswith("journeys.yaml: ")
    for expected in [
        "segments[0].when.attr: there is no event here",
        "programs[0].nodes[1].when.segment: unknown segment 'nobody'",
        "programs[0].nodes[2]: a wait_for node needs 'timeout'",
        "programs[0].nodes[3].branches[0].weight: a random branch needs a positive 'weight'",
        "programs[0].nodes[4].until.weekday: unknown weekday 'someday'",
        "programs[0].nodes[5].send.text: template error",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"
    # With the node errors fixed, the graph is checked: a cycle without a wait and an
    # unreachable node.
    fixed = JOURNEY_MISTAKES.replace("segment: nobody", "attr: x, op: exists").replace(
        "event: purchase,", "event: purchase, timeout: 1d,").replace("weight: -1", "weight: 1").replace(
        "weekday: someday", "weekday: monday").replace('"{{ oops }"', '"ok"').replace(
        "  - {name: vips, when: {attr: tier, op: equals, value: gold}}", "  - {name: vips, when: {profile: tier, op: exists}}")
    with pytest.raises(DefinitionsInvalid) as info:
        parse(fixed, "journeys.yaml")
    text = str(info.value)
    assert "programs[0].nodes[7]: node 'h' is unreachable from the entry node 'a'" in text
    assert "programs[0].nodes: cycle a -> b -> a has no wait or wait_for node" in text


def test_times_of_day_stay_text_and_numbers_stay_numbers():
    doc, _ = parse("""\
arbitration:
  quiet_hours: {from: 21:00, to: 08:00}
  caps: [{channel: sms, max: 2, per: 1d}]
programs:
  - name: p
    trigger: {event: x, filter: {attr: amount, op: between, value: [1.5, 1e3]}}
    nodes:
      - {id: w, type: wait, until: {time: 09:30}, next: e}
      - {id: e, type: end}
""", "times.yaml")
    loaded = msgpack.unpackb(doc)
    assert loaded["arbitration"]["quiet_hours"] == {"from": "21:00", "to": "08:00"}
    assert loaded["arbitration"]["caps"][0]["max"] == 2
    assert loaded["programs"][0]["trigger"]["filter"]["value"] == [1.5, 1000.0]
    assert loaded["programs"][0]["nodes"][0]["until"] == {"time": "09:30"}
