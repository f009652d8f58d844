"""Durability: SIGKILL a `cairn serve` process after N acks, restart it on the same data.

Every acked event must be there after the restart, and resending the whole stream
must add nothing (each event applied exactly once).
"""

from __future__ import annotations

import threading

import pytest

from cairn.client import Client

FRAMES, PER_FRAME, KILL_AFTER = 120, 100, 25


def _events(frame: int) -> list[dict[str, object]]:
    return [{"id": f"f{frame}-{k}", "contact": f"c{(frame * PER_FRAME + k) % 97}", "type": "purchase",
             "attrs": {"total_amount": k}} for k in range(PER_FRAME)]


@pytest.mark.slow
def test_sigkill_after_acks_loses_nothing_and_resend_adds_nothing(serve, raw_conn):
    first = serve()
    conn = raw_conn("127.0.0.1", first.port)
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
    first.kill()
    conn.close()

    with Client(host="127.0.0.1", port=serve().port) as client:
        for f in sorted(acked):  # every acked event is there: a resend is all duplicates
            again = client.send(_events(f))
            assert (again.accepted, again.duplicates) == (0, PER_FRAME), f"frame {f}"
        rest = client.send([e for f in range(FRAMES) if f not in acked for e in _events(f)])
        assert rest.accepted + rest.duplicates == (FRAMES - len(acked)) * PER_FRAME
        status = client.request("status")
    assert status["totals"]["events"] == FRAMES * PER_FRAME  # nothing applied twice
