"""The four seed scenarios of requirements J, end to end on a manual clock: the
exact messages each contact receives and the exact path `explain` reports."""

from __future__ import annotations

DELIVERY = """\
interaction_types:
  - name: delivery_status
    channel: logistics
    source: api
    attributes: {status: text, order_id: text}
programs:
  - name: delivery_updates
    transactional: true          # service messages: no marketing opt-in needed
    trigger: {event: delivery_status}
    entry: {concurrent: true}    # one run per status update
    nodes:
      - id: status
        type: splitter
        branches:
          - when: {attr: status, op: equals, value: arriving_today}
            next: today_sms
          - when: {attr: status, op: equals, value: delivered}
            next: settle
        else: done
      - id: today_sms
        type: action
        send: {channel: sms, text: "Your order {{ event.order_id }} arrives today."}
        next: done
      - id: settle
        type: wait
        duration: 1d
        next: rate_email
      - id: rate_email
        type: action
        send:
          channel: email
          subject: "How was your delivery?"
          text: "Rate the delivery of order {{ event.order_id }}."
        next: done
      - id: done
        type: end
"""


def test_delivery_status_updates(journeys):
    j = journeys
    j.apply(DELIVERY)
    j.profile("ann", phone="+39333", email="ann@example.com")
    j.send("ann", "delivery_status", status="shipped", order_id="A1")
    j.send("ann", "delivery_status", status="arriving_today", order_id="A1")
    assert j.messages() == [("ann", "sms", "today_sms", "Your order A1 arrives today.")]
    j.send("ann", "delivery_status", status="delivered", order_id="A1")
    assert j.advance("23h") == 0
    assert len(j.messages()) == 1  # the rating email waits a full day
    assert j.advance("1h") == 1
    assert j.messages()[1] == ("ann", "email", "rate_email", "Rate the delivery of order A1.")

    shipped, today, delivered = j.explain("ann", "delivery_updates")
    assert j.path(shipped) == [("status", "else"), ("done", "end")]
    assert j.path(today) == [("status", "branch"), ("today_sms", "sent"), ("done", "end")]
    assert j.path(delivered) == [("status", "branch"), ("settle", "wait"), ("settle", "woke"),
                                  ("rate_email", "sent"), ("done", "end")]
    assert "attr status = 'delivered' equals 'delivered': true => branch 2" in delivered["steps"][0]["reason"]
    assert delivered["steps"][2]["event_type"] == "$timer"
    assert delivered["status"] == "left"


BROWSE = """\
programs:
  - name: browse_abandonment
    trigger: {event: view}
    entry: {cooloff: 1d}
    nodes:
      - id: interested
        type: decision
        when:
          all:
            - {event: view, same: product_id, within: 7d, count: {op: gt, value: 1}}
            - not: {event: cart_update, within: 7d}
        yes: free_shipping
        no: done
      - id: free_shipping
        type: action
        send: {channel: web, text: "Free shipping on {{ event.product_id }} today!"}
        next: done
      - id: done
        type: end
"""


def test_browse_abandonment(journeys):
    j = journeys
    j.apply(BROWSE)
    # ann views one product twice: the second view finds two views of it.
    j.send("ann", "view", product_id="P1")
    j.advance("1d")  # past the cool-off of the first entry
    j.send("ann", "view", product_id="P1")
    # ann again at once, within the cool-off: not entered, nothing sent twice.
    j.send("ann", "view", product_id="P1")
    # bob views two different products, once each; cy views twice but has a cart.
    j.send("bob", "view", product_id="P1")
    j.advance("1d")
    j.send("bob", "view", product_id="P2")
    j.send("cy", "cart_update", product_id="P3")
    j.send("cy", "view", product_id="P3")
    j.advance("1d")
    j.send("cy", "view", product_id="P3")
    assert j.messages() == [("ann", "web", "free_shipping", "Free shipping on P1 today!")]

    first, second, third = j.explain("ann", "browse_abandonment")
    assert j.path(first) == [("interested", "no"), ("done", "end")]
    assert "event view same product_id within 7d count = 1 gt 1: false" in first["steps"][0]["reason"]
    assert j.path(second) == [("interested", "yes"), ("free_shipping", "sent"), ("done", "end")]
    assert "count = 2 gt 1: true" in second["steps"][0]["reason"]
    assert "event cart_update within 7d count = 0 gte 1: false; not => true" in second["steps"][0]["reason"]
    assert third["run"] == 0 and j.path(third) == [("interested", "not_entered")]
    assert "entry.cooloff is 1d" in third["steps"][0]["reason"]
    cy = j.explain("cy", "browse_abandonment")[-1]
    assert j.path(cy) == [("interested", "no"), ("done", "end")]
    assert "event cart_update within 7d count = 1 gte 1: true; not => false" in cy["steps"][0]["reason"]


