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
