"""Load generator behind ``cairn bench``: many connections, pipelined frames, HDR latency.

All frames are built before the clock starts, so the measurement is of the
engine, not of msgpack. Latency is per frame, from send to ``ack`` (which the
server sends only after commit). With a target ``rate`` the sends are paced
open-loop and each latency is measured from the frame's *intended* send time, so
a stalled server shows up as latency instead of silently slowing the senders
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hdrh.histogram import HdrHistogram

from cairn.client import AsyncClient, CairnServerError, PlannedFrame, events_body, plan_frames

__all__ = [
    "BASE_TS",
    "MIXED_TYPES",
    "BenchFrame",
    "build_frames",
    "latency_summary",
    "make_event",
    "new_histogram",
    "new_run_id",
    "report_json",
    "run_load",
]

#: Fixed event time base (2023-11-14), so runs are comparable and replayable.
BASE_TS = 1_700_000_000_000
#: Event types cycled through by ``event_mix="mixed"``.
MIXED_TYPES = ("purchase", "view", "cart_update", "store_visit", "app_open", "email_click")
STORES = ("MI", "RM", "TO", "NA")
# Histogram range in microseconds: 1 us .. 60 s, 3 significant digits.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 60_000_000, 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


# ------------------------------------------------------------------- events


def _purchase_attrs(i: int) -> dict[str, Any]:
    return {"total_amount": (i * 37) % 250, "store_code": STORES[i % 4], "currency": "EUR"}


def _mixed_attrs(kind: str, i: int) -> dict[str, Any]:
    if kind == "purchase":
        return _purchase_attrs(i)
    if kind == "view":
        return {"url": f"/p/{i % 500}", "category": ("shoes", "bags", "coats")[i % 3]}
    if kind == "cart_update":
        return {"product": f"sku-{i % 1000}", "quantity": i % 5 + 1, "cart_total": (i * 13) % 300}
    if kind == "store_visit":
        return {"store_code": STORES[i % 4]}
    if kind == "app_open":
        return {"platform": ("ios", "android")[i % 2], "app_version": "4.2.0"}
    return {"campaign": f"cmp-{i % 20}", "link_category": ("product", "promo", "footer")[i % 3]}


def make_event(i: int, run_id: str, contacts: int, event_mix: str = "purchase", seed: int = 0) -> dict[str, Any]:
    """The ``i``-th benchmark event; ``seed`` shifts which contact gets which event."""
    if event_mix == "purchase":
        kind, attrs = "purchase", _purchase_attrs(i)
    elif event_mix == "mixed":
        kind = MIXED_TYPES[i % len(MIXED_TYPES)]
        attrs = _mixed_attrs(kind, i)
    else:
        raise ValueError(f"unknown event mix {event_mix!r}: expected 'purchase' or 'mixed'")
    return {
        "id": f"b{run_id}-{i}",
        "contact": f"c{(i + seed) % contacts}",
        "type": kind,
        "ts": BASE_TS + i,
        "attrs": attrs,
    }


def new_run_id() -> str:
    """A short id unique per run, so a repeated bench is not all duplicates."""
    return format(time.time_ns() // 1000, "x")


# ------------------------------------------------------------------- frames


@dataclass(slots=True)
class BenchFrame:
    """One pre-encoded frame: its seq, body, event count and first event's number."""

    seq: int
    body: bytes
    events: int
    first: int


def build_frames(
    events: int,
    connections: int,
    frame_events: int,
    max_frame: int,
    run_id: str,
    contacts: int,
    event_mix: str = "purchase",
    seed: int = 0,
) -> list[list[BenchFrame]]:
    """Build every frame of a run, dealt round-robin to ``connections`` lists.

    Seqs count from 1 on each connection (each has its own client). Frames are cut
    by ``plan_frames``, so ``max_frame`` is honoured however big the events are.
    """
    stream = (make_event(i, run_id, contacts, event_mix, seed) for i in range(events))
    refused: list[dict[str, Any]] = []
    shares: list[list[BenchFrame]] = [[] for _ in range(connections)]
    for number, planned in enumerate(plan_frames(stream, frame_events, max_frame, refused)):
        share = shares[number % connections]
        share.append(_bench_frame(len(share) + 1, planned))
    if refused:
        raise ValueError(f"benchmark events cannot be framed: {refused[0]['message']}")
    return shares


def _bench_frame(seq: int, planned: PlannedFrame) -> BenchFrame:
    return BenchFrame(seq, events_body(seq, planned.packed), len(planned.packed), planned.indices[0])


# ------------------------------------------------------------------ latency


