"""The ``cairn`` command line against a real engine (click's CliRunner in-process;
the commands connect over a real 127.0.0.1 socket to the ``engine`` fixture)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cairn.cli import main

DEFS = """\
profile_fields: {email: text, first_name: text}
programs:
  - name: big_spender_thanks
    transactional: true   # a receipt-like thank-you: no marketing opt-in needed (J-9)
    trigger: {event: purchase}
    nodes:
      - id: big
        type: decision
        when: {attr: amount, op: gte, value: 100}
        yes: mail
        no: done
      - id: mail
        type: action
        send: {channel: email, subject: "Thank you", text: "Thanks {{ profile.first_name }}"}
        next: done
      - id: done
        type: end
loyalty:
  - name: club
    rules:
      - name: every_purchase
        event: purchase
        effects: [{credit: {points: 10, kind: qualifying}}]
"""

T0 = 1_764_000_000_000

EVENTS = [
    {"id": "p1", "contact": "ann", "type": "$profile", "ts": T0,
     "attrs": {"set": {"email": "ann@example.com", "first_name": "Ann"}}},
    {"id": "o1", "contact": "ann", "type": "purchase", "ts": T0 + 1, "attrs": {"amount": 150}},
    {"id": "o2", "contact": "bob", "type": "purchase", "ts": T0 + 2, "attrs": {"amount": 20}},
]


def flat(text: str) -> str:
    """Output with every run of whitespace made one space (rich wraps at 80 columns)."""
    return " ".join(text.split())


def cli(engine: Any, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--port", str(engine.port)], env=env, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    return write(path, "".join(json.dumps(e) + "\n" for e in events))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def defs_file(tmp_path: Path) -> Path:
    return write(tmp_path / "shop.yaml", DEFS)


# -------------------------------------------------------------------- apply


def test_apply_valid_file_reports_the_version(engine, defs_file: Path) -> None:
    first = cli(engine, "apply", str(defs_file))
    assert first.exit_code == 0, first.output
    assert "applied shop.yaml as version 1: 0 interaction types, 1 programs, 0 segments, 1 loyalty rules" in flat(first.output)
    second = cli(engine, "apply", str(defs_file))
    assert "applied shop.yaml as version 2" in flat(second.output)
    assert engine.status()["definitions_version"] == 2


def test_apply_invalid_file_exits_1_naming_file_and_path(engine, tmp_path: Path) -> None:
    bad = write(tmp_path / "broken-shop.yaml", DEFS.replace("yes: mail", "yes: nowhere"))
    result = cli(engine, "apply", str(bad))
    assert result.exit_code == 1
    out = flat(result.output)
    assert "broken-shop.yaml" in out and "programs[0].nodes[0].yes" in out and "nowhere" in out
    assert "as version" not in out
    assert engine.status()["definitions_version"] == 0  # nothing changed

    not_yaml = cli(engine, "apply", str(write(tmp_path / "junk.yaml", "programs: [\n")))
    assert not_yaml.exit_code == 1 and "junk.yaml" in flat(not_yaml.output)


# --------------------------------------------------------------------- send


def test_send_ndjson_counts_and_duplicates(engine, defs_file: Path, tmp_path: Path) -> None:
    cli(engine, "apply", str(defs_file))
    events = ndjson(tmp_path / "events.ndjson", EVENTS)
    first = cli(engine, "send", str(events))
    assert first.exit_code == 0, first.output
    assert "events.ndjson: 3 accepted, 0 duplicates, 0 rejected" in flat(first.output)
    again = cli(engine, "send", str(events))
    assert again.exit_code == 0
    assert "events.ndjson: 0 accepted, 3 duplicates, 0 rejected" in flat(again.output)
    assert engine.status()["totals"]["events"] == 3


def test_send_with_rejected_events_exits_2(engine, tmp_path: Path) -> None:
    events = ndjson(tmp_path / "mixed.ndjson", [
        {"id": "a1", "contact": "ann", "type": "purchase"},
        {"id": "a2", "type": "purchase"},  # no contact
        {"id": "a3", "contact": "ann", "type": "purchase"},
    ])
    result = cli(engine, "send", str(events))
    assert result.exit_code == 2
    out = flat(result.output)
    assert "2 accepted, 0 duplicates, 1 rejected" in out
    assert "event 1: invalid" in out and "contact" in out


def test_send_unreadable_file_exits_1_with_the_line(engine, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.ndjson", json.dumps(EVENTS[1]) + "\n{not json\n")
    result = cli(engine, "send", str(bad))
    assert result.exit_code == 1
    assert "bad.ndjson:2" in flat(result.output) and "bad JSON" in result.output
    assert engine.status()["totals"]["events"] == 0  # read whole before anything is sent


# ------------------------------------------------------------------- import


def test_import_csv_then_again_adds_nothing(engine, defs_file: Path, tmp_path: Path) -> None:
    cli(engine, "apply", str(defs_file))
    csv_file = write(tmp_path / "orders.csv", (
        "contact,type,ts,amount,store_code\n"
        "ann,purchase,2025-11-24T10:00:00Z,120,MI\n"
        "bob,purchase,1764000000000,35.5,007\n"
        "\n"
        "cy,purchase,2025-11-24T11:00:00,99,RM\n"
    ))
    first = cli(engine, "import", str(csv_file))
    assert first.exit_code == 0, first.output
    assert "orders.csv: 3 accepted, 0 duplicates, 0 rejected" in flat(first.output)
    again = cli(engine, "import", str(csv_file))  # ids come from file name and row
    assert again.exit_code == 0
    assert "orders.csv: 0 accepted, 3 duplicates, 0 rejected" in flat(again.output)
    assert engine.status()["totals"]["events"] == 3

    bob = engine.contact("bob")
    [event] = bob["history"]
    assert event["id"] == "orders.csv#2" and event["ts"] == 1_764_000_000_000
    assert event["attrs"] == {"amount": 35.5, "store_code": "007"}  # leading zero stays text
    assert bob["state"]["loyalty"]["club"]["qualifying"] == 10


# ------------------------------------------------------------------ contact


def test_contact_shows_profile_and_program_run(engine, defs_file: Path, tmp_path: Path) -> None:
    cli(engine, "apply", str(defs_file))
    cli(engine, "send", str(ndjson(tmp_path / "events.ndjson", EVENTS)))

    shown = cli(engine, "contact", "ann")
    assert shown.exit_code == 0, shown.output
    out = flat(shown.output)
    assert "contact ann" in out
    assert "'ann@example.com'" in out and "'Ann'" in out
    assert "big_spender_thanks" in out and "on event o1" in out
    assert "mail -> sent" in out
    assert "program positions" in out
    assert "club" in out

    raw = cli(engine, "contact", "ann", "--json")
    assert raw.exit_code == 0
    found = json.loads(raw.output)
    assert found["contact"] == "ann"
    assert found["state"]["profile"] == {"email": "ann@example.com", "first_name": "Ann"}
    assert found["state"]["loyalty"]["club"]["qualifying"] == 10
    history = {e["id"]: e for e in found["history"]}
    assert list(history) == ["p1", "o1"]
    [run] = history["o1"]["runs"]  # each event keeps the runs it triggered, explained
    assert run["program"] == "big_spender_thanks" and run["version"] == 1
    assert [(s["node"], s["outcome"]) for s in run["steps"]] == [("big", "yes"), ("mail", "sent"), ("done", "end")]
    assert "150 gte 100: true" in run["steps"][0]["reason"]
    assert [(r["rule"], r["entry"], r["delta"], r["event_id"]) for r in found["ledger"]] == [
        ("every_purchase", "earn", 10, "o1"), ("", "join", 0, "o1")]

    # bob's purchase is too small: the decision says no, nothing is sent.
    bob = json.loads(cli(engine, "contact", "bob", "--json").output)
    [bob_run] = bob["history"][0]["runs"]
    assert [(s["node"], s["outcome"]) for s in bob_run["steps"]] == [("big", "no"), ("done", "end")]

    engine.flush()
    sent = [json.loads(line) for line in (Path(engine.config.data_dir) / "sent.ndjson").read_text().splitlines()]
    assert len(sent) == 1 and "ann@example.com" in json.dumps(sent[0])


def test_member_shows_balances_rewards_and_the_ledger(engine, defs_file: Path, tmp_path: Path) -> None:
    cli(engine, "apply", str(defs_file))
    cli(engine, "send", str(ndjson(tmp_path / "events.ndjson", EVENTS)))
    shown = cli(engine, "member", "ann")
    assert shown.exit_code == 0, shown.output
    out = flat(shown.output)
    assert "member ann" in out and "every_purchase" in out and "earn" in out and "joined the program" in out
    found = json.loads(cli(engine, "member", "ann", "--json").output)
    assert found["programs"]["club"]["qualifying"] == 10
    assert [r["entry"] for r in found["ledger"]] == ["earn", "join"]
    nobody = cli(engine, "member", "nobody")
    assert nobody.exit_code != 0 and "not a member of any loyalty program" in nobody.output


def test_simulate_compares_a_candidate_rule_set(engine, defs_file: Path, tmp_path: Path) -> None:
    cli(engine, "apply", str(defs_file))
    cli(engine, "send", str(ndjson(tmp_path / "events.ndjson", EVENTS)))
    rules = write(tmp_path / "double.yaml", "loyalty:\n  - name: club\n    rules:\n      - name: every_purchase\n"
                  "        event: purchase\n        effects: [{credit: {points: 20, kind: qualifying}}]\n")
    shown = cli(engine, "simulate", str(rules), "--from", "2020-01-01")
    assert shown.exit_code == 0, shown.output
    out = flat(shown.output)
    assert "simulation from 2020-01-01" in out and "2 member(s) change" in out
    found = json.loads(cli(engine, "simulate", str(rules), "--from", "2020-01-01", "--json").output)
    assert found["programs"]["club"]["live"]["qualifying"] * 2 == found["programs"]["club"]["candidate"]["qualifying"]
    bad = cli(engine, "simulate", str(rules), "--from", "yesterday")
    assert bad.exit_code != 0 and "not an ISO 8601 date" in bad.output


def test_contact_unknown_exits_1(engine) -> None:
    result = cli(engine, "contact", "nobody")
    assert result.exit_code == 1
    assert "no contact 'nobody'" in result.output


# ------------------------------------------------------------------- status


def test_status_text_and_json(engine, defs_file: Path, tmp_path: Path) -> None:
    cli(engine, "apply", str(defs_file))
    cli(engine, "send", str(ndjson(tmp_path / "events.ndjson", EVENTS)))

    text = cli(engine, "status")
    assert text.exit_code == 0, text.output
    out = flat(text.output)
    assert f"cairn/0.1.0 at 127.0.0.1:{engine.port}" in out and "definitions v1" in out
    assert "wall clock at" in out and "timers" in out

    raw = cli(engine, "status", "--json")
    assert raw.exit_code == 0
    status = json.loads(raw.output)
    assert status["op"] == "status" and status["definitions_version"] == 1
    assert status["totals"]["events"] == 3 and status["totals"]["contacts"] == 2
    assert status["totals"]["ledger_rows"] == 2  # two events, each one earn and one join
    assert status["connections"] == 1  # the command's own connection
    assert len(status["shards"]) == 2
    timing = [s["timing"] for s in status["shards"]]
    assert sum(t["events"] for t in timing) == 3
    assert all(t["cpu_s"] > 0 for t in timing), "each shard process has run since its store opened"


# ------------------------------------------------------------ connection


def test_unreachable_engine_exits_1() -> None:
    port = free_port()
    result = CliRunner().invoke(main, ["status", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot reach a Cairn engine at 127.0.0.1:{port}" in flat(result.output)


def test_token_from_option_and_environment(make_engine) -> None:
    engine = make_engine(token="s3cret")
    refused = cli(engine, "status")
    assert refused.exit_code == 1
    assert "refused the connection" in flat(refused.output) and "unauthorized" in refused.output
    assert cli(engine, "status", "--json", "--token", "s3cret").exit_code == 0
    by_env = cli(engine, "status", "--json", env={"CAIRN_TOKEN": "s3cret"})
    assert by_env.exit_code == 0 and json.loads(by_env.output)["op"] == "status"


def test_serve_refuses_a_bad_channels_file(tmp_path: Path) -> None:
    bad = tmp_path / "channels.yaml"
    bad.write_text("channels:\n  sms: {type: webhook}\n")
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path / "d"), "--channels", str(bad)])
    assert result.exit_code == 1
    assert "channels.yaml" in result.output and "channels.sms.url" in result.output
    assert not (tmp_path / "d").exists()  # refused before anything started
