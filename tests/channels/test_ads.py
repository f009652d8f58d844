"""Ads audiences (``kind: audience``): batched by size and by delay, flushed on
close, settled only once their batch arrived; real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

from cairn.channels import Dispatcher, load_channel_config

RETRY = {"max_attempts": 5, "base_ms": 100, "max_ms": 10_000}


def _change(make_effect, contact, op="add", audience="vip"):
    effect = make_effect(kind="audience", channel="ads", contact=contact, to=contact, node="sync_vip", run=1,
                         audience={"name": audience, "op": op})
    del effect["message"]  # the core writes "message" for message effects only
    return effect


def _config(url=None, batch_size=500, sync_delay_s=30.0):
    ads = {"batch_size": batch_size, "sync_delay_s": sync_delay_s, **({"url": url} if url else {})}
    return load_channel_config({"ads": ads, "retry": RETRY})


async def _settled(dispatcher, timeout=5.0):
    await asyncio.wait_for(dispatcher.settled(), timeout)


async def test_a_full_batch_is_one_post_with_adds_and_removes_apart(http_receiver, outbox, clock, tmp_path,
                                                                    make_effect):
    effects = [_change(make_effect, "c1"), _change(make_effect, "c2", "remove"), _change(make_effect, "c3"),
               _change(make_effect, "c4", "remove")]
    keys = [outbox.put(e) for e in effects]
    # One concurrency slot: buffered sends must not hold it while their batch fills.
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, batch_size=4, sync_delay_s=60), tmp_path, clock,
                            concurrency=1)
    try:
        assert await dispatcher.drain_once() == 4
        await _settled(dispatcher)
    finally:
        await dispatcher.close()

    [request] = http_receiver.requests
    assert request["json"] == {"audience": "vip", "add": ["c1", "c3"], "remove": ["c2", "c4"],
                               "effect_ids": [e["id"] for e in effects]}
    assert request["headers"]["content-type"] == "application/json"
    assert len(request["headers"]["idempotency-key"]) == 16
    assert outbox.sent == keys and not outbox.pending
    assert dispatcher.stats == {"ads": {"sent": 4, "retried": 0, "dead": 0}}


async def test_batches_form_across_shards_and_split_by_size_and_audience(http_receiver, outbox_factory, clock,
                                                                         tmp_path, make_effect):
    shards = [outbox_factory(), outbox_factory()]
    for i in range(3):
        for shard in shards:
            shard.put(_change(make_effect, f"{id(shard) % 97}-{i}"))
    shards[0].put(_change(make_effect, "x", audience="lapsed"))
    dispatcher = Dispatcher(shards, _config(http_receiver.url, batch_size=4, sync_delay_s=0.2), tmp_path, clock)
    try:
        await dispatcher.drain_once()
        await _settled(dispatcher)
    finally:
        await dispatcher.close()

    sizes = sorted((r["json"]["audience"], len(r["json"]["add"])) for r in http_receiver.requests)
    assert sizes == [("lapsed", 1), ("vip", 2), ("vip", 4)]  # 6 vip changes: one full batch, one by delay
    assert all(not s.pending for s in shards)
    assert dispatcher.stats["ads"]["sent"] == 7


async def test_delay_flush_settles_only_after_delivery_and_does_not_hold_up_other_channels(
        http_receiver, outbox, clock, tmp_path, make_effect):
    change = outbox.put(_change(make_effect, "c1"))
    message = outbox.put(make_effect(channel="push"))
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, sync_delay_s=0.3), tmp_path, clock)
    try:
        started = time.monotonic()
        assert await dispatcher.drain_once() == 2
        # The push message went to the file sink and is settled; the change waits.
        assert outbox.sent == [message] and change in outbox.pending
        assert not http_receiver.requests
        assert await dispatcher.drain_once() == 0
        await _settled(dispatcher)
        assert time.monotonic() - started >= 0.3
    finally:
        await dispatcher.close()
    [request] = http_receiver.requests
    assert request["json"]["add"] == ["c1"]
    assert outbox.sent == [message, change]


async def test_close_flushes_what_is_buffered(http_receiver, outbox, clock, tmp_path, make_effect):
    keys = [outbox.put(_change(make_effect, f"c{i}")) for i in range(3)]
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, sync_delay_s=3600), tmp_path, clock)
    await dispatcher.drain_once()
    assert not http_receiver.requests and not outbox.sent
    await asyncio.wait_for(dispatcher.close(), 5)
    [request] = http_receiver.requests
    assert request["json"]["add"] == ["c0", "c1", "c2"]
    assert outbox.sent == keys


async def test_a_source_offering_unsettled_effects_again_does_not_duplicate_them(
        http_receiver, outbox_factory, clock, tmp_path, make_effect):
    class NoLeases(outbox_factory):
        """Like the engine's outbox: offers every unsettled due effect, every time."""

        async def due(self, limit, now_ms):
            ready = [(k, e.raw, e.attempts) for k, e in self.pending.items() if e.ready_at <= now_ms]
            return ready[:limit]

    shard = NoLeases()
    changes = [shard.put(_change(make_effect, f"c{i}")) for i in range(3)]
    dispatcher = Dispatcher([shard], _config(http_receiver.url, sync_delay_s=0.3), tmp_path, clock, batch_size=3)
    try:
        assert await dispatcher.drain_once() == 3
        messages = [shard.put(make_effect(channel="push")) for _ in range(2)]
        # The buffered changes are skipped, and do not crowd out the new messages.
        assert await dispatcher.drain_once() == 2
        assert await dispatcher.drain_once() == 0
        await _settled(dispatcher)
    finally:
        await dispatcher.close()
    [request] = http_receiver.requests
    assert request["json"]["add"] == ["c0", "c1", "c2"]
    assert sorted(shard.sent) == sorted(changes + messages)


