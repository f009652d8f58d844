"""Wire protocol v1 through a real socket, real Ray shard actors and real LMDB."""

from __future__ import annotations

import struct

import msgpack


def ev(i: int, contact: str = "c1", type_: str = "view", **attrs: object) -> dict[str, object]:
    return {"id": f"e{i}", "contact": contact, "type": type_, "ts": 1_764_000_000_000 + i, "attrs": attrs}


def test_hello_gets_welcome_with_limits(raw):
    welcome = raw().hello()
    assert welcome["op"] == "welcome"
    assert welcome["version"] == 1
    assert welcome["server"].startswith("cairn/")
    assert welcome["max_frame"] == 4 * 1024 * 1024
    assert welcome["max_batch"] == 10_000


def test_events_are_acked_after_commit_and_stored(engine, raw):
    c = raw()
    c.hello()
    c.send({"op": "events", "seq": 7, "events": [ev(1), ev(2, "c2")]})
    ack = c.recv()
    assert ack == {"op": "ack", "seq": 7, "accepted": 2, "duplicates": 0, "rejected": []}
    assert [e["id"] for e in engine.contact("c1")["history"]] == ["e1"]
    assert engine.status()["totals"]["events"] == 2


def test_resent_frame_changes_nothing(engine, raw):
    c = raw()
    c.hello()
    frame = {"op": "events", "seq": 1, "events": [ev(1), ev(2), ev(3, "c9")]}
    c.send(frame)
    assert c.recv()["accepted"] == 3
    before = engine.contact("c1")
    c.send(frame | {"seq": 2})
    ack = c.recv()
    assert (ack["accepted"], ack["duplicates"]) == (0, 3)
    assert engine.contact("c1") == before
    assert engine.status()["totals"]["events"] == 3


def test_duplicate_inside_one_frame_counts_once(raw):
    c = raw()
    c.hello()
    c.send({"op": "events", "seq": 1, "events": [ev(1), ev(1)]})
    ack = c.recv()
    assert (ack["accepted"], ack["duplicates"]) == (1, 1)


def test_same_id_for_two_contacts_is_not_a_duplicate(raw):
    c = raw()
    c.hello()
    c.send({"op": "events", "seq": 1, "events": [ev(1, "a"), ev(1, "b")]})
    assert c.recv()["accepted"] == 2


def test_many_frames_in_flight_are_matched_by_seq(engine, raw):
    c = raw()
    c.hello()
    for seq in range(50):
        c.send({"op": "events", "seq": 1000 + seq,
                "events": [ev(seq * 10 + k, f"c{k}") for k in range(10)]})
    acks = [c.recv() for _ in range(50)]
    assert sorted(a["seq"] for a in acks) == list(range(1000, 1050))
    assert sum(a["accepted"] for a in acks) == 500
    assert engine.status()["totals"]["events"] == 500


def test_per_contact_order_is_arrival_order(engine, raw):
    c = raw()
    c.hello()
    for i in range(40):
        c.send({"op": "events", "seq": i, "events": [
            {"id": f"p{i}", "contact": "ann", "type": "$profile", "attrs": {"set": {"n": i}}}]})
    for _ in range(40):
        assert c.recv()["op"] == "ack"
    found = engine.contact("ann")
    assert found["state"]["profile"]["n"] == 39
    assert [e["id"] for e in found["history"]] == [f"p{i}" for i in range(20, 40)]


