"""Webhook actions (``kind: webhook``) against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json

from cairn.channels import Dispatcher, load_channel_config

RETRY = {"max_attempts": 5, "base_ms": 100, "max_ms": 10_000}


def _action(make_effect, url, body):
    effect = make_effect(kind="webhook", channel="webhook", to=url, node="call_crm", run=1,
                         webhook={"url": url, "body": body})
    del effect["message"]  # the core writes "message" for message effects only
    return effect


async def _deliver(outbox, tmp_path, clock, config=None):
    dispatcher = Dispatcher([outbox], load_channel_config(config or {"retry": RETRY}), tmp_path, clock)
    try:
        await dispatcher.drain_once()
    finally:
        await dispatcher.close()
    return dispatcher


async def test_posts_rendered_text_body_with_idempotency_key(http_receiver, outbox, clock, tmp_path, make_effect):
    effect = _action(make_effect, http_receiver.url, "Hi {{ profile.first_name }}, {{ event.total_amount }} EUR")
    key = outbox.put(effect)
    dispatcher = await _deliver(outbox, tmp_path, clock)

    [request] = http_receiver.requests
    assert request["path"] == "/hook"
    assert request["body"] == b"Hi Ann, 42 EUR"
    assert request["headers"]["content-type"].startswith("text/plain")
    assert request["headers"]["idempotency-key"] == effect["id"]
    assert outbox.sent == [key]
    assert dispatcher.stats == {"webhook": {"sent": 1, "retried": 0, "dead": 0}}


async def test_json_body_template_is_sent_as_json(http_receiver, outbox, clock, tmp_path, make_effect):
    body = '{"name": {{ profile.first_name | tojson }}, "total": {{ event.total_amount }}, "club": ' \
           '{{ loyalty.club.non_qualifying }}}'
    outbox.put(_action(make_effect, http_receiver.url, body))
    await _deliver(outbox, tmp_path, clock)
    [request] = http_receiver.requests
    assert request["headers"]["content-type"] == "application/json"
    assert request["json"] == {"name": "Ann", "total": 42, "club": 50}


async def test_no_body_posts_the_context_as_json_whatever_the_channels_config(
        http_receiver, closed_port, outbox, clock, tmp_path, make_effect):
    effect = _action(make_effect, http_receiver.url + "?src=cairn", None)
    outbox.put(effect)
    # Neither a default webhook nor any other channel entry reroutes webhook actions.
    config = {"channels": {"default": {"type": "webhook", "url": f"http://127.0.0.1:{closed_port}/x"}}}
    dispatcher = await _deliver(outbox, tmp_path, clock, config)

    [request] = http_receiver.requests
    assert request["path"] == "/hook?src=cairn"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["idempotency-key"] == effect["id"]
    context = effect["context"]
    assert request["json"] == {
        "effect_id": effect["id"], "contact": "c1", "program": "milan_vip", "node": "call_crm",
        "event": context["event"], "profile": {"first_name": "Ann"}, "loyalty": context["loyalty"],
    }
    assert dispatcher.stats["webhook"]["sent"] == 1 and not outbox.pending


async def test_4xx_is_permanent(http_receiver, outbox, clock, tmp_path, make_effect):
    http_receiver.fail_first, http_receiver.fail_status = 10, 404
    key = outbox.put(_action(make_effect, http_receiver.url, "x"))
    dispatcher = await _deliver(outbox, tmp_path, clock)
    assert len(http_receiver.requests) == 1
    assert [k for k, _, _ in outbox.dead] == [key] and "HTTP 404" in outbox.dead[0][2]
    assert not outbox.retries
    assert dispatcher.stats["webhook"] == {"sent": 0, "retried": 0, "dead": 1}


async def test_5xx_and_429_are_retried_with_backoff_then_delivered_once(
        http_receiver, outbox, clock, tmp_path, make_effect, drain_all):
    http_receiver.fail_first, http_receiver.fail_status = 2, 503
    effect = _action(make_effect, http_receiver.url, "ping")
    key = outbox.put(effect)
    dispatcher = Dispatcher([outbox], load_channel_config({"retry": RETRY}), tmp_path, clock)
    try:
        start = clock.now
        await drain_all(dispatcher, outbox)
    finally:
        await dispatcher.close()
    assert [r["status"] for r in http_receiver.requests] == [503, 503, 200]
    assert {r["headers"]["idempotency-key"] for r in http_receiver.requests} == {effect["id"]}
    assert outbox.sent == [key] and not outbox.dead
    assert 100 <= outbox.retries[0][2] - start <= 110  # the shared exponential backoff
    assert dispatcher.stats["webhook"] == {"sent": 1, "retried": 2, "dead": 0}


async def test_bad_url_and_broken_body_template_are_dead_lettered(outbox, clock, tmp_path, make_effect):
    outbox.put(_action(make_effect, "ftp://example.com/x", "x"))
    outbox.put(_action(make_effect, "http://127.0.0.1:1/x", "{{ ''.__class__.__mro__ }}"))
    dispatcher = await _deliver(outbox, tmp_path, clock)
    errors = [err for _, _, err in outbox.dead]
    assert errors[0] == "webhook: invalid url 'ftp://example.com/x'"
    assert errors[1].startswith("webhook.body: sandbox violation")
    assert dispatcher.stats["webhook"]["dead"] == 2


def test_body_json_detection():
    from cairn.channels.webhook import JSON_TYPE, TEXT_TYPE, action_body

    assert action_body({}, {"body": ' [1, {"a": 2}]'}) == (b' [1, {"a": 2}]', JSON_TYPE)
    assert action_body({}, {"body": "{not json"})[1] == TEXT_TYPE
    assert action_body({}, {"body": "42"})[1] == TEXT_TYPE  # a bare scalar is meant as text
    body, kind = action_body({"id": "x", "context": {}}, {})
    assert kind == JSON_TYPE and json.loads(body)["effect_id"] == "x"