def new_histogram() -> HdrHistogram:
    """Latency histogram in microseconds, 1 us .. 60 s, 3 significant digits."""
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def record_latency(histogram: HdrHistogram, nanoseconds: int) -> None:
    """Record one latency, clamped into the histogram's range."""
    micros = min(max(nanoseconds // 1000, _LOWEST_US), _HIGHEST_US)
    histogram.record_value(micros)


def latency_summary(histogram: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p999/max/mean of a microsecond histogram, in milliseconds."""
    if histogram.get_total_count() == 0:
        return {name: 0.0 for name in (*PERCENTILES, "max", "mean")}
    summary = {
        name: round(histogram.get_value_at_percentile(p) / 1000, 3) for name, p in PERCENTILES.items()
    }
    summary["max"] = round(histogram.get_max_value() / 1000, 3)
    summary["mean"] = round(histogram.get_mean_value() / 1000, 3)
    return summary


# --------------------------------------------------------------------- run


@dataclass
class _Stats:
    """Counters shared by every connection (one event loop, so no locking)."""

    histogram: HdrHistogram = field(default_factory=new_histogram)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    frames: int = 0
    frame_errors: int = 0
    last_ack_ns: int = 0

    def on_reply(self, t_start_ns: int, seq: int, reply: dict[str, Any], t_ack_ns: int) -> None:
        record_latency(self.histogram, t_ack_ns - t_start_ns)
        self.last_ack_ns = max(self.last_ack_ns, t_ack_ns)
        self.frames += 1
        if reply.get("op") == "error":
            self.frame_errors += 1
            return
        self.accepted += int(reply.get("accepted") or 0)
        self.duplicates += int(reply.get("duplicates") or 0)
        self.rejected += len(reply.get("rejected") or ())


async def _drive(
    client: AsyncClient,
    frames: Sequence[BenchFrame],
    in_flight: int,
    stats: _Stats,
    t0_ns: int,
    rate: float | None,
) -> None:
    """Send one connection's frames, at most ``in_flight`` unanswered."""
    # Our own window, taken before the clock starts for a frame, so closed-loop
    # latency is send->ack and not the wait for a free slot.
    window = asyncio.Semaphore(in_flight)
    futures = []
    for frame in frames:
        if rate is None:
            await window.acquire()
            started = time.perf_counter_ns()
        else:
            started = t0_ns + int(frame.first * 1e9 / rate)
            delay = started - time.perf_counter_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            await window.acquire()  # waiting here counts: latency runs from `started`
        future = await client.send_raw(frame.body, frame.seq, partial(stats.on_reply, started))
        # Released on any outcome, a lost connection included, so no sender hangs.
        future.add_done_callback(lambda _f: window.release())
        futures.append(future)
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    for outcome in outcomes:
        # Error answers are counted by on_reply; anything else aborts the run.
        if isinstance(outcome, BaseException) and not isinstance(outcome, CairnServerError):
            raise outcome


async def run_load(
    host: str,
    port: int,
    token: str | None = None,
    *,
    events: int,
    connections: int,
    frame_events: int,
    contacts: int,
    in_flight: int,
    event_mix: str = "purchase",
    rate: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run one benchmark against a gateway and return its report dict.

    ``rate`` (events/s over all connections) switches to open-loop pacing.
    Connecting and building frames happen before the clock starts.
    """
    if min(events, connections, frame_events, contacts, in_flight) < 1:
        raise ValueError("events, connections, frame_events, contacts and in_flight must be >= 1")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    clients = [_bench_client(host, port, token, in_flight, i) for i in range(connections)]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        frame_events = min(frame_events, clients[0].max_batch)
        run_id = new_run_id()
        shares = build_frames(
            events, connections, frame_events, clients[0].max_frame, run_id, contacts, event_mix, seed
        )
        stats = _Stats()
        cpu0, t0 = time.process_time(), time.perf_counter_ns()
        await asyncio.gather(
            *(_drive(c, share, in_flight, stats, t0, rate) for c, share in zip(clients, shares))
        )
        cpu = time.process_time() - cpu0
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    seconds = max(stats.last_ack_ns - t0, 1) / 1e9
    return {
        "events": events,
        "accepted": stats.accepted,
        "duplicates": stats.duplicates,
        "rejected": stats.rejected,
        "frame_errors": stats.frame_errors,
        "connections": connections,
        "frame_events": frame_events,
        "in_flight": in_flight,
        "event_mix": event_mix,
        "rate": rate,
        "run_id": run_id,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "latency_ms": latency_summary(stats.histogram),
        "frames": stats.frames,
        # CPU of this process while it drove the load: the load generator's, and the
        # gateway's when it runs here too (`cairn bench`).
        "process_cpu_us_per_event": round(cpu / max(events, 1) * 1e6, 2),
    }


def _bench_client(host: str, port: int, token: str | None, in_flight: int, number: int) -> AsyncClient:
    return AsyncClient(host, port, token, name=f"cairn-bench/{number}", max_in_flight=in_flight)


def report_json(report: dict[str, Any]) -> str:
    """The report as stable, indented JSON (for ``cairn bench --json`` and CI)."""
    return json.dumps(report, indent=2, sort_keys=True)