def test_invalid_events_are_rejected_alone(engine, raw):
    c = raw()
    c.hello()
    events = [
        ev(1),
        {"id": "x", "type": "view"},  # no contact
        {"id": "y", "contact": "c1", "type": "view", "ts": "yesterday"},  # mistyped ts
        {"id": 5, "contact": "c1", "type": "view"},  # id not a string
        {"id": "z", "contact": "c1", "type": "view", "attrs": [1, 2]},  # attrs not a map
        ev(2),
    ]
    c.send({"op": "events", "seq": 3, "events": events})
    ack = c.recv()
    assert ack["accepted"] == 2
    rejected = {r["index"]: r for r in ack["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4]
    assert all(r["code"] == "invalid" for r in rejected.values())
    assert "contact" in rejected[1]["message"]
    assert "ts" in rejected[2]["message"]
    assert "id" in rejected[3]["message"]
    assert "attrs" in rejected[4]["message"]
    assert engine.status()["totals"]["events"] == 2


def test_wrong_first_op_is_refused(raw):
    c = raw()
    c.send({"op": "events", "seq": 1, "events": [ev(1)]})
    reply = c.recv()
    assert reply["op"] == "error" and reply["code"] == "invalid"
    assert "hello" in reply["message"]
    assert c.recv() is None  # closed


def test_unsupported_version(raw):
    c = raw()
    reply = c.hello(version=2)
    assert reply["code"] == "unsupported_version"
    assert c.recv() is None


def test_garbage_bytes_get_bad_frame_and_close(engine, raw):
    c = raw()
    c.hello()
    c.send_bytes(struct.pack(">I", 5) + b"\xc1\xff\x00\x13\x37")
    reply = c.recv()
    assert reply["op"] == "error" and reply["code"] == "bad_frame"
    assert c.recv() is None
    _still_serves(raw)


def test_non_map_frame_is_bad_frame(raw):
    c = raw()
    c.hello()
    body = msgpack.packb([1, 2, 3])
    c.send_bytes(struct.pack(">I", len(body)) + body)
    assert c.recv()["code"] == "bad_frame"


def test_oversized_frame_gets_too_large_and_close(raw):
    c = raw()
    c.hello()
    c.send_bytes(struct.pack(">I", 64 * 1024 * 1024))
    reply = c.recv()
    assert reply["code"] == "too_large"
    assert c.recv() is None
    _still_serves(raw)


def test_truncated_frame_does_not_disturb_others(raw):
    c = raw()
    c.hello()
    c.send_bytes(struct.pack(">I", 1000) + b"\x81\xa2op")
    c.close()
    _still_serves(raw)


def test_unknown_op_keeps_connection_open(raw):
    c = raw()
    c.hello()
    c.send({"op": "frobnicate", "seq": 9})
    reply = c.recv()
    assert (reply["code"], reply["seq"]) == ("unknown_op", 9)
    c.send({"op": "events", "seq": 10, "events": [ev(1)]})
    assert c.recv()["op"] == "ack"


def test_events_not_a_list_is_invalid_for_that_frame(raw):
    c = raw()
    c.hello()
    c.send({"op": "events", "seq": 4, "events": "nope"})
    reply = c.recv()
    assert (reply["code"], reply["seq"]) == ("invalid", 4)
    c.send({"op": "events", "seq": 5, "events": [ev(1)]})
    assert c.recv()["seq"] == 5


def test_too_many_events_in_one_frame(engine, raw):
    c = raw()
    c.hello()
    c.send({"op": "events", "seq": 1, "events": [ev(i, f"c{i}") for i in range(10_001)]})
    reply = c.recv()
    assert (reply["code"], reply["seq"]) == ("invalid", 1)
    assert engine.status()["totals"]["events"] == 0


def test_token_required_when_configured(make_engine, raw_conn):
    RawConn = raw_conn
    e = make_engine(token="s3cret")
    c = RawConn(e.host, e.port)
    assert c.hello()["code"] == "unauthorized"
    assert c.recv() is None
    c = RawConn(e.host, e.port)
    assert c.hello(token="wrong")["code"] == "unauthorized"
    c = RawConn(e.host, e.port)
    assert c.hello(token="s3cret")["op"] == "welcome"


def _still_serves(raw) -> None:
    other = raw()
    assert other.hello()["op"] == "welcome"
    other.send({"op": "events", "seq": 99, "events": [ev(12345, "other")]})
    assert other.recv()["op"] == "ack"