async def test_last_change_of_a_contact_wins_within_a_batch(http_receiver, outbox, clock, tmp_path, make_effect):
    for op in ("add", "remove", "add"):
        outbox.put(_change(make_effect, "c1", op))
    outbox.put(_change(make_effect, "c2", "add"))
    outbox.put(_change(make_effect, "c2", "remove"))
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, batch_size=5), tmp_path, clock)
    try:
        await dispatcher.drain_once()
        await _settled(dispatcher)
    finally:
        await dispatcher.close()
    [request] = http_receiver.requests
    assert (request["json"]["add"], request["json"]["remove"]) == (["c1"], ["c2"])
    assert len(request["json"]["effect_ids"]) == 5


async def test_failed_batch_retries_every_effect_then_delivers(http_receiver, outbox, clock, tmp_path, make_effect):
    http_receiver.fail_first = 1
    keys = [outbox.put(_change(make_effect, f"c{i}")) for i in range(2)]
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, sync_delay_s=0.05), tmp_path, clock)
    try:
        await dispatcher.drain_once()
        await _settled(dispatcher)
        assert [k for k, *_ in outbox.retries] == keys and "ads HTTP 500" in outbox.retries[0][1]
        clock.now = max(entry.ready_at for entry in outbox.pending.values())  # jitter differs per effect
        await dispatcher.drain_once()
        await _settled(dispatcher)
    finally:
        await dispatcher.close()
    assert [r["status"] for r in http_receiver.requests] == [500, 200]
    assert http_receiver.requests[1]["json"]["add"] == ["c0", "c1"]
    assert sorted(outbox.sent) == keys and not outbox.dead
    assert dispatcher.stats["ads"] == {"sent": 2, "retried": 2, "dead": 0}


async def test_rejected_batch_is_dead_lettered(http_receiver, outbox, clock, tmp_path, make_effect):
    http_receiver.fail_first, http_receiver.fail_status = 10, 422
    outbox.put(_change(make_effect, "c1"))
    outbox.put(_change(make_effect, "c2", op="drop"))  # malformed: dead at once, never buffered
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, sync_delay_s=0), tmp_path, clock)
    try:
        await dispatcher.drain_once()
        await _settled(dispatcher)
    finally:
        await dispatcher.close()
    assert len(http_receiver.requests) == 1 and len(http_receiver.requests[0]["json"]["effect_ids"]) == 1
    errors = sorted(err for _, _, err in outbox.dead)
    assert errors[0].startswith("ads HTTP 422") and errors[1].startswith("ads: invalid audience change")
    assert dispatcher.stats["ads"] == {"sent": 0, "retried": 0, "dead": 2}


async def test_without_url_batches_go_to_the_file_sink(outbox, clock, tmp_path, make_effect):
    changes = [_change(make_effect, "c1"), _change(make_effect, "c2", "remove"), _change(make_effect, "c3",
                                                                                           audience="lapsed")]
    for effect in changes:
        outbox.put(effect)
    outbox.put(make_effect(channel="email"))
    dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, clock)  # the demo's defaults
    await dispatcher.drain_once()
    assert len((tmp_path / "sent.ndjson").read_text().splitlines()) == 1  # the email; changes wait 30 s
    await asyncio.wait_for(dispatcher.close(), 5)

    lines = [json.loads(line) for line in (tmp_path / "sent.ndjson").read_text().splitlines()]
    assert lines[0]["channel"] == "email"
    batches = {line["audience"]: line for line in lines[1:]}
    assert {k: v for k, v in batches["vip"].items() if k != "sent_ms"} == {
        "audience": "vip", "add": ["c1"], "remove": ["c2"], "effect_ids": [changes[0]["id"], changes[1]["id"]]}
    assert batches["lapsed"]["add"] == ["c3"] and isinstance(batches["lapsed"]["sent_ms"], int)
    assert not outbox.pending and dispatcher.stats["ads"]["sent"] == 3


async def test_file_sink_of_the_ads_route_is_used(outbox, clock, tmp_path, make_effect):
    config = load_channel_config({"channels": {"ads": {"type": "file", "path": "ads.ndjson"}},
                                  "ads": {"sync_delay_s": 0}})
    outbox.put(_change(make_effect, "c1"))
    dispatcher = Dispatcher([outbox], config, tmp_path, clock)
    try:
        await dispatcher.drain_once()
        await _settled(dispatcher)
        [line] = (tmp_path / "ads.ndjson").read_text().splitlines()
    finally:
        await dispatcher.close()
    assert json.loads(line)["add"] == ["c1"] and not (tmp_path / "sent.ndjson").exists()


async def test_run_loop_and_stop_deliver_buffered_changes(http_receiver, outbox, tmp_path, make_effect):
    outbox.put(_change(make_effect, "c1"))
    dispatcher = Dispatcher([outbox], _config(http_receiver.url, sync_delay_s=3600), tmp_path, idle_sleep_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.1)
    outbox.put(_change(make_effect, "c2", "remove"))
    await asyncio.sleep(0.1)
    assert not http_receiver.requests and not outbox.sent
    stop.set()
    await asyncio.wait_for(task, 2)
    await asyncio.wait_for(dispatcher.close(), 5)
    [request] = http_receiver.requests
    assert (request["json"]["add"], request["json"]["remove"]) == (["c1"], ["c2"])
    assert not outbox.pending
