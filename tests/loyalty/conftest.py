"""Loyalty end to end: a real engine (socket, Ray shard actors, LMDB, Rust core) on a
manual clock, so birthdays, return windows and expiries pass in one call. The
driver (tests/conftest.py) sends events, moves the clock and reads members."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def loyalty(manual_engine: Any) -> Any:
    return manual_engine


def entries(found: dict[str, Any], program: str) -> list[tuple[str, str, int]]:
    """(entry, kind, points moved) of the member's ledger rows of ``program``."""
    return [(r["entry"], r["kind"], r["delta"] + r["pending_delta"]) for r in found["ledger"]
            if r["program"] == program]
