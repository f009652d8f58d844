"""Journeys end to end: a real engine (socket, Ray shard actors, LMDB, Rust core,
dispatcher to the NDJSON file sink) on a manual clock, so waits of days pass in one
call. The driver (tests/conftest.py) sends events, moves the clock and reads what
was delivered."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def journeys(manual_engine: Any) -> Any:
    """A ``Driver`` (tests/conftest.py): one engine on a manual clock at T0."""
    return manual_engine
