"""The producer client (``AsyncClient``, ``Client``) and the load generator against
the real engine: Ray shard actors, LMDB, the gateway on a real 127.0.0.1 socket.

Faults are produced for real too: an engine stopped while frames are in flight
(``shutting_down``, then a closed socket), a new engine started on the same port
and data folder, a shard actor killed (``internal`` answers).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
import ray

from cairn import _core
from cairn.client import (
    AsyncClient,
    CairnConnectionError,
    CairnSendError,
    CairnServerError,
    Client,
    events_body,
    pack_event,
)
from cairn.loadgen import report_json, run_load

# A loyalty rule crediting every purchase once: points prove nothing was applied twice.
LOYALTY = """
loyalty:
  - name: club
    rules:
      - name: every_purchase
        event: purchase
        effects: [{credit: {points: 10, kind: qualifying}}]
"""


def ev(i: int, contact: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "contact": contact or f"c{i % 3}", "type": "purchase", **extra}


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def contacts_of_shard(shard: int, shards: int, n: int) -> list[str]:
    found = [f"k{i}" for i in range(10 * n + 100) if _core.shard_of(f"k{i}", shards) == shard]
    assert len(found) >= n
    return found[:n]


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def totals(engine: Any) -> dict[str, int]:
    return engine.status()["totals"]


# ------------------------------------------------------------------ sending


async def test_send_acks_all_frames_and_says_hello(engine) -> None:
    seen_progress: list[int] = []
    async with AsyncClient(engine.host, engine.port, frame_events=10) as client:
        # The welcome was read: the server's name and limits are known.
        assert client.server == "cairn/0.1.0"
        assert (client.max_batch, client.max_frame) == (10_000, 4 * 1024 * 1024)
        assert engine.status()["connections"] == 1
        result = await client.send((ev(i) for i in range(95)), progress=seen_progress.append)
        assert client.in_flight == 0
    assert (result.accepted, result.duplicates, result.rejected, result.frames) == (95, 0, [], 10)
    assert seen_progress == sorted(seen_progress) and seen_progress[-1] == 95
    assert totals(engine)["events"] == 95


async def test_rejections_carry_caller_indices_across_frames(engine) -> None:
    engine.apply("profile_fields: {tag: text}\n")
    events = [ev(i) for i in range(30)]
    events[4] = "junk"  # refused by the client itself, never sent
    del events[17]["contact"]  # frame 3 (indices 16..23 of the sent ones)
    events[22]["type"] = ""  # same frame
    events[27] = {"id": "p27", "contact": "c0", "type": "$profile", "attrs": {"set": {"tag": 5}}}  # last frame
    async with AsyncClient(engine.host, engine.port, frame_events=8) as client:
        result = await client.send(events)
    assert result.frames == 4  # 29 events sent, 8 per frame
    assert result.accepted == 26
    assert [(r["index"], r["code"]) for r in result.rejected] == [
        (4, "invalid"), (17, "invalid"), (22, "invalid"), (27, "invalid")]
    assert "contact" in result.rejected[1]["message"]
    assert totals(engine)["events"] == 26


async def test_welcome_limits_cut_frames(make_engine) -> None:
    engine = make_engine(max_batch=7, max_frame=4000)
    async with AsyncClient(engine.host, engine.port, frame_events=1000) as client:
        assert (client.max_batch, client.max_frame) == (7, 4000)
        by_count = await client.send(ev(i, attrs={"pad": "y" * 100}) for i in range(100))
        # ~1 KB each: the byte limit binds before the count limit (3 per frame).
        by_bytes = await client.send(ev(1000 + i, attrs={"pad": "z" * 1000}) for i in range(30))
        # Alone bigger than max_frame: refused locally, the connection stays usable.
        too_big = await client.send([ev(2000), ev(2001, attrs={"pad": "x" * 5000}), ev(2002)])
    assert (by_count.accepted, by_count.frames, by_count.rejected) == (100, 15, [])  # ceil(100 / 7)
    assert (by_bytes.accepted, by_bytes.frames, by_bytes.rejected) == (30, 10, [])
    assert too_big.accepted == 2
    assert [(r["index"], r["code"]) for r in too_big.rejected] == [(1, "too_large")]
    assert totals(engine)["events"] == 132


async def test_token_right_wrong_and_missing(make_engine) -> None:
    engine = make_engine(token="s3cret")
    for token in ("wrong", None):
        with pytest.raises(CairnServerError) as info:
            await AsyncClient(engine.host, engine.port, token=token).connect()
        assert info.value.code == "unauthorized"
    async with AsyncClient(engine.host, engine.port, token="s3cret") as client:
        assert (await client.send([ev(1)])).accepted == 1
        assert (await client.request("status"))["totals"]["events"] == 1


async def test_connect_refused_fails_fast() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(CairnConnectionError) as info:
        await AsyncClient("127.0.0.1", port, connect_timeout=5).connect()
    assert time.monotonic() - started < 2  # no retry loop on the first connect
    assert isinstance(info.value, OSError)
    assert str(port) in str(info.value)


async def test_send_before_connect_is_refused(engine) -> None:
    client = AsyncClient(engine.host, engine.port)
    with pytest.raises(CairnConnectionError, match="not connected"):
        await client.send([ev(1)])
    await client.connect()
    await client.close()
    with pytest.raises(CairnConnectionError, match="closed"):
        await client.send([ev(1)])


# --------------------------------------------------------------- pipelining


async def test_frames_are_pipelined_with_send_raw(engine) -> None:
    acks: list[tuple[int, int]] = []
    async with AsyncClient(engine.host, engine.port, max_in_flight=16) as client:
        seqs = client.reserve_seqs(16)
        futures = []
        for n, seq in enumerate(seqs):
            body = events_body(seq, [pack_event(ev(10 * n + j)) for j in range(10)])
            futures.append(await client.send_raw(body, seq, lambda s, r, t: acks.append((s, t))))
        all_written_ns = time.perf_counter_ns()
        # Sixteen frames are on the wire before a single answer was read.
        assert client.in_flight == 16 and acks == []
        replies = await asyncio.gather(*futures)
    assert [r["seq"] for r in replies] == list(seqs)
    assert sum(r["accepted"] for r in replies) == 160
    assert sorted(s for s, _ in acks) == list(seqs)
    assert min(t for _, t in acks) > all_written_ns


async def test_send_keeps_up_to_max_in_flight_frames_unanswered(engine) -> None:
    seen: list[int] = []
    async with AsyncClient(engine.host, engine.port, frame_events=5, max_in_flight=6) as client:
        # progress runs as each answer is read: in_flight is what is still out then.
        result = await client.send((ev(i) for i in range(200)), progress=lambda _n: seen.append(client.in_flight))
    assert (result.accepted, result.frames) == (200, 40)
    assert max(seen) >= 2  # more than one frame awaited its ack: not stop-and-wait
    assert max(seen) < 6  # one was just answered, so at most max_in_flight - 1 remain


async def test_send_raw_reports_ack_time_and_refuses_a_seq_in_flight(engine) -> None:
    calls: list[tuple[int, str, int]] = []
    async with AsyncClient(engine.host, engine.port) as client:
        [seq] = client.reserve_seqs(1)
        body = events_body(seq, [pack_event(ev(1))])
        started = time.perf_counter_ns()
        future = await client.send_raw(body, seq, lambda s, r, t: calls.append((s, r["op"], t)))
        with pytest.raises(ValueError, match="in flight"):
            await client.send_raw(body, seq)
        assert (await client.send([ev(2)])).accepted == 1  # seqs do not clash with reserved ones
        reply = await future
    assert reply == {"op": "ack", "seq": seq, "accepted": 1, "duplicates": 0, "rejected": []}
    assert calls[0][:2] == (seq, "ack") and calls[0][2] > started


async def test_frame_over_max_batch_gets_an_error_answer(make_engine) -> None:
    engine = make_engine(max_batch=5)
    async with AsyncClient(engine.host, engine.port) as client:
        [seq] = client.reserve_seqs(1)
        body = events_body(seq, [pack_event(ev(i)) for i in range(6)])
        with pytest.raises(CairnServerError) as info:
            await (await client.send_raw(body, seq))
        assert (info.value.code, info.value.seq) == ("invalid", seq)
        assert "max_batch" in info.value.message
        # The error was tied to the frame: the connection still works.
        assert (await client.send(ev(i) for i in range(12))).accepted == 12
    assert totals(engine)["events"] == 12


# ------------------------------------------------------- restart and resend


async def test_engine_restart_mid_send_resends_unacked_frames(make_engine) -> None:
    """Stop the engine while frames are in flight, start a new one on the same port
    and data folder: the client reconnects, resends what had no ack, and nothing is
    lost or applied twice."""
    port = free_port()
    first = make_engine(port=port)
    first.apply(LOYALTY)
    async with AsyncClient("127.0.0.1", port, frame_events=20, max_in_flight=64) as client:
        part1 = await client.send(ev(i, f"c{i % 5}") for i in range(300))
        assert (part1.accepted, part1.duplicates) == (300, 0)

        seen: list[int] = []
        sending = asyncio.create_task(
            client.send((ev(i, f"c{i % 5}") for i in range(300, 10_300)), progress=seen.append))
        await wait_for(lambda: bool(seen))  # part 2 is under way
        await asyncio.to_thread(first.stop)  # finish and ack accepted frames, shutting_down, close
        assert not sending.done()
        second = await asyncio.to_thread(make_engine, port=port)
        part2 = await asyncio.wait_for(sending, 60)
        assert second.port == port and second.status()["definitions_version"] == 1

        # Every event of part 2 was committed exactly once, by one engine or the other.
        assert part2.accepted + part2.duplicates == 10_000 and part2.rejected == []
        assert part2.frames == 500

        # Everything again plus new events: old ones are duplicates, exactly.
        part3 = await client.send(ev(i, f"c{i % 5}") for i in range(10_500))
    assert (part3.accepted, part3.duplicates, part3.frames) == (200, 10_300, 525)
    assert totals(second)["events"] == 10_500
    points = [second.contact(f"c{c}")["state"]["loyalty"]["club"]["qualifying"] for c in range(5)]
    assert points == [10 * 2100] * 5  # 2100 purchases each, credited once


async def test_stop_acks_what_it_accepted(make_engine) -> None:
    """Frames the server read before a stop are committed and acked before it closes."""
    port = free_port()
    # Batches linger 30 s: the frames are accepted but not committed until the stop.
    first = make_engine(port=port, linger_ms=30_000)
    async with AsyncClient("127.0.0.1", port, frame_events=10) as client:
        sending = asyncio.create_task(client.send(ev(i) for i in range(50)))
        await wait_for(lambda: client.in_flight == 5)
        # Answered after the server has read the five frames before it on this connection.
        status = await client.request("status")
        assert status["totals"]["events"] == 0 and client.in_flight == 5
        await asyncio.to_thread(first.stop)  # commits the five frames and acks them
        result = await asyncio.wait_for(sending, 60)
    assert (result.accepted, result.duplicates, result.frames, result.rejected) == (50, 0, 5, [])


def test_resend_after_lost_acks_counts_duplicates(engine, raw_conn) -> None:
    """A producer whose connection died after the commit, before it read the acks,
    resends: the engine reports every event as a duplicate and applies nothing twice."""
    lost = raw_conn(engine.host, engine.port)
    assert lost.hello()["op"] == "welcome"
    for f in range(5):
        lost.send({"op": "events", "seq": f, "events": [ev(i) for i in range(f * 10, f * 10 + 10)]})
    deadline = time.monotonic() + 30
    while totals(engine)["events"] < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    lost.close()  # the acks are never read
    with Client(engine.host, engine.port, frame_events=10) as client:
        result = client.send([ev(i) for i in range(50)])
    assert (result.accepted, result.duplicates, result.frames, result.rejected) == (0, 50, 5, [])
    assert totals(engine)["events"] == 50


def test_sync_client_survives_an_engine_restart(make_engine) -> None:
    port = free_port()
    first = make_engine(port=port)
    with Client("127.0.0.1", port, frame_events=25) as client:
        before = client.send([ev(i) for i in range(100)])
        first.stop()
        second = make_engine(port=port)
        after = client.send([ev(i) for i in range(150)])  # queued until the reconnect
    assert (before.accepted, after.accepted, after.duplicates) == (100, 50, 100)
    assert totals(second)["events"] == 150


async def test_reconnect_gives_up_when_no_engine_comes_back(make_engine) -> None:
    port = free_port()
    first = make_engine(port=port)
    client = AsyncClient("127.0.0.1", port, frame_events=5, reconnect_attempts=2)
    await client.connect()
    await asyncio.to_thread(first.stop)
    with pytest.raises(CairnConnectionError, match="gave up"):
        await asyncio.wait_for(client.send(ev(i) for i in range(10)), 20)
    with pytest.raises(CairnConnectionError):  # the client stays failed
        await client.send([ev(99)])
    await client.close()


async def test_dead_shard_gives_internal_errors_after_the_rest_completes(make_engine) -> None:
    """A killed shard actor fails the frames holding its events with ``internal``:
    those frames are resent (up to ``reconnect_attempts``), then ``send`` raises
    ``CairnSendError`` once every other frame was acked."""
    engine = make_engine(dispatch=False)
    healthy, doomed = contacts_of_shard(0, 2, 10), contacts_of_shard(1, 2, 10)
    events = ([ev(i, healthy[i % 10]) for i in range(20)] + [ev(20 + i, doomed[i]) for i in range(10)]
              + [ev(30 + i, healthy[i]) for i in range(10)])
    ray.kill(engine.engine.actors[1], no_restart=True)
    async with AsyncClient(engine.host, engine.port, frame_events=10, reconnect_attempts=2) as client:
        with pytest.raises(CairnSendError) as info:
            await asyncio.wait_for(client.send(events), 30)
        # An admin request is not resent on internal: it fails at once.
        with pytest.raises(CairnServerError) as status_error:
            await client.request("status")
        assert (await client.request("contact", contact=healthy[0]))["found"]["contact"] == healthy[0]
    err = info.value
    assert err.code == "internal" and "resend" in err.errors[0]["message"]
    assert (err.result.accepted, err.result.frames) == (30, 3)
    assert [(e["seq"], e["first_index"], e["events"], e["code"]) for e in err.errors] == [(3, 20, 10, "internal")]
    assert status_error.value.code == "internal"


# ------------------------------------------------------------------- admin


async def test_request_round_trip_and_errors(engine) -> None:
    async with AsyncClient(engine.host, engine.port) as client:
        status = await client.request("status")
        assert status["op"] == "status" and status["server"] == "cairn/0.1.0"
        assert status["address"] == f"127.0.0.1:{engine.port}" and len(status["shards"]) == 2

        with pytest.raises(CairnServerError) as unknown:
            await client.request("frobnicate", x=1)

        applied = await client.request("apply", name="club.yaml", definitions=LOYALTY)
        assert applied["op"] == "applied" and applied["version"] == 1

        with pytest.raises(CairnServerError) as invalid:
            await client.request("apply", name="bad.yaml", definitions=LOYALTY.replace("kind: qualifying", "kind: gold"))
        with pytest.raises(CairnServerError) as broken:
            await client.request("apply", name="broken.yaml", definitions="programs: [\n")

        assert (await client.send([ev(1, "ann")])).accepted == 1
        found = (await client.request("contact", contact="ann"))["found"]
        missing = await client.request("contact", contact="nobody")
        again = await client.request("status")
    assert unknown.value.code == "unknown_op" and "frobnicate" in unknown.value.message
    assert invalid.value.code == "invalid" and "bad.yaml" in invalid.value.message
    errors = invalid.value.reply["errors"]
    assert any("loyalty[0].rules[0].effects[0]" in path and "gold" in message for path, message in errors)
    assert broken.value.code == "invalid" and "broken.yaml" in broken.value.message
    assert broken.value.reply["errors"]
    assert found["contact"] == "ann" and found["state"]["loyalty"]["club"]["qualifying"] == 10
    assert missing["found"] is None
    assert again["definitions_version"] == 1  # the invalid files changed nothing


# ------------------------------------------------------------- sync client


def test_sync_client_connects_at_once(make_engine) -> None:
    engine = make_engine(token="t")
    with pytest.raises(CairnServerError, match="unauthorized"):
        Client(engine.host, engine.port, token="bad")
    with pytest.raises(OSError):  # CairnConnectionError is a ConnectionError too
        Client("127.0.0.1", free_port(), connect_timeout=2)


def test_sync_client(engine) -> None:
    with Client(engine.host, engine.port, frame_events=4) as client:
        assert (client.max_batch, client.max_frame) == (10_000, 4 * 1024 * 1024)
        first = client.send(ev(i) for i in range(10))
        again = client.send(ev(i) for i in range(10))  # same connection, same ids
        status = client.request("status")
        with pytest.raises(CairnServerError, match="unknown_op"):
            client.request("nope")
    assert (first.accepted, first.frames, again.accepted, again.duplicates) == (10, 3, 0, 10)
    assert status["connections"] == 1 and status["totals"]["events"] == 10


# ----------------------------------------------------------------- loadgen


def assert_sane_latency(latency: dict[str, float]) -> None:
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p999"] <= latency["max"]
    assert 0 < latency["mean"] <= latency["max"]


async def test_run_load_closed_loop(engine) -> None:
    report = await run_load(engine.host, engine.port, events=5000, connections=2, frame_events=250,
                            contacts=50, in_flight=4)
    assert (report["accepted"], report["duplicates"], report["rejected"], report["frame_errors"]) == (5000, 0, 0, 0)
    assert report["frames"] == 20 and report["connections"] == 2
    assert report["events_per_s"] > 0 and report["seconds"] > 0
    assert report["process_cpu_us_per_event"] > 0  # this process drove 5,000 events
    assert_sane_latency(report["latency_ms"])
    assert json.loads(report_json(report)) == report
    assert totals(engine)["events"] == 5000


async def test_run_load_open_loop_paces_sends(engine) -> None:
    report = await run_load(engine.host, engine.port, events=5000, connections=2, frame_events=250,
                            contacts=50, in_flight=4, rate=20_000.0, event_mix="mixed")
    assert (report["accepted"], report["rejected"], report["frame_errors"]) == (5000, 0, 0)
    assert report["rate"] == 20_000.0 and report["event_mix"] == "mixed"
    assert report["seconds"] >= 0.2375  # the last frame is due at 4750 events / 20000 per s
    assert_sane_latency(report["latency_ms"])
    assert totals(engine)["events"] == 5000


async def test_run_load_with_token(make_engine) -> None:
    engine = make_engine(token="tok")
    with pytest.raises(CairnServerError, match="unauthorized"):
        await run_load(engine.host, engine.port, events=10, connections=1, frame_events=5, contacts=2, in_flight=1)
    report = await run_load(engine.host, engine.port, "tok", events=100, connections=3, frame_events=10,
                            contacts=7, in_flight=2)
    assert (report["accepted"], report["frames"]) == (100, 10)