PAYWALL = """\
interaction_types:
  - {name: paywall_view, channel: app, source: mobile_sdk}
  - {name: subscription_started, channel: app, source: mobile_sdk}
programs:
  - name: premium_paywall
    trigger:
      event: paywall_view
      filter: {profile: premium_offer_at, op: not_exists}   # the offer is made once
    nodes:
      - id: keen
        type: decision
        when:
          all:
            - {event: paywall_view, within: 21d, count: {op: gte, value: 3}}
            - not: {event: subscription_started, within: 21d}
        yes: offer
        no: done
      - id: offer
        type: action
        send: {channel: in_app, title: Premium, text: "20% off Premium, today only."}
        next: remember
      - id: remember
        type: action
        update_profile: {set: {premium_offer_at: "2026-11-23"}}
        next: done
      - id: done
        type: end
"""


def test_premium_paywall(journeys):
    j = journeys
    j.apply(PAYWALL)
    for _ in range(4):  # the 4th view finds the offer made: not triggered
        j.send("ann", "paywall_view")
        j.advance("5d")
    j.send("bob", "subscription_started")
    for _ in range(3):
        j.send("bob", "paywall_view")
    # cy: three views, but the first fell out of the 3-week window.
    j.send("cy", "paywall_view")
    j.advance("22d")
    j.send("cy", "paywall_view")
    j.send("cy", "paywall_view")
    assert j.messages() == [("ann", "in_app", "offer", "20% off Premium, today only.")]
    runs = j.explain("ann", "premium_paywall")
    assert [j.path(r) for r in runs] == [[("keen", "no"), ("done", "end")]] * 2 + [
        [("keen", "yes"), ("offer", "sent"), ("remember", "updated"), ("done", "end")]]
    assert "event paywall_view within 21d count = 3 gte 3: true" in runs[2]["steps"][0]["reason"]
    bob = j.explain("bob", "premium_paywall")[-1]
    assert "event subscription_started within 21d count = 1 gte 1: true; not => false" in bob["steps"][0]["reason"]
    cy = j.explain("cy", "premium_paywall")[-1]
    assert "count = 2 gte 3: false" in cy["steps"][0]["reason"]


