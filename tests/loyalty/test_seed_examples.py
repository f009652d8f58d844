"""Every seed example of requirements L, end to end through the socket, Ray and
LMDB with the manual clock: the exact points, tiers and rewards each member ends
with, and the ledger rows that explain them."""

from __future__ import annotations

from typing import Any

CLUB = """\
interaction_types:
  - {name: wallet_pass_added, channel: app, source: mobile_sdk}
  - {name: referral, channel: web, source: api, attributes: {role: text}}
  - {name: product_review, channel: web, source: web_tracker}
loyalty:
  - name: club
    currency: EUR
    join: subscribe
    time_zone: Europe/Rome
    tiers:
      - {name: bronze, threshold: 0}
      - {name: silver, threshold: 100}
      - {name: gold, threshold: 500}
    rewards:
      - {name: free_coffee, expires: 30d}
      - {name: voucher_10, description: "10 EUR voucher", expires: 30d}
      - {name: gold_gift}
      - {name: reviewer_badge}
    rules:
      - name: per_euro
        template: points_per_amount
        tiers: [bronze, silver, gold]
        amount: 1
        points: 1
        kind: qualifying
      - name: per_euro_spendable
        template: points_per_amount
        tiers: [bronze, silver, gold]
        amount: 1
        points: 1
        kind: non_qualifying
      - name: coffee_card
        template: buy_n_get_one
        tiers: [bronze, silver, gold]
        n: 3
        lines: {category: [coffee]}
        reward: free_coffee
      - name: birthday
        template: birthday_voucher
        tiers: [bronze, silver, gold]
        reward: voucher_10
      - name: click_tomorrow
        event: email_click
        tiers: [bronze, silver, gold]
        start: "2026-11-24T00:00:00+01:00"
        end: "2026-11-25T00:00:00+01:00"
        effects: [{credit: {points: 1, kind: qualifying}}]
      - name: wallet_pass
        event: wallet_pass_added
        tiers: [bronze, silver, gold]
        limit: {times: 1, per: ever}
        effects: [{credit: {points: 50, kind: non_qualifying}}]
      - name: referred
        event: referral
        tiers: [bronze, silver, gold]
        when: {attr: role, op: equals, value: referred}
        effects: [{credit: {points: 100, kind: non_qualifying}}]
      - name: winter_pullover
        event: purchase
        tiers: [bronze, silver, gold]
        purchase:
          lines: {category: [winter], product: [pullover]}
          spent: {op: gte, value: 120}
        effects: [{multiply: {factor: 3, kind: non_qualifying}}]
      - name: gold_jump
        tiers: [gold]
        tier_change: {from: bronze, to: gold}
        effects: [{reward: gold_gift}]
      - name: welcome_x3
        event: purchase
        tiers: [bronze, silver, gold]
        subscribed: {within_days: 5}
        effects: [{multiply: {factor: 3, kind: non_qualifying, rules: [per_euro_spendable]}}]
      - name: reviews
        event: product_review
        tiers: [bronze, silver, gold]
        count: {times: 5, within: 30d}
        effects: [{reward: reviewer_badge}]
"""

T0_DATE = "2026-11-23"  # the manual clock's first day (a Monday, 10:00 in Rome)


def _line(product: str, category: str, quantity: int, amount: float) -> dict[str, Any]:
    return {"product": product, "category": category, "brand": "acme", "quantity": quantity,
            "total_line_amount": amount}


def _club(loyalty: Any, *members: str, days_ago: int = 10) -> None:
    """Apply the club; subscribe ``members`` and let ``days_ago`` days pass, so the
    welcome multiplier is over unless a test wants it."""
    loyalty.apply(CLUB)
    for m in members:
        loyalty.send(m, "loyalty_subscribe")
    if days_ago:
        loyalty.advance(f"{days_ago}d")


def test_buy_three_get_one_free(loyalty: Any) -> None:
    _club(loyalty, "ann")
    loyalty.send("ann", "purchase", total_amount=8, currency="EUR", lines=[_line("espresso", "coffee", 2, 8)])
    loyalty.send("ann", "purchase", total_amount=4, currency="EUR", lines=[_line("latte", "coffee", 1, 4)])
    ann = loyalty.member("ann")["programs"]["club"]
    [coffee] = ann["rewards"]
    assert (coffee["reward"], coffee["status"]) == ("free_coffee", "active")
    loyalty.send("ann", "reward_redeem", code=coffee["code"], store_code="MI")
    loyalty.send("ann", "reward_redeem", code=coffee["code"])
    found = loyalty.member("ann")
    assert found["programs"]["club"]["rewards"][0]["status"] == "redeemed"
    refused = found["ledger"][-1]
    assert (refused["entry"], refused["reference"]) == ("refused", coffee["code"])
    assert "already redeemed (store MI)" in refused["reason"]


