"""Dispatcher behaviour independent of any one transport (uses the file sink)."""

from __future__ import annotations

import asyncio
import json

import msgpack

from cairn.channels import Dispatcher, load_channel_config
from cairn.channels.backoff import retry_at
from cairn.channels.config import RetryPolicy


async def test_sandbox_violation_dead_letters_only_that_effect(outbox, clock, tmp_path, make_effect):
    bad = outbox.put(make_effect(message={"text": "{{ ''.__class__.__mro__ }}"}))
    good = outbox.put(make_effect())
    dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    assert [k for k, _, _ in outbox.dead] == [bad]
    assert "sandbox violation" in outbox.dead[0][2]
    assert outbox.sent == [good]
    assert dispatcher.last_error["email"].startswith("message.text: sandbox violation")


async def test_personalization_with_missing_values_is_delivered(outbox, clock, tmp_path, make_effect):
    outbox.put(make_effect(
        message={"text": "Hi {{ profile.first_name | default('there') }}, thanks for {{ event.attrs.total_amount }} EUR"},
        context={"contact": "c1", "event": {"id": "e1", "type": "purchase", "attrs": {}}},
    ))
    dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    [line] = (tmp_path / "sent.ndjson").read_text().splitlines()
    assert json.loads(line)["message"] == {"text": "Hi there, thanks for  EUR"}


async def test_undecodable_effect_is_dead_lettered(outbox, clock, tmp_path):
    outbox.put_raw(b"\xc1 not msgpack")
    outbox.put_raw(msgpack.packb([1, 2, 3]))
    dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, clock)
    assert await dispatcher.drain_once() == 2
    await dispatcher.close()
    assert len(outbox.dead) == 2 and all("undecodable" in err for _, _, err in outbox.dead)
    assert dispatcher.stats["unknown"]["dead"] == 2


async def test_drains_several_sources_in_bounded_batches(outbox_factory, clock, tmp_path, make_effect):
    shards = [outbox_factory() for _ in range(3)]
    for i, shard in enumerate(shards):
        for _ in range(5 + i):
            shard.put(make_effect(channel="push"))
    dispatcher = Dispatcher(shards, load_channel_config(None), tmp_path, clock, batch_size=4, concurrency=2)
    assert await dispatcher.drain_once() == 12  # 4 per shard per pass
    assert await dispatcher.drain_once() == 6
    assert await dispatcher.drain_once() == 0
    await dispatcher.close()
    assert all(not s.pending for s in shards)
    assert len((tmp_path / "sent.ndjson").read_text().splitlines()) == 18
    assert dispatcher.stats == {"push": {"sent": 18, "retried": 0, "dead": 0}}


async def test_run_loop_delivers_until_stopped(outbox, tmp_path, make_effect):
    dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, idle_sleep_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    outbox.put(make_effect())
    for _ in range(200):
        if outbox.sent:
            break
        await asyncio.sleep(0.01)
    outbox.put(make_effect())  # arrives while the loop is idling
    for _ in range(200):
        if len(outbox.sent) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    await dispatcher.close()
    assert len(outbox.sent) == 2


async def test_run_loop_survives_a_failing_source(outbox, tmp_path, make_effect):
    class Broken:
        async def due(self, limit, now_ms):
            raise ConnectionError("shard actor restarting")

        async def settle(self, sent, failed, now_ms):
            raise AssertionError("never called")

    outbox.put(make_effect())
    dispatcher = Dispatcher([Broken(), outbox], load_channel_config(None), tmp_path, idle_sleep_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    for _ in range(200):
        if outbox.sent:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    await dispatcher.close()
    assert len(outbox.sent) == 1


def test_backoff_is_exponential_capped_deterministic_and_bounded():
    policy = RetryPolicy(max_attempts=6, base_ms=500, max_ms=3000)
    delays = [retry_at(policy, "9f2c00aa11bb22cc", n, 0, permanent=False) for n in range(5)]
    for delay, base in zip(delays[:3], [500, 1000, 2000]):
        assert base <= delay <= base + base // 10  # base_ms * 2**attempts + <=10% jitter
    assert all(3000 <= d <= 3300 for d in delays[3:])  # capped at max_ms (+ jitter)
    assert delays == [retry_at(policy, "9f2c00aa11bb22cc", n, 0, permanent=False) for n in range(5)]
    assert retry_at(policy, "x", 5, 0, permanent=False) is None  # attempts+1 >= max_attempts
    assert retry_at(policy, "x", 0, 0, permanent=True) is None


async def test_legacy_effect_without_kind_is_a_message(outbox, clock, tmp_path, make_effect):
    legacy = make_effect(channel="sms")  # outbox rows written before kinds existed
    current = make_effect(channel="sms", kind="message", run=2)
    unknown = outbox.put(make_effect(kind="carrier_pigeon"))
    outbox.put(legacy)
    outbox.put(current)
    dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    lines = [json.loads(line) for line in (tmp_path / "sent.ndjson").read_text().splitlines()]
    assert [line["id"] for line in lines] == [legacy["id"], current["id"]]
    assert all(line["message"] == {"text": "Hi Ann"} for line in lines)
    assert outbox.dead == [(unknown, outbox.dead[0][1], "unknown effect kind 'carrier_pigeon'")]
    assert dispatcher.stats == {"sms": {"sent": 2, "retried": 0, "dead": 0},
                                "email": {"sent": 0, "retried": 0, "dead": 1}}
