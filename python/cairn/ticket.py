"""The bookkeeping of one events frame until it can be acknowledged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Ticket:
    """Collects the per-shard results of one frame and fires once all are in.

    ``on_done`` receives the finished ``ack`` or ``error`` frame body. A frame is
    acked only when every shard holding part of it has committed its batch.
    """

    __slots__ = ("seq", "parts", "accepted", "duplicates", "rejected", "failed", "_on_done")

    def __init__(self, seq: int | None, parts: int, rejected: list[dict[str, Any]],
                 on_done: Callable[[dict[str, Any]], None]) -> None:
        self.seq = seq
        self.parts = parts
        self.accepted = 0
        self.duplicates = 0
        self.rejected = rejected
        self.failed: str | None = None
        self._on_done = on_done
        if parts == 0:
            self._finish()

    def part_done(self, accepted: int, duplicates: int) -> None:
        self.accepted += accepted
        self.duplicates += duplicates
        self._count_down()

    def fail(self, message: str) -> None:
        self.failed = self.failed or message
        self._count_down()

    def _count_down(self) -> None:
        self.parts -= 1
        if self.parts == 0:
            self._finish()

    def _finish(self) -> None:
        if self.failed is not None:
            # Some shards may have committed their part: a resend is safe (dedup).
            self._on_done({"op": "error", "seq": self.seq, "code": "internal",
                           "message": f"{self.failed}; resend the frame"})
        else:
            self._on_done({"op": "ack", "seq": self.seq, "accepted": self.accepted,
                           "duplicates": self.duplicates, "rejected": self.rejected})