def test_birthday_voucher_of_10_eur_on_the_day(loyalty: Any) -> None:
    loyalty.apply(CLUB)
    loyalty.send("ann", "loyalty_subscribe", birthday="1990-11-25")
    loyalty.send("bob", "loyalty_subscribe", birthday="1985-03-01")
    assert loyalty.advance("1d") == 0  # the 24th: not yet
    assert loyalty.advance("14h") >= 1  # the 25th, 00:00 in Rome
    [voucher] = loyalty.member("ann")["programs"]["club"]["rewards"]
    assert voucher["reward"] == "voucher_10"
    assert loyalty.member("bob")["programs"]["club"]["rewards"] == []


def test_one_extra_qualifying_point_per_email_click_tomorrow(loyalty: Any) -> None:
    _club(loyalty, "ann", days_ago=0)
    loyalty.send("ann", "email_click", campaign_category="promo", device="mobile", link_category="product")
    loyalty.advance("1d")
    loyalty.send("ann", "email_click", campaign_category="promo", device="mobile", link_category="product")
    loyalty.send("ann", "email_click", campaign_category="promo", device="desktop", link_category="footer")
    loyalty.advance("1d")
    loyalty.send("ann", "email_click", campaign_category="promo", device="mobile", link_category="product")
    assert loyalty.member("ann")["programs"]["club"]["qualifying"] == 2


def test_fifty_non_qualifying_points_for_the_wallet_pass(loyalty: Any) -> None:
    _club(loyalty, "ann")
    loyalty.send("ann", "wallet_pass_added")
    loyalty.send("ann", "wallet_pass_added")
    found = loyalty.member("ann")
    assert found["programs"]["club"]["non_qualifying"] == 50
    assert [r["entry"] for r in found["ledger"] if r["rule"] == "wallet_pass"] == ["earn", "limited"]


def test_points_for_being_referred(loyalty: Any) -> None:
    _club(loyalty, "ann", "bob")
    loyalty.send("ann", "referral", role="referred")
    loyalty.send("bob", "referral", role="referrer")
    assert loyalty.member("ann")["programs"]["club"]["non_qualifying"] == 100
    assert loyalty.member("bob")["programs"]["club"]["non_qualifying"] == 0


def test_times_three_points_for_the_120_eur_winter_pullover(loyalty: Any) -> None:
    _club(loyalty, "ann")
    loyalty.send("ann", "purchase", total_amount=150, currency="EUR",
                 lines=[_line("pullover", "winter", 1, 120), _line("socks", "basics", 2, 30)])
    club = loyalty.member("ann")["programs"]["club"]
    assert (club["qualifying"], club["non_qualifying"]) == (150, 450)
    earn = [r for r in loyalty.member("ann")["ledger"] if r["rule"] == "per_euro_spendable"]
    assert "x3 by rule winter_pullover" in earn[0]["reason"]


def test_special_reward_for_jumping_from_bronze_to_gold(loyalty: Any) -> None:
    _club(loyalty, "ann", "bob")
    loyalty.send("ann", "purchase", total_amount=600, currency="EUR")
    loyalty.send("bob", "purchase", total_amount=150, currency="EUR")
    loyalty.send("bob", "purchase", total_amount=400, currency="EUR")
    ann, bob = loyalty.member("ann"), loyalty.member("bob")
    assert ann["programs"]["club"]["tier"] == bob["programs"]["club"]["tier"] == "gold"
    assert [g["reward"] for g in ann["programs"]["club"]["rewards"]] == ["gold_gift"]
    assert bob["programs"]["club"]["rewards"] == []
    assert [r["reference"] for r in bob["ledger"] if r["kind"] == "tier"] == ["bronze -> silver", "silver -> gold"]


def test_times_three_non_qualifying_points_in_the_5_days_after_subscribing(loyalty: Any) -> None:
    _club(loyalty, "ann", days_ago=0)
    loyalty.advance("4d")
    loyalty.send("ann", "purchase", total_amount=10, currency="EUR")
    loyalty.advance("2d")
    loyalty.send("ann", "purchase", total_amount=10, currency="EUR")
    club = loyalty.member("ann")["programs"]["club"]
    assert (club["qualifying"], club["non_qualifying"]) == (20, 30 + 10)


def test_five_product_reviews_earn_a_reward(loyalty: Any) -> None:
    _club(loyalty, "ann")
    for _ in range(4):
        loyalty.send("ann", "product_review")
        loyalty.advance("1d")
    assert loyalty.member("ann")["programs"]["club"]["rewards"] == []
    loyalty.send("ann", "product_review")
    [badge] = loyalty.member("ann")["programs"]["club"]["rewards"]
    assert badge["reward"] == "reviewer_badge"


def test_events_in_another_currency_earn_nothing_and_say_why(loyalty: Any) -> None:
    _club(loyalty, "ann")
    loyalty.send("ann", "purchase", total_amount=100, currency="USD")
    found = loyalty.member("ann")
    assert found["programs"]["club"]["qualifying"] == 0
    assert "currency 'USD' differs from the program currency 'EUR'" in found["ledger"][-1]["reason"]
