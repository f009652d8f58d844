"""Webhook delivery against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

from cairn.channels import Dispatcher, load_channel_config


def _config(url: str, **retry):
    return load_channel_config({
        "channels": {"sms": {"type": "webhook", "url": url, "headers": {"Authorization": "Bearer t0k"},
                             "timeout_s": 2}},
        "retry": {"max_attempts": 5, "base_ms": 100, "max_ms": 10_000, **retry},
    })


def _sms(make_effect, **kw):
    return make_effect(channel="sms", to="+3912345", node="send_sms",
                       message={"text": "Hi {{ profile.first_name }}, {{ event.total_amount }} EUR"}, **kw)


async def test_webhook_posts_payload_with_idempotency_key(http_receiver, outbox, clock, tmp_path, make_effect):
    effect = _sms(make_effect)
    outbox.put(effect)
    dispatcher = Dispatcher([outbox], _config(http_receiver.url), tmp_path, clock)
    try:
        assert await dispatcher.drain_once() == 1
    finally:
        await dispatcher.close()

    [request] = http_receiver.requests
    assert request["path"] == "/hook"
    assert request["headers"]["idempotency-key"] == effect["id"]
    assert request["headers"]["authorization"] == "Bearer t0k"
    assert request["headers"]["content-type"] == "application/json"
    assert request["json"] == {
        "id": effect["id"], "channel": "sms", "contact": "c1", "to": "+3912345", "program": "milan_vip",
        "version": 3, "node": "send_sms", "event_id": "e1", "created_ms": 1_700_000_000_000,
        "message": {"text": "Hi Ann, 42 EUR"},
    }
    assert outbox.sent and not outbox.pending
    assert dispatcher.stats == {"sms": {"sent": 1, "retried": 0, "dead": 0}}


async def test_500_twice_then_ok_is_retried_with_backoff_and_delivered_once(
        http_receiver, outbox, clock, tmp_path, make_effect, drain_all):
    http_receiver.fail_first = 2
    effect = _sms(make_effect)
    key = outbox.put(effect)
    dispatcher = Dispatcher([outbox], _config(http_receiver.url), tmp_path, clock)
    try:
        start = clock.now
        assert await dispatcher.drain_once() == 1
        # Not due yet: nothing is sent before the backoff elapses.
        assert await dispatcher.drain_once() == 0
        await drain_all(dispatcher, outbox)
    finally:
        await dispatcher.close()

    assert [r["status"] for r in http_receiver.requests] == [500, 500, 200]
    assert {r["headers"]["idempotency-key"] for r in http_receiver.requests} == {effect["id"]}
    assert outbox.sent == [key] and not outbox.dead
    first, second = outbox.retries
    assert 100 <= first[2] - start <= 110      # base_ms * 2**0, up to 10% jitter
    assert 200 <= second[2] - second[3] <= 220  # base_ms * 2**1
    assert "HTTP 500" in first[1]
    assert dispatcher.stats["sms"] == {"sent": 1, "retried": 2, "dead": 0}


async def test_400_is_dead_lettered_immediately(http_receiver, outbox, clock, tmp_path, make_effect):
    http_receiver.fail_first, http_receiver.fail_status = 10, 400
    key = outbox.put(_sms(make_effect))
    dispatcher = Dispatcher([outbox], _config(http_receiver.url), tmp_path, clock)
    try:
        await dispatcher.drain_once()
    finally:
        await dispatcher.close()
    assert len(http_receiver.requests) == 1
    assert [k for k, _, _ in outbox.dead] == [key] and "HTTP 400" in outbox.dead[0][2]
    assert not outbox.retries
    assert dispatcher.stats["sms"] == {"sent": 0, "retried": 0, "dead": 1}


async def test_429_is_temporary(http_receiver, outbox, clock, tmp_path, make_effect):
    http_receiver.fail_first, http_receiver.fail_status = 1, 429
    outbox.put(_sms(make_effect))
    dispatcher = Dispatcher([outbox], _config(http_receiver.url), tmp_path, clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    assert len(outbox.retries) == 1 and not outbox.dead


async def test_receiver_down_is_retried_until_max_attempts(closed_port, outbox, clock, tmp_path, make_effect, drain_all):
    outbox.put(_sms(make_effect))
    dispatcher = Dispatcher([outbox], _config(f"http://127.0.0.1:{closed_port}/sms", max_attempts=2),
                            tmp_path, clock)
    try:
        await drain_all(dispatcher, outbox)
    finally:
        await dispatcher.close()
    assert len(outbox.retries) == 1 and len(outbox.dead) == 1
    assert "ConnectError" in outbox.dead[0][2]