# J-5 and the Milan scenario: an SMS coupon after an online purchase; days later, who
# used the coupon in the Milan store gets the women's or men's show invitation by
# profile, the others end; attendees get a thank-you.
FASHION = """\
profile_fields: {first_name: text, tag: text, gender: text, email_opt_in: bool}
interaction_types:
  - name: event_attended
    channel: store
    source: api
    attributes: {event: text}
programs:
  - name: milan_fashion_show
    trigger:
      event: purchase
      filter: {attr: channel, op: equals, value: online}
    entry: {reentry: false}
    nodes:
      - id: coupon
        type: action
        send: {channel: sms, text: "Thanks {{ profile.first_name }}! Code SHOW10: 10% off in our stores."}
        next: some_days
      - id: some_days
        type: wait
        duration: 5d
        next: used_coupon
      - id: used_coupon
        type: splitter
        branches:
          - when:
              all:
                - event: purchase
                  where: {all: [{attr: coupon, op: equals, value: SHOW10}, {attr: store_code, op: equals, value: Milan}]}
                  within: 5d
                - {profile: tag, op: equals, value: top spender}
                - {profile: gender, op: equals, value: female}
            next: invite_women
          - when:
              all:
                - event: purchase
                  where: {all: [{attr: coupon, op: equals, value: SHOW10}, {attr: store_code, op: equals, value: Milan}]}
                  within: 5d
                - {profile: tag, op: equals, value: top spender}
                - {profile: gender, op: equals, value: male}
            next: invite_men
        else: done
      - id: invite_women
        type: action
        send: {channel: email, subject: "Women's collection show", text: "Dear {{ profile.first_name }}, join us for the women's show in Milan."}
        next: show
      - id: invite_men
        type: action
        send: {channel: email, subject: "Men's collection show", text: "Dear {{ profile.first_name }}, join us for the men's show in Milan."}
        next: show
      - id: show
        type: wait_for
        event: event_attended
        filter: {attr: event, op: equals, value: fashion_show}
        timeout: 14d
        occurred: thanks
        not_occurred: done
      - id: thanks
        type: action
        send: {channel: email, subject: "Thank you", text: "Thank you for coming, {{ profile.first_name }}."}
        next: done
      - id: done
        type: end
"""


def test_milan_fashion_show(journeys):
    j = journeys
    j.apply(FASHION)
    people = {"ann": ("female", "top spender"), "bob": ("male", "top spender"),
              "cy": ("female", "top spender"), "dee": ("female", "new")}
    for name, (gender, tag) in people.items():
        j.profile(name, first_name=name.title(), gender=gender, tag=tag, phone=f"+39{len(name)}",
                  email=f"{name}@example.com", email_opt_in=True)
        j.send(name, "purchase", channel="online", total_amount=120)
    j.send("eve", "purchase", channel="store", store_code="Milan")  # not online: no coupon
    assert sorted(c for c, ch, *_ in j.messages() if ch == "sms") == ["ann", "bob", "cy", "dee"]
    j.advance("2d")
    for name in ("ann", "bob", "dee"):  # cy does not use the coupon
        j.send(name, "purchase", channel="store", store_code="Milan", coupon="SHOW10")
    j.advance("3d")  # the 5-day wait ends
    invites = sorted((c, n) for c, ch, n, _ in j.messages() if ch == "email")
    assert invites == [("ann", "invite_women"), ("bob", "invite_men")]
    j.send("ann", "event_attended", event="fashion_show")
    j.advance("14d")
    thanks = [(c, t) for c, ch, n, t in j.messages() if n == "thanks"]
    assert thanks == [("ann", "Thank you for coming, Ann.")]

    [ann] = j.explain("ann", "milan_fashion_show")
    assert j.path(ann) == [("coupon", "sent"), ("some_days", "wait"), ("some_days", "woke"),
                            ("used_coupon", "branch"), ("invite_women", "sent"), ("show", "waiting"),
                            ("show", "occurred"), ("thanks", "sent"), ("done", "end")]
    assert "=> branch 1" in ann["steps"][3]["reason"]
    [bob] = j.explain("bob", "milan_fashion_show")
    assert j.path(bob)[3:] == [("used_coupon", "branch"), ("invite_men", "sent"), ("show", "waiting"),
                                ("show", "not_occurred"), ("done", "end")]
    assert "profile gender = 'male' equals 'female': false" in bob["steps"][3]["reason"]
    [cy] = j.explain("cy", "milan_fashion_show")
    assert j.path(cy)[3:] == [("used_coupon", "else"), ("done", "end")]
    assert "event purchase (filtered) within 5d count = 0 gte 1: false" in cy["steps"][3]["reason"]
    [dee] = j.explain("dee", "milan_fashion_show")
    assert j.path(dee)[3:] == [("used_coupon", "else"), ("done", "end")]
    assert "profile tag = 'new' equals 'top spender': false" in dee["steps"][3]["reason"]
    assert j.explain("eve", "milan_fashion_show") == []
