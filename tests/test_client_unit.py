"""Producer client and load generator: the pure helpers, without a connection.

Frame building and splitting, ack merging, benchmark events and percentiles.
Everything that talks to a server runs against the real engine in
tests/test_client.py.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgpack
import pytest

from cairn.client import (
    FRAME_OVERHEAD,
    AsyncClient,
    CairnConnectionError,
    CairnSendError,
    CairnServerError,
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
)
from cairn.wire import decode


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


def test_merge_ack_keeps_an_out_of_frame_index_visible() -> None:
    result = SendResult()
    merge_ack(result, {"op": "ack", "seq": 1, "accepted": 0, "rejected": [{"index": 9, "code": "invalid"}]}, [4])
    assert result.rejected == [{"index": None, "code": "invalid"}]


# ------------------------------------------------------------------ errors


def test_server_error_from_reply_keeps_the_whole_frame() -> None:
    reply = {"op": "error", "seq": 3, "code": "invalid", "message": "bad.yaml: nope", "errors": [["a", "b"]]}
    err = CairnServerError.from_reply(reply, 3)
    assert (err.code, err.message, err.seq, err.reply["errors"]) == ("invalid", "bad.yaml: nope", 3, [["a", "b"]])
    assert str(err) == "invalid: bad.yaml: nope"
    assert CairnServerError.from_reply({"op": "error"}).code == "internal"


def test_send_error_summarises_failed_frames() -> None:
    failed = [{"seq": 2, "first_index": 10, "events": 10, "code": "internal", "message": "shard down"},
              {"seq": 5, "first_index": 40, "events": 10, "code": "internal", "message": "shard down"}]
    err = CairnSendError(SendResult(accepted=30), failed)
    assert isinstance(err, CairnServerError) and (err.code, err.seq) == ("internal", 2)
    assert "2 frame(s) failed" in err.message and err.result.accepted == 30


def test_connection_error_is_an_os_error() -> None:
    assert issubclass(CairnConnectionError, OSError)


def test_client_options_are_checked_and_seqs_reserved() -> None:
    with pytest.raises(ValueError):
        AsyncClient(max_in_flight=0)
    with pytest.raises(ValueError):
        AsyncClient(frame_events=0)
    client = AsyncClient()
    assert client.in_flight == 0
    first, second = client.reserve_seqs(3), client.reserve_seqs(2)
    assert (list(first), list(second)) == ([1, 2, 3], [4, 5])


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
