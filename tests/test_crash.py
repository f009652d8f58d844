"""Durability: SIGKILL a `cairn serve` process after N acks, restart it on the same data.

Every acked event must be there after the restart, and resending the whole stream
must add nothing (each event applied exactly once).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.client import Client

FRAMES, PER_FRAME, KILL_AFTER = 120, 100, 25


def _serve(data: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cairn.cli", "serve", "--data", str(data), "--port", "0", "--shards", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"cairn listening on ([\d.]+):(\d+)", line)
    assert match, f"unexpected first line {line!r}"
    return proc, int(match.group(2))


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen[str]] = []

    def start() -> int:
        proc, port = _serve(tmp_path / "data")
        procs.append(proc)
        return port

    start.procs = procs  # type: ignore[attr-defined]
    yield start
    for p in procs:
        _kill(p)


def _events(frame: int) -> list[dict[str, object]]:
    return [{"id": f"f{frame}-{k}", "contact": f"c{(frame * PER_FRAME + k) % 97}", "type": "purchase",
             "attrs": {"total_amount": k}} for k in range(PER_FRAME)]


@pytest.mark.slow
def test_sigkill_after_acks_loses_nothing_and_resend_adds_nothing(serve, raw_conn):
    port = serve()
    conn = raw_conn("127.0.0.1", port)
    assert conn.hello()["op"] == "welcome"

    def pump() -> None:
        try:
            for f in range(FRAMES):
                conn.send({"op": "events", "seq": f, "events": _events(f)})
        except OSError:
            pass  # the engine died under us: expected

    threading.Thread(target=pump, daemon=True).start()
    acked: set[int] = set()
    while len(acked) < KILL_AFTER:
        reply = conn.recv()
        assert reply is not None and reply["op"] == "ack", reply
        assert reply["accepted"] == PER_FRAME
        acked.add(reply["seq"])
    _kill(serve.procs[0])
    conn.close()

    port = serve()
    with Client(host="127.0.0.1", port=port) as client:
        for f in sorted(acked):  # every acked event is there: a resend is all duplicates
            again = client.send(_events(f))
            assert (again.accepted, again.duplicates) == (0, PER_FRAME), f"frame {f}"
        rest = client.send([e for f in range(FRAMES) if f not in acked for e in _events(f)])
        assert rest.accepted + rest.duplicates == (FRAMES - len(acked)) * PER_FRAME
        status = client.request("status")
    assert status["totals"]["events"] == FRAMES * PER_FRAME  # nothing applied twice
