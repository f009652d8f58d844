"""Journeys end to end: a real engine (socket, Ray shard actors, LMDB, Rust core,
dispatcher to the NDJSON file sink) on a manual clock, so waits of days pass in one
call. Helpers send events, move the clock and read what was delivered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.client import Client
from cairn.clock import ManualClock

#: Monday 2026-11-23 09:00:00 UTC: the manual clock starts here.
T0 = 1_795_424_400_000
HOUR = 3_600_000
DAY = 24 * HOUR


class Journeys:
    """One engine on a manual clock, driven like a producer and an operator would."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.client = Client(host=engine.host, port=engine.port)
        self._ids = 0

    def apply(self, text: str) -> dict[str, Any]:
        return self.engine.apply(text)

    def send(self, contact: str, kind: str, **attrs: Any) -> None:
        """One event now (the engine's clock stamps it); asserts it was accepted."""
        self._ids += 1
        result = self.client.send([{"id": f"t{self._ids}", "contact": contact, "type": kind, "attrs": attrs}])
        assert (result.accepted, result.rejected) == (1, []), result

    def profile(self, contact: str, **fields: Any) -> None:
        self._ids += 1
        result = self.client.send([{"id": f"t{self._ids}", "contact": contact, "type": "$profile",
                                    "attrs": {"set": fields}}])
        assert result.accepted == 1, result

    def advance(self, duration: str) -> int:
        """Move the clock (through the admin op, as `cairn clock advance` does);
        returns how many timers fired."""
        return self.client.request("clock", advance=duration)["fired"]

    def explain(self, contact: str, program: str | None = None) -> list[dict[str, Any]]:
        return self.client.explain(contact, program)

    def sent(self) -> list[dict[str, Any]]:
        """Every delivered effect, in delivery order (after the outbox drained)."""
        self.engine.flush()
        sink = Path(self.engine.config.data_dir) / "sent.ndjson"
        return [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []

    def messages(self) -> list[tuple[str, str, str, str]]:
        """(contact, channel, node, text) of every delivered message."""
        return [(m["contact"], m["channel"], m["node"], m["message"]["text"]) for m in self.sent()
                if m.get("kind", "message") == "message"]

    @staticmethod
    def path(run: dict[str, Any]) -> list[tuple[str, str]]:
        """A run's (node, outcome) steps, as `explain` reports them."""
        return [(s["node"], s["outcome"]) for s in run["steps"]]

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def journeys(make_engine: Any) -> Iterator[Journeys]:
    j = Journeys(make_engine(clock=ManualClock(T0), timer_interval_s=3600))
    yield j
    j.close()
