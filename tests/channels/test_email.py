"""SMTP delivery against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

from cairn.channels import Dispatcher, load_channel_config


def _config(port: int, **retry):
    return load_channel_config({
        "channels": {"email": {"type": "smtp", "host": "127.0.0.1", "port": port,
                               "sender": "Cairn <noreply@cairn.local>", "timeout_s": 2}},
        "retry": {"max_attempts": 3, "base_ms": 10, "max_ms": 1000, **retry},
    })


async def test_email_delivered_with_rendered_fields_headers_and_html(smtp_server, outbox, clock, tmp_path, make_effect):
    effect = make_effect(message={
        "subject": "Thanks {{ profile.first_name }}",
        "text": "Hi {{ profile.first_name }}, thanks for {{ event.attrs.total_amount }} EUR",
        "html": "<p>Hi {{ profile.first_name }}, store {{ event.store_code }}</p>",
    })
    outbox.put(effect)
    dispatcher = Dispatcher([outbox], _config(smtp_server.port), tmp_path, clock)
    try:
        assert await dispatcher.drain_once() == 1
    finally:
        await dispatcher.close()

    assert len(outbox.sent) == 1 and not outbox.pending
    [received] = smtp_server.messages
    assert received["mail_from"] == "noreply@cairn.local"
    assert received["rcpt_tos"] == ["ann@example.com"]
    msg = received["message"]
    assert msg["From"] == "Cairn <noreply@cairn.local>"
    assert msg["To"] == "ann@example.com"
    assert msg["Subject"] == "Thanks Ann"
    assert msg["Message-ID"] == f"<{effect['id']}@cairn>"
    assert msg["X-Cairn-Effect-Id"] == effect["id"]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().strip() == "Hi Ann, thanks for 42 EUR"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Hi Ann, store MI01</p>"
    assert dispatcher.stats == {"email": {"sent": 1, "retried": 0, "dead": 0}}


async def test_text_only_email_gets_default_subject(smtp_server, outbox, clock, tmp_path, make_effect):
    outbox.put(make_effect(message={"text": "plain {{ profile.nope }}"}))
    dispatcher = Dispatcher([outbox], _config(smtp_server.port), tmp_path, clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    msg = smtp_server.messages[0]["message"]
    assert msg["Subject"] == "(no subject)"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == "plain"


async def test_connection_is_reused_and_reopened_after_drop(smtp_server, outbox, clock, tmp_path, make_effect):
    dispatcher = Dispatcher([outbox], _config(smtp_server.port), tmp_path, clock)
    try:
        for _ in range(3):
            outbox.put(make_effect())
        await dispatcher.drain_once()
        assert len({m["session"] for m in smtp_server.messages}) == 1

        smtp_server.restart()  # server drops the kept-alive connection
        outbox.put(make_effect())
        await dispatcher.drain_once()
    finally:
        await dispatcher.close()
    assert len(smtp_server.messages) == 4
    assert smtp_server.messages[3]["session"] != smtp_server.messages[0]["session"]
    assert len(outbox.sent) == 4 and not outbox.dead and not outbox.retries


async def test_5xx_recipient_is_dead_lettered_4xx_is_retried(smtp_server, outbox, clock, tmp_path, make_effect):
    rejected = outbox.put(make_effect(to="reject@example.com"))
    busy = outbox.put(make_effect(to="busy@example.com"))
    ok = outbox.put(make_effect())
    dispatcher = Dispatcher([outbox], _config(smtp_server.port), tmp_path, clock)
    try:
        await dispatcher.drain_once()
    finally:
        await dispatcher.close()
    assert [key for key, _, _ in outbox.dead] == [rejected]
    assert "550" in outbox.dead[0][2]
    assert [r[0] for r in outbox.retries] == [busy]
    assert "451" in outbox.retries[0][1]
    assert outbox.sent == [ok]
    assert dispatcher.stats["email"] == {"sent": 1, "retried": 1, "dead": 1}


async def test_invalid_recipient_is_dead_lettered(smtp_server, outbox, clock, tmp_path, make_effect):
    outbox.put(make_effect(to="+3912345"))
    dispatcher = Dispatcher([outbox], _config(smtp_server.port), tmp_path, clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    assert len(outbox.dead) == 1 and "invalid recipient" in outbox.dead[0][2]
    assert smtp_server.messages == []


async def test_smtp_down_is_retried_then_dead_lettered(closed_port, outbox, clock, tmp_path, make_effect, drain_all):
    key = outbox.put(make_effect())
    dispatcher = Dispatcher([outbox], _config(closed_port, max_attempts=4), tmp_path, clock)
    try:
        await drain_all(dispatcher, outbox)
    finally:
        await dispatcher.close()
    # max_attempts=4: three rescheduled failures, the fourth is dead-lettered.
    assert [r[0] for r in outbox.retries] == [key] * 3
    delays = [retry_at - now for _, _, retry_at, now in outbox.retries]
    assert [d - d % 10 for d in delays] == [10, 20, 40]  # base_ms * 2**attempts (+ <=10% jitter)
    assert [k for k, _, _ in outbox.dead] == [key]
    assert dispatcher.stats["email"] == {"sent": 0, "retried": 3, "dead": 1}
