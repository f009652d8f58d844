"""Messages out of a running engine: real SMTP (aiosmtpd) and a real HTTP webhook
receiver on 127.0.0.1, fed through the socket, the shard actors and the outbox."""

from __future__ import annotations

import pytest

from cairn.client import Client

DEFS = """
programs:
  - name: welcome
    trigger: {event: signup}
    nodes:
      - id: mail
        type: action
        send:
          channel: email
          subject: "Welcome {{ profile.first_name }}"
          text: "Hello {{ profile.first_name }}, you signed up from {{ event.city }}."
          html: "<p>Hello <b>{{ profile.first_name }}</b></p>"
        next: sms
      - id: sms
        type: action
        send: {channel: sms, text: "Code {{ event.code }}"}
        next: done
      - id: done
        type: end
"""


def _signup(contact: str, email: str, phone: str) -> list[dict[str, object]]:
    return [
        {"id": f"{contact}-p", "contact": contact, "type": "$profile",
         "attrs": {"set": {"first_name": contact.title(), "email": email, "phone": phone,
                           "email_opt_in": True}}},
        {"id": f"{contact}-s", "contact": contact, "type": "signup", "attrs": {"city": "Milano", "code": 4711}},
    ]


def _engine(make_engine, smtp_server, http_receiver, max_attempts: int = 5):
    channels = {
        "channels": {
            "email": {"type": "smtp", "host": "127.0.0.1", "port": smtp_server.port, "sender": "shop@example.com"},
            "sms": {"type": "webhook", "url": http_receiver.url},
        },
        "retry": {"max_attempts": max_attempts, "base_ms": 20, "max_ms": 200},
    }
    engine = make_engine(channels=channels)
    engine.apply(DEFS)
    return engine


def test_email_over_smtp_and_sms_over_webhook(make_engine, smtp_server, http_receiver):
    engine = _engine(make_engine, smtp_server, http_receiver)
    with Client(host=engine.host, port=engine.port) as client:
        client.send(_signup("ann", "ann@example.com", "+39333"))
    engine.flush()

    (mail,) = smtp_server.messages
    assert mail["rcpt_tos"] == ["ann@example.com"]
    msg = mail["message"]
    assert msg["Subject"] == "Welcome Ann"
    assert msg.get_body(("plain",)).get_content().strip() == "Hello Ann, you signed up from Milano."
    assert "<b>Ann</b>" in msg.get_body(("html",)).get_content()
    effect_id = msg["X-Cairn-Effect-Id"]

    (hook,) = http_receiver.requests
    assert hook["json"]["to"] == "+39333"
    assert hook["json"]["message"]["text"] == "Code 4711"
    assert hook["headers"]["idempotency-key"] == hook["json"]["id"] != effect_id
    status = engine.status()
    assert status["totals"]["outbox"] == 0 and status["totals"]["dead_letters"] == 0


def test_failing_webhook_is_retried_then_delivered_once(make_engine, smtp_server, http_receiver):
    http_receiver.fail_first = 2
    engine = _engine(make_engine, smtp_server, http_receiver)
    with Client(host=engine.host, port=engine.port) as client:
        client.send(_signup("bob", "bob@example.com", "+39444"))
    engine.flush()
    statuses = [r["status"] for r in http_receiver.requests]
    assert statuses == [500, 500, 200]
    assert len({r["json"]["id"] for r in http_receiver.requests}) == 1
    assert engine.status()["totals"]["dead_letters"] == 0


def test_rejected_webhook_lands_in_dead_letters(make_engine, smtp_server, http_receiver):
    http_receiver.fail_first, http_receiver.fail_status = 100, 400
    engine = _engine(make_engine, smtp_server, http_receiver)
    with Client(host=engine.host, port=engine.port) as client:
        client.send(_signup("cy", "cy@example.com", "+39555"))
        engine.flush()
        status = client.request("status")
        dead = client.request("dead_letters")["rows"]
    assert status["totals"]["dead_letters"] == 1
    assert dead[0]["effect"]["channel"] == "sms" and "400" in dead[0]["error"]
    assert len(smtp_server.messages) == 1  # the email of the same run still went out


SMS_ONLY = """
programs:
  - name: code
    trigger: {event: sms_me}
    nodes:
      - {id: sms, type: action, send: {channel: sms, text: "Code {{ event.code }}"}, next: done}
      - {id: done, type: end}
"""


def test_flush_says_when_messages_are_still_waiting(make_engine, http_receiver):
    http_receiver.fail_first = 100  # every attempt gets a 500: retried, never delivered
    engine = make_engine(channels={"channels": {"sms": {"type": "webhook", "url": http_receiver.url}},
                                   "retry": {"max_attempts": 5, "base_ms": 60_000, "max_ms": 60_000}})
    engine.apply(SMS_ONLY)
    with Client(host=engine.host, port=engine.port) as client:
        client.send([{"id": "p", "contact": "dan", "type": "$profile", "attrs": {"set": {"phone": "+39"}}},
                     {"id": "s", "contact": "dan", "type": "sms_me", "attrs": {"code": 1}}])
    with pytest.raises(TimeoutError, match="1 effects still undelivered"):
        engine.call(engine.engine.flush(1.0))
    assert engine.status()["totals"]["retrying"] == 1
