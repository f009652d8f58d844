"""Timers are rows in the shard's LMDB, committed with the state change that set
them: across a restart or a SIGKILL a timer fires once, never lost, never twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cairn.client import Client
from cairn.clock import ManualClock

T0 = 1_795_424_400_000  # 2026-11-23T09:00:00Z
DAY = 86_400_000

DEFS = """\
programs:
  - name: follow_up
    trigger: {event: signup}
    nodes:
      - {id: wait, type: wait, duration: 1d, next: hello}
      - {id: hello, type: action, send: {channel: in_app, text: "Welcome back {{ contact }}"}, next: done}
      - {id: done, type: end}
"""


def _sent(data: Path) -> list[dict]:
    sink = data / "sent.ndjson"
    return [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []


def test_waiting_runs_and_retired_versions_survive_a_restart(make_engine, tmp_path):
    first = make_engine(clock=ManualClock(T0), timer_interval_s=3600)
    first.apply(DEFS)
    with Client(host=first.host, port=first.port) as c:
        c.send([{"id": "s1", "contact": "ann", "type": "signup"}])
    first.apply(DEFS.replace("Welcome back", "Hello again"))  # v2; ann stays on v1
    first.close()

    second = make_engine(clock=ManualClock(T0 + DAY), timer_interval_s=0.05)
    deadline = time.monotonic() + 30
    while not _sent(tmp_path / "data") and time.monotonic() < deadline:
        time.sleep(0.05)
    second.flush()
    [msg] = _sent(tmp_path / "data")
    assert (msg["contact"], msg["version"], msg["message"]["text"]) == ("ann", 1, "Welcome back ann")
    assert second.status()["totals"]["timers"] == 0


def _manual(clock_ms: int) -> tuple[str, ...]:
    """`cairn serve` options for a manual clock starting at ``clock_ms``."""
    return ("--clock", "manual", "--clock-start", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock_ms / 1000)))


@pytest.mark.slow
def test_timers_fire_once_across_sigkill(tmp_path, serve):
    data = tmp_path / "data"
    contacts = [f"c{i}" for i in range(200)]
    engine = serve(*_manual(T0))
    with Client(host="127.0.0.1", port=engine.port) as c:
        c.request("apply", name="defs.yaml", definitions=DEFS)
        result = c.send([{"id": f"s-{k}", "contact": k, "type": "signup"} for k in contacts])
        assert result.accepted == len(contacts)
    engine.kill()  # acked: the 200 waits are on disk

    # A day later every timer is due; kill the engine while it is firing them.
    engine = serve(*_manual(T0 + DAY))
    deadline = time.monotonic() + 60
    while not _sent(data) and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.kill()
    after_kill = len(_sent(data))

    # Restart again: the timers not fired before the kill fire now; the fired ones
    # are gone with the commit that ran their step.
    engine = serve(*_manual(T0 + 2 * DAY))
    with Client(host="127.0.0.1", port=engine.port) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = c.request("status")["totals"]
            if status["timers"] == 0 and status["outbox"] == 0:
                break
            time.sleep(0.1)
        assert status["timers"] == 0 and status["outbox"] == 0, status
    delivered = _sent(data)
    assert sorted({m["contact"] for m in delivered}) == sorted(contacts)  # never lost
    # Never fired twice: one effect id per contact. (A message whose delivery was
    # cut by the kill may be written to the sink again with the same id: receivers
    # drop it by that id.)
    ids: dict[str, set[str]] = {}
    for m in delivered:
        ids.setdefault(m["contact"], set()).add(m["id"])
    assert all(len(v) == 1 for v in ids.values())
    assert after_kill <= len(delivered)
