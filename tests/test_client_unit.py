"""Producer client and load generator, without the engine.

Pure helpers (frame building and splitting, ack merging, percentiles) are tested
directly; connection behaviour (handshake, pipelining, resend after a dropped
connection, error answers) against a small in-test fake gateway that speaks the
wire protocol.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest

from cairn.client import (
    FRAME_OVERHEAD,
    AsyncClient,
    CairnConnectionError,
    CairnSendError,
    CairnServerError,
    Client,
    SendResult,
    events_body,
    merge_ack,
    pack_event,
    plan_frames,
)
from cairn.loadgen import (
    BASE_TS,
    MIXED_TYPES,
    build_frames,
    latency_summary,
    make_event,
    new_histogram,
    record_latency,
    report_json,
    run_load,
)
from cairn.wire import decode, encode, error, read_frame


def ev(i: int, contact: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "contact": contact or f"c{i % 3}", "type": "purchase", **extra}


# ------------------------------------------------------------ frame building


def test_events_body_is_the_msgpack_of_the_frame_map() -> None:
    events = [ev(i) for i in range(20)]
    body = events_body(17, [pack_event(e) for e in events])
    assert body == msgpack.packb({"op": "events", "seq": 17, "events": events}, use_bin_type=True)
    assert decode(body) == {"op": "events", "seq": 17, "events": events}


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536])
def test_events_body_array_headers(count: int) -> None:
    packed = [b"\xc0"] * count  # nil stands in for an event
    assert decode(events_body(2**64 - 1, packed))["events"] == [None] * count
    assert len(events_body(2**64 - 1, packed)) <= FRAME_OVERHEAD + count


def test_plan_frames_splits_by_count_and_keeps_indices() -> None:
    frames = list(plan_frames((ev(i) for i in range(25)), 10, 1 << 20, []))
    assert [len(f.packed) for f in frames] == [10, 10, 5]
    assert [i for f in frames for i in f.indices] == list(range(25))


def test_plan_frames_splits_by_bytes() -> None:
    events = [ev(i, attrs={"blob": "x" * 300}) for i in range(50)]
    limit = 2000
    frames = list(plan_frames(events, 1000, limit, []))
    assert len(frames) > 1
    for n, frame in enumerate(frames):
        assert len(events_body(2**64 - 1, frame.packed)) <= limit
        assert [decode(p) for p in frame.packed] == [events[i] for i in frame.indices]
    assert [i for f in frames for i in f.indices] == list(range(50))


def test_plan_frames_refuses_unsendable_events_locally() -> None:
    rejected: list[dict[str, Any]] = []
    events = [
        ev(0),
        ev(1, attrs={"blob": "x" * 5000}),  # alone bigger than max_frame
        "not a map",
        ev(3, attrs={"when": datetime.datetime(2024, 1, 1)}),  # msgpack cannot encode it
        ev(4),
    ]
    frames = list(plan_frames(events, 10, 1000, rejected))
    assert [i for f in frames for i in f.indices] == [0, 4]
    assert [(r["index"], r["code"]) for r in rejected] == [(1, "too_large"), (2, "invalid"), (3, "invalid")]


def test_merge_ack_translates_indices() -> None:
    result = SendResult()
    merge_ack(result, {"op": "ack", "seq": 1, "accepted": 2, "duplicates": 0, "rejected": []}, [0, 1])
    merge_ack(
        result,
        {"op": "ack", "seq": 2, "accepted": 1, "duplicates": 1,
         "rejected": [{"index": 1, "code": "invalid", "message": "missing key 'contact'"}]},
        [10, 11, 13],
    )
    assert (result.accepted, result.duplicates, result.frames) == (3, 1, 2)
    assert result.rejected == [{"index": 11, "code": "invalid", "message": "missing key 'contact'"}]


# ------------------------------------------------------------- fake gateway


class FakeGateway:
    """Speaks enough of the protocol to exercise the client.

    ``drop_after``: on the first connection, close without answering once that
    many frames were read. ``hold``: on the first connection, keep acks back
    until that many frames are in, proving the client pipelines. ``fail``: seq ->
    error codes to answer its next arrivals with, then ack it.
    ``shutdown_after``: on the first connection, after that many frames answer
    them all, announce ``shutting_down`` and close, recording any frame the
    client still sends in ``after_notice``. Dedups events by id like the real
    engine.
    """

    def __init__(self, *, token: str | None = None, max_batch: int = 10_000, max_frame: int = 4 << 20,
                 drop_after: int | None = None, hold: int = 0, fail: dict[int, list[str]] | None = None,
                 shutdown_after: int | None = None) -> None:
        self.token, self.max_batch, self.max_frame = token, max_batch, max_frame
        self.drop_after, self.hold, self.fail = drop_after, hold, fail or {}
        self.shutdown_after = shutdown_after
        self.after_notice: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.frames: list[tuple[int, dict[str, Any]]] = []  # (connection number, frame)
        self.seen: set[str] = set()
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.handlers: list[Any] = []

    async def start(self) -> FakeGateway:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in self.writers:  # Python 3.11 has no Server.close_clients()
            writer.close()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.writers.append(writer)
        self.handlers.append(asyncio.current_task())
        try:
            if await self._handshake(reader, writer):
                await self._serve(number, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        hello = decode(await read_frame(reader, self.max_frame))
        self.hellos.append(hello)
        if self.token is not None and hello.get("token") != self.token:
            writer.write(encode(error("unauthorized", "bad token")))
            await writer.drain()
            return False
        writer.write(encode({"op": "welcome", "version": 1, "server": "fake/0",
                             "max_frame": self.max_frame, "max_batch": self.max_batch}))
        return True

    async def _serve(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held: list[bytes] = []
        count = 0
        while (body := await read_frame(reader, self.max_frame)) is not None:
            frame = decode(body)
            self.frames.append((number, frame))
            count += 1
            if number == 1 and self.drop_after is not None and count >= self.drop_after:
                return  # vanish without answering anything still held
            held.append(encode(self._answer(frame)))
            if number == 1 and self.shutdown_after is not None and count >= self.shutdown_after:
                await self._shut_down(reader, writer, held)
                return
            if count >= self.hold or number > 1:
                writer.write(b"".join(held))
                held.clear()
                await writer.drain()

    async def _shut_down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         held: list[bytes]) -> None:
        writer.write(b"".join(held) + encode(error("shutting_down", "bye")))
        await writer.drain()
        try:
            while (body := await asyncio.wait_for(read_frame(reader, self.max_frame), 0.2)) is not None:
                self.after_notice.append(decode(body))
        except asyncio.TimeoutError:
            pass

    def _answer(self, frame: dict[str, Any]) -> dict[str, Any]:
        seq = frame.get("seq")
        if self.fail.get(seq):
            return error(self.fail[seq].pop(0), "boom", seq)
        if frame["op"] == "status":
            return {"op": "status", "seq": seq, "shards": 4}
        if frame["op"] != "events":
            return error("unknown_op", f"unknown op {frame['op']!r}", seq)
        ack: dict[str, Any] = {"op": "ack", "seq": seq, "accepted": 0, "duplicates": 0, "rejected": []}
        for index, event in enumerate(frame["events"]):
            if "contact" not in event:
                ack["rejected"].append({"index": index, "code": "invalid", "message": "missing key 'contact'"})
            elif event["id"] in self.seen:
                ack["duplicates"] += 1
            else:
                self.seen.add(event["id"])
                ack["accepted"] += 1
        return ack


async def gateway(**options: Any) -> FakeGateway:
    return await FakeGateway(**options).start()


# ----------------------------------------------------------- async client


async def test_send_acks_all_frames_and_says_hello() -> None:
    gw = await gateway()
    seen_progress: list[int] = []
    async with AsyncClient(port=gw.port, frame_events=10) as client:
        assert client.server == "fake/0"
        result = await client.send((ev(i) for i in range(95)), progress=seen_progress.append)
    await gw.stop()
    assert (result.accepted, result.duplicates, result.rejected, result.frames) == (95, 0, [], 10)
    assert gw.hellos == [{"op": "hello", "version": 1, "client": "cairn-python/0.1"}]  # no token key
    seqs = [f["seq"] for _, f in gw.frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    assert seen_progress[-1] == 95


async def test_rejections_carry_caller_indices() -> None:
    gw = await gateway()
    events = [ev(i) for i in range(30)]
    del events[17]["contact"]
    events[4] = "junk"  # refused locally
    async with AsyncClient(port=gw.port, frame_events=8) as client:
        result = await client.send(events)
    await gw.stop()
    assert result.accepted == 28
    assert [(r["index"], r["code"]) for r in result.rejected] == [(4, "invalid"), (17, "invalid")]


async def test_welcome_limits_cut_frames() -> None:
    gw = await gateway(max_batch=7, max_frame=4000)
    async with AsyncClient(port=gw.port, frame_events=1000) as client:
        result = await client.send(ev(i, attrs={"pad": "y" * 100}) for i in range(100))
    await gw.stop()
    assert result.accepted == 100
    assert all(len(f["events"]) <= 7 for _, f in gw.frames)


async def test_token_and_unauthorized() -> None:
    gw = await gateway(token="s3cret")
    with pytest.raises(CairnServerError) as info:
        await AsyncClient(port=gw.port, token="wrong").connect()
    assert info.value.code == "unauthorized"
    async with AsyncClient(port=gw.port, token="s3cret") as client:
        assert (await client.send([ev(1)])).accepted == 1
    await gw.stop()
    assert gw.hellos[-1]["token"] == "s3cret"


async def test_connect_refused_fails_fast() -> None:
    gw = await gateway()
    port = gw.port
    await gw.stop()
    with pytest.raises(CairnConnectionError):
        await AsyncClient(port=port, connect_timeout=2).connect()


async def test_frames_are_pipelined() -> None:
    gw = await gateway(hold=5)  # no ack until 5 frames are in: a stop-and-wait client hangs
    async with AsyncClient(port=gw.port, frame_events=1, max_in_flight=5) as client:
        result = await asyncio.wait_for(client.send(ev(i) for i in range(12)), 5)
    await gw.stop()
    assert result.accepted == 12


async def test_dropped_connection_resends_unacked_frames_in_order() -> None:
    gw = await gateway(drop_after=4, hold=3)
    async with AsyncClient(port=gw.port, frame_events=5, max_in_flight=8) as client:
        result = await asyncio.wait_for(client.send(ev(i) for i in range(60)), 10)
    await gw.stop()
    assert gw.connections == 2
    # Frames 1-3 were acked before the drop (hold=3), so nothing is a duplicate.
    assert (result.accepted, result.duplicates, result.frames) == (60, 0, 12)
    second = [f["seq"] for n, f in gw.frames if n == 2]
    assert second == sorted(second) and second[0] == 4  # oldest un-acked frame first
    assert len(gw.hellos) == 2


async def test_resend_after_lost_acks_counts_duplicates() -> None:
    # Frames 1-2 are committed on the first connection but their acks are lost
    # with it; frame 3 kills it. The resend makes frames 1-2 duplicates.
    gw = await gateway(drop_after=3, hold=100)
    async with AsyncClient(port=gw.port, frame_events=5) as client:
        result = await asyncio.wait_for(client.send(ev(i) for i in range(20)), 10)
    await gw.stop()
    assert (result.accepted, result.duplicates, result.frames) == (10, 10, 4)
    assert [f["seq"] for n, f in gw.frames if n == 2] == [1, 2, 3, 4]


async def test_reconnect_gives_up() -> None:
    gw = await gateway(drop_after=1)
    client = AsyncClient(port=gw.port, frame_events=5, reconnect_attempts=2)
    await client.connect()
    await gw.stop()  # nothing left to reconnect to
    with pytest.raises(CairnConnectionError, match="gave up"):
        await asyncio.wait_for(client.send(ev(i) for i in range(10)), 10)
    await client.close()


async def test_frame_error_raises_after_the_rest_completes() -> None:
    gw = await gateway(fail={2: ["invalid"]})
    async with AsyncClient(port=gw.port, frame_events=10) as client:
        with pytest.raises(CairnSendError) as info:
            await client.send(ev(i) for i in range(40))
    await gw.stop()
    err = info.value
    assert err.code == "invalid" and err.result.accepted == 30 and err.result.frames == 3
    assert err.errors == [{"seq": 2, "first_index": 10, "events": 10, "code": "invalid", "message": "boom"}]


async def test_internal_error_on_events_frame_is_resent() -> None:
    gw = await gateway(fail={2: ["internal", "internal"]})
    async with AsyncClient(port=gw.port, frame_events=10) as client:
        result = await asyncio.wait_for(client.send(ev(i) for i in range(40)), 10)
        gw.fail[client.reserve_seqs(1)[0] + 1] = ["internal"]
        with pytest.raises(CairnServerError):  # an admin request may not be idempotent
            await client.request("status")
    await gw.stop()
    assert (result.accepted, result.frames) == (40, 4)
    assert [f["seq"] for _, f in gw.frames].count(2) == 3


async def test_shutting_down_notice_stops_writes_then_resends_elsewhere() -> None:
    gw = await gateway(shutdown_after=4, hold=4)
    async with AsyncClient(port=gw.port, frame_events=5, max_in_flight=4) as client:
        result = await asyncio.wait_for(client.send(ev(i) for i in range(50)), 10)
    await gw.stop()
    assert gw.after_notice == []  # nothing sent to a server that is going away
    assert (result.accepted, result.duplicates, result.frames) == (50, 0, 10)
    assert [f["seq"] for n, f in gw.frames if n == 2] == list(range(5, 11))


async def test_request_round_trip_and_error() -> None:
    gw = await gateway()
    async with AsyncClient(port=gw.port) as client:
        assert await client.request("status") == {"op": "status", "seq": 1, "shards": 4}
        with pytest.raises(CairnServerError) as info:
            await client.request("frobnicate", x=1)
    await gw.stop()
    assert info.value.code == "unknown_op"
    assert gw.frames[1][1] == {"op": "frobnicate", "x": 1, "seq": 2}


async def test_send_raw_reports_ack_time_and_refuses_a_seq_in_flight() -> None:
    gw = await gateway(hold=2)  # the first frame stays unanswered until a second one
    calls: list[tuple[int, str, int]] = []
    async with AsyncClient(port=gw.port) as client:
        [seq] = client.reserve_seqs(1)
        body = events_body(seq, [pack_event(ev(1))])
        future = await client.send_raw(body, seq, lambda s, r, t: calls.append((s, r["op"], t)))
        with pytest.raises(ValueError, match="in flight"):
            await client.send_raw(body, seq)
        assert (await client.send([ev(2)])).accepted == 1  # seqs do not clash with reserved ones
        reply = await future
    await gw.stop()
    assert reply["accepted"] == 1 and calls[0][:2] == (seq, "ack") and calls[0][2] > 0


# ------------------------------------------------------------- sync client


@contextmanager
def threaded_gateway(**options: Any) -> Iterator[FakeGateway]:
    """A fake gateway on its own loop, since the sync client blocks the caller."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    gw = asyncio.run_coroutine_threadsafe(gateway(**options), loop).result()
    try:
        yield gw
    finally:
        asyncio.run_coroutine_threadsafe(gw.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_sync_client_connects_at_once() -> None:
    with threaded_gateway(token="t") as gw:
        port = gw.port
        with pytest.raises(CairnServerError, match="unauthorized"):
            Client(port=port, token="bad")
    with pytest.raises(OSError):  # CairnConnectionError is a ConnectionError too
        Client(port=port, connect_timeout=2)


def test_sync_client() -> None:
    with threaded_gateway(hold=2) as gw:
        with Client(port=gw.port, frame_events=4) as client:
            assert client.max_batch == 10_000
            first = client.send(ev(i) for i in range(10))
            again = client.send(ev(i) for i in range(10))  # same connection, same ids
            status = client.request("status")
        assert gw.connections == 1
    assert (first.accepted, again.duplicates) == (10, 10)
    assert status["shards"] == 4


# ----------------------------------------------------------------- loadgen


def test_make_event_shapes() -> None:
    event = make_event(5, "r1", contacts=3)
    assert event == {
        "id": "br1-5", "contact": "c2", "type": "purchase", "ts": BASE_TS + 5,
        "attrs": {"total_amount": 185, "store_code": "RM", "currency": "EUR"},
    }
    kinds = [make_event(i, "r", 10, "mixed")["type"] for i in range(12)]
    assert kinds == list(MIXED_TYPES) * 2
    assert make_event(0, "r", 10, seed=3)["contact"] == "c3"
    with pytest.raises(ValueError):
        make_event(0, "r", 10, "nope")


def test_build_frames_deals_frames_round_robin() -> None:
    shares = build_frames(1050, 3, 100, 4 << 20, "r", 50)
    assert [len(s) for s in shares] == [4, 4, 3]
    assert [f.seq for f in shares[0]] == [1, 2, 3, 4]
    decoded = [decode(f.body) for s in shares for f in s]
    assert sum(len(d["events"]) for d in decoded) == 1050
    assert {e["id"] for d in decoded for e in d["events"]} == {f"br-{i}" for i in range(1050)}
    assert shares[1][0].first == 100 and shares[1][-1].events == 50


def test_latency_summary_percentiles() -> None:
    histogram = new_histogram()
    for ms in range(1, 1001):  # 1..1000 ms, one each
        record_latency(histogram, ms * 1_000_000)
    summary = latency_summary(histogram)
    assert summary["p50"] == pytest.approx(500, rel=0.002)
    assert summary["p90"] == pytest.approx(900, rel=0.002)
    assert summary["p99"] == pytest.approx(990, rel=0.002)
    assert summary["p999"] == pytest.approx(999, rel=0.002)
    assert summary["max"] == pytest.approx(1000, rel=0.002)
    assert summary["mean"] == pytest.approx(500.5, rel=0.002)
    assert latency_summary(new_histogram())["p99"] == 0.0


def test_record_latency_clamps() -> None:
    histogram = new_histogram()
    record_latency(histogram, 10)  # below 1 us
    record_latency(histogram, 10**12)  # above 60 s
    assert histogram.get_min_value() == 1
    assert histogram.get_max_value() >= 59_000_000


async def test_run_load_closed_loop() -> None:
    gw = await gateway()
    report = await run_load("127.0.0.1", gw.port, events=2500, connections=3, frame_events=100,
                            contacts=40, in_flight=4)
    await gw.stop()
    assert report["accepted"] == 2500 and report["frames"] == 25 and report["rejected"] == 0
    assert report["events_per_s"] > 0 and report["latency_ms"]["max"] >= report["latency_ms"]["p50"] > 0
    assert gw.connections == 3
    assert json.loads(report_json(report)) == report


async def test_run_load_open_loop_paces_sends() -> None:
    gw = await gateway()
    report = await run_load("127.0.0.1", gw.port, events=400, connections=2, frame_events=50,
                            contacts=10, in_flight=2, rate=2000.0, event_mix="mixed")
    await gw.stop()
    assert report["accepted"] == 400
    assert report["seconds"] >= 0.17  # the last frame is due at 350 events / 2000 per s
