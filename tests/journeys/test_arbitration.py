"""Arbitration across programs: frequency caps per channel, quiet hours in the
contact's time zone, program priority; held messages are deferred (or dropped when
the program says so), never silently lost, and the reason is recorded."""

from __future__ import annotations

QUIET = """\
arbitration:
  quiet_hours: {from: "21:00", to: "08:00", channels: [sms], time_zone: Europe/Rome}
programs:
  - name: order_shipped
    trigger: {event: shipped}
    nodes:
      - {id: sms, type: action, send: {channel: sms, text: "Shipped!"}, next: done}
      - {id: done, type: end}
"""


def test_quiet_hours_defer_then_send(journeys):
    j = journeys
    j.apply(QUIET)
    j.profile("ann", phone="+39333")
    j.profile("bob", phone="+1555", time_zone="America/New_York")
    j.advance("12h")  # 21:00 UTC: 22:00 in Rome (quiet), 16:00 in New York
    j.send("ann", "shipped")
    j.send("bob", "shipped")
    assert j.messages() == [("bob", "sms", "sms", "Shipped!")]
    [ann] = j.explain("ann", "order_shipped")
    assert j.path(ann) == [("sms", "deferred")]
    assert "quiet hours 21:00-08:00 (Europe/Rome): deferred to 2026-11-24T07:00:00Z" in ann["steps"][0]["reason"]
    assert j.advance("9h59m") == 0  # 06:59 UTC: still quiet in Rome
    assert j.advance("1m") == 1  # 08:00 in Rome
    assert j.messages()[1] == ("ann", "sms", "sms", "Shipped!")
    [ann] = j.explain("ann", "order_shipped")
    assert j.path(ann) == [("sms", "deferred"), ("sms", "retry"), ("sms", "sent"), ("done", "end")]


CAPS = """\
arbitration:
  caps: [{channel: email, max: 1, per: 1d}]
programs:
  - name: welcome
    priority: 10
    trigger: {event: signup}
    nodes:
      - {id: mail, type: action, send: {channel: email, text: "Welcome"}, next: done}
      - {id: done, type: end}
  - name: newsletter
    trigger: {event: signup}
    nodes:
      - {id: mail, type: action, send: {channel: email, text: "Our news"}, next: done}
      - {id: done, type: end}
  - name: promo
    on_limit: drop
    trigger: {event: signup}
    nodes:
      - {id: mail, type: action, send: {channel: email, text: "Promo"}, next: done}
      - {id: done, type: end}
"""


def test_caps_follow_priority_and_defer_or_drop(journeys):
    j = journeys
    j.apply(CAPS)
    j.profile("ann", email="ann@example.com", email_opt_in=True)
    j.send("ann", "signup")
    assert j.messages() == [("ann", "email", "mail", "Welcome")]  # priority 10 goes first
    promo = j.explain("ann", "promo")[0]
    assert j.path(promo) == [("mail", "dropped"), ("done", "end")]
    assert "email cap 1 per 1d reached" in promo["steps"][0]["reason"]
    news = j.explain("ann", "newsletter")[0]
    assert j.path(news) == [("mail", "deferred")] and news["status"] == "waiting at mail"
    assert j.advance("1d") == 1
    assert [t for *_, t in j.messages()] == ["Welcome", "Our news"]
    news = j.explain("ann", "newsletter")[0]
    assert j.path(news) == [("mail", "deferred"), ("mail", "retry"), ("mail", "sent"), ("done", "end")]
