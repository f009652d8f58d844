//! Loyalty in the core alone, through `apply` on an in-memory shard: the seed
//! examples of L, returns, pending and expiring points, limits, rewards, timers.

mod shard;

use cairn_core::loyalty::member::Member;
use cairn_core::value::Value;
use cairn_core::Catalog;
use serde_json::json;
use shard::*;

fn member(shard: &Shard, contact: &str, program: &str) -> Member {
    shard.state(contact).loyalty.get(program).cloned().unwrap_or_else(|| panic!("{contact} is not a member of {program}"))
}

fn field<'v>(row: &'v Value, k: &str) -> &'v Value {
    row.get(k).unwrap_or_else(|| panic!("ledger row without {k}: {row:?}"))
}

fn text<'v>(row: &'v Value, k: &str) -> &'v str {
    field(row, k).as_str().unwrap_or("")
}

fn int(row: &Value, k: &str) -> i64 {
    field(row, k).as_f64().unwrap() as i64
}

/// (entry, kind, delta) of every ledger row of `program`, in order.
fn entries(shard: &Shard, program: &str) -> Vec<(String, String, i64)> {
    shard
        .ledger
        .iter()
        .filter(|r| text(r, "program") == program)
        .map(|r| (text(r, "entry").to_owned(), text(r, "kind").to_owned(), int(r, "delta") + int(r, "pending_delta")))
        .collect()
}

fn e(entry: &str, kind: &str, delta: i64) -> (String, String, i64) {
    (entry.into(), kind.into(), delta)
}

/// Per kind, the ledger's sums are the balances (for every member of `program`).
fn assert_ledger_is_the_balance(shard: &Shard, contacts: &[&str], program: &str) {
    for c in contacts {
        let Some(m) = shard.state(c).loyalty.get(program).cloned() else { continue };
        let rows: Vec<&Value> = shard.ledger.iter().filter(|r| text(r, "program") == program).collect();
        // Rows are per contact through history; in these tests event ids are unique per
        // shard, so rows of this contact are those of its events.
        let mine: Vec<&&Value> = rows.iter().filter(|r| shard.history.iter().any(|h| h.get("id") == r.get("event_id") && h.get("contact").and_then(Value::as_str) == Some(c))).collect();
        for (k, bal, pend) in [("qualifying", m.qualifying, m.pending[0]), ("non_qualifying", m.non_qualifying, m.pending[1])] {
            let sum: i64 = mine.iter().filter(|r| text(r, "kind") == k).map(|r| int(r, "delta")).sum();
            let psum: i64 = mine.iter().filter(|r| text(r, "kind") == k).map(|r| int(r, "pending_delta")).sum();
            assert_eq!((sum, psum), (bal, pend), "{c} {k}");
        }
    }
}

fn purchase(amount: f64, lines: serde_json::Value) -> serde_json::Value {
    json!({"total_amount": amount, "currency": "EUR", "store_code": "MI", "lines": lines})
}

fn line(product: &str, category: &str, quantity: i64, amount: f64) -> serde_json::Value {
    json!({"product": product, "category": category, "brand": "acme", "quantity": quantity, "total_line_amount": amount})
}

fn cat_with_secret(j: &str) -> Catalog {
    let mut c = catalog(j);
    c.secret = [42; 32];
    c
}

#[test]
fn buy_three_get_one_free() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "cafe", "currency": "EUR",
        "rewards": [{"name": "free_coffee", "expires": "30d"}],
        "rules": [{"name": "coffee_card", "template": "buy_n_get_one", "n": 3,
                   "lines": {"category": ["coffee"]}, "reward": "free_coffee"}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", purchase(9.0, json!([line("espresso", "coffee", 2, 4.0), line("cake", "food", 1, 5.0)])));
    let m = member(&shard, "ann", "cafe");
    assert!(m.rewards.is_empty(), "two coffees counted towards the card (and made ann a member)");
    assert_eq!(m.progress["coffee_card"].carry, 2);
    shard.send(&cat, T0 + HOUR, "ann", "purchase", purchase(4.0, json!([line("latte", "Coffee", 2, 4.0)])));
    let m = member(&shard, "ann", "cafe");
    assert_eq!(m.rewards.len(), 1, "the third coffee earns it; one carried to the next card");
    assert_eq!(m.progress["coffee_card"].carry, 1);
    let g = &m.rewards[0];
    assert_eq!((g.reward.as_str(), g.expires_ms), ("free_coffee", T0 + HOUR + 30 * DAY));
    assert_eq!(g.code.len(), 19);
    // Redeemed once, in store; the second attempt is refused with the reason.
    shard.send(&cat, T0 + 2 * HOUR, "ann", "reward_redeem", json!({"code": g.code.to_lowercase(), "store_code": "MI"}));
    shard.send(&cat, T0 + 3 * HOUR, "ann", "reward_redeem", json!({"code": g.code}));
    let m = member(&shard, "ann", "cafe");
    assert_eq!((m.rewards[0].redeemed_ms, m.rewards[0].redeemed_at.as_str()), (T0 + 2 * HOUR, "store MI"));
    let tail: Vec<_> = entries(&shard, "cafe").into_iter().skip(1).collect();
    assert_eq!(tail, vec![e("grant", "reward", 0), e("redeem", "reward", 0), e("refused", "reward", 0)]);
    assert!(text(shard.ledger.last().unwrap(), "reason").contains("already redeemed (store MI)"));
}

#[test]
fn birthday_voucher_on_the_day_by_timer() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "club", "join": "subscribe", "time_zone": "Europe/Rome",
        "rewards": [{"name": "voucher_10", "description": "10 EUR voucher", "expires": "30d"}],
        "rules": [{"name": "bday", "template": "birthday_voucher", "reward": "voucher_10"}]}]}"#);
    let mut shard = Shard::default();
    // T0 is 2026-11-23 (Rome: 10:00); the birthday is the 25th.
    let r = shard.send(&cat, T0, "ann", "loyalty_subscribe", json!({"birthday": "1990-11-25"}));
    let day = T0 + 38 * HOUR; // 2026-11-24T23:00:00Z = the 25th, 00:00 in Rome
    assert_eq!(r.timers.len(), 1);
    assert_eq!(cairn_core::keys::parse_timer_key(&r.timers[0]).unwrap().0, day);
    assert_eq!(shard.fire(&cat, day - 1), 0);
    assert_eq!(shard.fire(&cat, day), 1);
    let m = member(&shard, "ann", "club");
    assert_eq!(m.rewards.len(), 1);
    assert_eq!(m.rewards[0].reward, "voucher_10");
    // Next year's timer is set, and nothing more this year.
    let next = shard.timers.keys().map(|k| cairn_core::keys::parse_timer_key(k).unwrap().0).collect::<Vec<_>>();
    assert_eq!(next.len(), 1);
    assert!(next[0] > day + 360 * DAY);
    assert_eq!(shard.fire(&cat, day + 2 * DAY), 0);
    assert_eq!(member(&shard, "ann", "club").rewards.len(), 1);
}

#[test]
fn one_extra_qualifying_point_per_email_click_tomorrow() {
    let cat = catalog(r#"{"loyalty": [{"name": "club", "rules": [{"name": "click_day", "event": "email_click",
        "start": "2026-11-24T00:00:00Z", "end": "2026-11-25T00:00:00Z",
        "when": {"attr": "link_category", "op": "equals", "value": "promo"},
        "effects": [{"credit": {"points": 1, "kind": "qualifying"}}]}]}]}"#);
    let mut shard = Shard::default();
    let click = |cat: &str| json!({"campaign_category": "newsletter", "device": "mobile", "link_category": cat});
    shard.send(&cat, T0, "ann", "email_click", click("promo"));
    assert!(shard.state("ann").loyalty.is_empty(), "before the rule starts: nothing (not retroactive)");
    shard.send(&cat, T0 + DAY, "ann", "email_click", click("promo"));
    shard.send(&cat, T0 + DAY + HOUR, "ann", "email_click", click("promo"));
    shard.send(&cat, T0 + DAY + 2 * HOUR, "ann", "email_click", click("footer"));
    shard.send(&cat, T0 + 2 * DAY, "ann", "email_click", click("promo"));
    assert_eq!(member(&shard, "ann", "club").qualifying, 2);
}

#[test]
fn interactions_wallet_pass_and_referral() {
    let cat = catalog(r#"{"loyalty": [{"name": "club", "rules": [
        {"name": "wallet", "event": "wallet_pass_added", "limit": {"times": 1, "per": "ever"},
         "effects": [{"credit": {"points": 50, "kind": "non_qualifying"}}]},
        {"name": "referred", "event": "referral", "when": {"attr": "role", "op": "equals", "value": "referred"},
         "effects": [{"credit": {"points": 200, "kind": "non_qualifying"}}]}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "wallet_pass_added", json!({}));
    shard.send(&cat, T0 + 1, "ann", "wallet_pass_added", json!({}));
    shard.send(&cat, T0 + 2, "ann", "referral", json!({"role": "referred", "referrer": "bob"}));
    shard.send(&cat, T0 + 3, "bob", "referral", json!({"role": "referrer"}));
    assert_eq!(member(&shard, "ann", "club").non_qualifying, 250);
    assert!(shard.state("bob").loyalty.is_empty());
    let ann = entries(&shard, "club");
    assert_eq!(ann[2], e("limited", "rule", 0), "the second pass: the restriction holds, and says so");
    assert_ledger_is_the_balance(&shard, &["ann"], "club");
}

const PULLOVER: &str = r#"{"loyalty": [{"name": "club", "currency": "EUR", "rules": [
    {"name": "per_euro", "template": "points_per_amount", "amount": 1, "points": 1, "kind": "non_qualifying"},
    {"name": "pullover", "event": "purchase",
     "purchase": {"lines": {"category": ["winter"], "product": ["pullover"]}, "spent": {"op": "gte", "value": 120}},
     "effects": [{"multiply": {"factor": 3, "kind": "non_qualifying"}}]}]}]}"#;

#[test]
fn times_three_for_the_winter_pullover_whatever_the_rule_order() {
    let a = catalog(PULLOVER);
    let mut rules: serde_json::Value = serde_json::from_str(PULLOVER).unwrap();
    rules["loyalty"][0]["rules"].as_array_mut().unwrap().reverse();
    let b = catalog(&rules.to_string());
    for cat in [&a, &b] {
        let mut shard = Shard::default();
        shard.send(cat, T0, "ann", "purchase", purchase(150.0, json!([line("pullover", "winter", 1, 120.0), line("socks", "basics", 2, 30.0)])));
        shard.send(cat, T0 + 1, "ann", "purchase", purchase(40.0, json!([line("socks", "basics", 2, 40.0)])));
        assert_eq!(member(&shard, "ann", "club").non_qualifying, 150 * 3 + 40);
        let first = &shard.ledger[0];
        assert!(text(first, "reason").contains("x3 by rule pullover"), "{first:?}");
    }
}

#[test]
fn bronze_to_gold_jump_reward() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "club",
        "tiers": [{"name": "bronze", "threshold": 0}, {"name": "silver", "threshold": 100}, {"name": "gold", "threshold": 500}],
        "rewards": [{"name": "gold_gift"}],
        "rules": [
          {"name": "points", "event": "purchase", "tiers": ["bronze", "silver", "gold"],
           "purchase": {"every_spent_per_transaction": 1}, "effects": [{"credit": {"points": 1, "kind": "qualifying"}}]},
          {"name": "jump", "tiers": ["gold"], "tier_change": {"from": "bronze", "to": "gold"},
           "effects": [{"reward": "gold_gift"}]}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", purchase(600.0, json!([])));
    shard.send(&cat, T0, "bob", "purchase", purchase(150.0, json!([])));
    shard.send(&cat, T0 + 1, "bob", "purchase", purchase(400.0, json!([])));
    let ann = member(&shard, "ann", "club");
    let bob = member(&shard, "bob", "club");
    assert_eq!((ann.tier.as_str(), ann.rewards.len()), ("gold", 1));
    assert_eq!((bob.tier.as_str(), bob.rewards.len()), ("gold", 0), "bronze -> silver -> gold is no jump");
    let tiers: Vec<&str> = shard.ledger.iter().filter(|r| text(r, "kind") == "tier").map(|r| text(r, "reference")).collect();
    // New members start in the tier their (zero) points give, without a change row.
    assert_eq!(tiers, ["bronze -> gold", "bronze -> silver", "silver -> gold"]);
}

#[test]
fn times_three_non_qualifying_in_the_five_days_after_subscribing() {
    let cat = catalog(r#"{"loyalty": [{"name": "club", "join": "subscribe", "rules": [
        {"name": "base", "event": "purchase", "purchase": {"every_spent_per_transaction": 10},
         "effects": [{"credit": {"points": 1, "kind": "non_qualifying"}}, {"credit": {"points": 1, "kind": "qualifying"}}]},
        {"name": "welcome_x3", "event": "purchase", "subscribed": {"within_days": 5},
         "effects": [{"multiply": {"factor": 3, "kind": "non_qualifying"}}]}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", purchase(100.0, json!([])));
    assert!(shard.state("ann").loyalty.is_empty(), "not a member yet");
    shard.send(&cat, T0 + HOUR, "ann", "loyalty_subscribe", json!({}));
    shard.send(&cat, T0 + 4 * DAY, "ann", "purchase", purchase(100.0, json!([])));
    shard.send(&cat, T0 + 6 * DAY, "ann", "purchase", purchase(100.0, json!([])));
    let m = member(&shard, "ann", "club");
    assert_eq!((m.non_qualifying, m.qualifying), (30 + 10, 20), "only non-qualifying points are multiplied");
}

#[test]
fn five_product_reviews_earn_a_reward() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "club", "rewards": [{"name": "reviewer_badge"}],
        "rules": [{"name": "reviews", "event": "product_review", "count": {"times": 5, "within": "30d"},
                   "effects": [{"reward": "reviewer_badge"}]}]}]}"#);
    let mut shard = Shard::default();
    for k in 0..4 {
        shard.send(&cat, T0 + k * DAY, "ann", "product_review", json!({"product": "p"}));
    }
    assert!(member(&shard, "ann", "club").rewards.is_empty(), "4 reviews: counted, nothing earned yet");
    // The fifth comes 40 days after the first: the four fell out of the 30-day window.
    shard.send(&cat, T0 + 40 * DAY, "ann", "product_review", json!({}));
    assert!(member(&shard, "ann", "club").rewards.is_empty());
    for k in 41..45 {
        shard.send(&cat, T0 + k * DAY, "ann", "product_review", json!({}));
    }
    assert_eq!(member(&shard, "ann", "club").rewards.len(), 1);
}

const SHOP: &str = r#"{"loyalty": [{"name": "shop", "currency": "EUR", "pending": "14d", "expiry": {"months": 12},
    "rules": [{"name": "per_euro", "template": "points_per_amount", "amount": 1, "points": 1, "kind": "non_qualifying"},
              {"name": "spend", "event": "points_spent", "effects": [{"debit": {"points": 30, "kind": "non_qualifying"}}]}]}]}"#;

#[test]
fn pending_points_a_return_inside_the_window_cancels_them() {
    let cat = catalog(SHOP);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", json!({"total_amount": 100, "receipt_id": "R1"}));
    let m = member(&shard, "ann", "shop");
    assert_eq!((m.non_qualifying, m.pending[1]), (0, 100));
    shard.send(&cat, T0 + DAY, "ann", "purchase_return", json!({"receipt": "R1", "total_amount": 40}));
    let m = member(&shard, "ann", "shop");
    assert_eq!((m.non_qualifying, m.pending[1]), (0, 60));
    assert_eq!(shard.fire(&cat, T0 + 14 * DAY), 1);
    let m = member(&shard, "ann", "shop");
    assert_eq!((m.non_qualifying, m.pending[1]), (60, 0));
    assert_eq!(
        entries(&shard, "shop"),
        vec![e("pending", "non_qualifying", 100), e("join", "member", 0), e("cancel", "non_qualifying", -40), e("release", "non_qualifying", 0)]
    );
    // The rest returned after the window: debited, exactly what is left.
    shard.send(&cat, T0 + 20 * DAY, "ann", "purchase_return", json!({"receipt": "R1"}));
    assert_eq!(member(&shard, "ann", "shop").non_qualifying, 0);
    assert_ledger_is_the_balance(&shard, &["ann"], "shop");
}

#[test]
fn a_return_never_charges_points_already_spent_twice() {
    let cat = catalog(&SHOP.replace("\"pending\": \"14d\", ", ""));
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", json!({"total_amount": 50, "receipt_id": "R1"}));
    shard.send(&cat, T0 + 1, "ann", "points_spent", json!({}));
    assert_eq!(member(&shard, "ann", "shop").non_qualifying, 20);
    shard.send(&cat, T0 + 2, "ann", "purchase_return", json!({"receipt": "R1"}));
    shard.send(&cat, T0 + 3, "ann", "purchase_return", json!({"receipt": "R1"}));
    assert_eq!(member(&shard, "ann", "shop").non_qualifying, 0);
    let last = shard.ledger.iter().rev().find(|r| text(r, "entry") == "return").unwrap();
    assert_eq!(int(last, "delta"), -20);
    assert!(text(last, "reason").contains("30 points already spent are not charged again"));
    // The second return of the same receipt reverses nothing more.
    assert_eq!(shard.ledger.iter().filter(|r| text(r, "entry") == "return").count(), 1);
    assert_ledger_is_the_balance(&shard, &["ann"], "shop");
}

#[test]
fn points_expire_oldest_first_by_the_member_timer() {
    let cat = catalog(&SHOP.replace("\"pending\": \"14d\", ", ""));
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", json!({"total_amount": 50}));
    shard.send(&cat, T0 + 60 * DAY, "ann", "purchase", json!({"total_amount": 40}));
    shard.send(&cat, T0 + 61 * DAY, "ann", "points_spent", json!({}));
    assert_eq!(member(&shard, "ann", "shop").non_qualifying, 60);
    // 2027-11-23: the first lot's 20 left expire; the second lot (40) stays.
    let year = 365 * DAY;
    assert_eq!(shard.fire(&cat, T0 + year), 1);
    let m = member(&shard, "ann", "shop");
    assert_eq!(m.non_qualifying, 40);
    assert_eq!(shard.ledger.last().map(|r| (text(r, "entry").to_owned(), int(r, "delta"))), Some(("expire".into(), -20)));
    assert_ledger_is_the_balance(&shard, &["ann"], "shop");
}

#[test]
fn no_purchase_for_180_days_fires_once_by_timer() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "club", "join": "subscribe",
        "rewards": [{"name": "come_back"}],
        "rules": [{"name": "winback", "inactive": {"event": "purchase", "for": "180d"}, "effects": [{"reward": "come_back"}]}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "loyalty_subscribe", json!({}));
    shard.send(&cat, T0 + 100 * DAY, "ann", "purchase", json!({"total_amount": 10}));
    // The timer set at joining fires at day 180, finds the purchase, and re-arms.
    assert_eq!(shard.fire(&cat, T0 + 180 * DAY), 1);
    assert!(member(&shard, "ann", "club").rewards.is_empty());
    assert_eq!(shard.fire(&cat, T0 + 280 * DAY), 1);
    assert_eq!(member(&shard, "ann", "club").rewards.len(), 1);
    assert_eq!(shard.fire(&cat, T0 + 900 * DAY), 0, "once per inactivity: no timer left");
}

#[test]
fn limits_per_day_and_currency() {
    let cat = catalog(r#"{"loyalty": [{"name": "club", "currency": "EUR", "rules": [{"name": "visit", "event": "purchase",
        "limit": {"times": 2, "per": "day"}, "effects": [{"credit": {"points": 5, "kind": "qualifying"}}]}]}]}"#);
    let mut shard = Shard::default();
    for k in 0..4 {
        shard.send(&cat, T0 + k * HOUR, "ann", "purchase", json!({"total_amount": 10}));
    }
    shard.send(&cat, T0 + DAY, "ann", "purchase", json!({"total_amount": 10}));
    shard.send(&cat, T0 + DAY + 1, "ann", "purchase", json!({"total_amount": 10, "currency": "USD"}));
    assert_eq!(member(&shard, "ann", "club").qualifying, 15);
    let kinds: Vec<String> = entries(&shard, "club").into_iter().map(|x| x.0).collect();
    assert_eq!(kinds, ["earn", "join", "earn", "limited", "limited", "earn", "refused"]);
}

#[test]
fn loyalty_definitions_are_checked() {
    let errs = errors(r#"{"loyalty": [{"name": "club", "tiers": [{"name": "a", "threshold": 10}, {"name": "b", "threshold": 5}],
        "rules": [{"name": "r", "event": "purchase", "effects": [{"reward": "nope"}]},
                  {"name": "s", "tiers": ["a"], "template": "buy_n_get_one", "reward": "x"},
                  {"name": "t", "tiers": ["z"], "event": "purchase", "limit": {"times": 1, "per": "hour"},
                   "effects": [{"multiply": {"factor": 2, "kind": "qualifying", "rules": ["ghost"]}}]}]}]}"#);
    let want = [
        "loyalty[0].tiers[1].threshold: tiers are ordered by threshold",
        "loyalty[0].rules[0].tiers: a rule of a tiered program names the tiers",
        "loyalty[0].rules[0].effects[0].reward: unknown reward 'nope'",
        "loyalty[0].rules[1].n: template buy_n_get_one needs n",
        "loyalty[0].rules[2].tiers[0]: unknown tier 'z'",
        "loyalty[0].rules[2].limit.per: unknown period 'hour'",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e.starts_with(w)), "want {w:?} in {errs:#?}");
    }
}

#[test]
fn templates_keep_the_rules_other_settings() {
    let cat = catalog(r#"{"loyalty": [{"name": "club", "rules": [{"name": "per_euro", "template": "points_per_amount",
        "amount": 1, "limit": {"times": 15, "per": "day"}}]}]}"#);
    let mut shard = Shard::default();
    // A limit counts applications: "every 1 EUR" applies 10 times per 10 EUR.
    shard.send(&cat, T0, "ann", "purchase", json!({"total_amount": 10}));
    shard.send(&cat, T0 + 1, "ann", "purchase", json!({"total_amount": 10}));
    assert_eq!(member(&shard, "ann", "club").qualifying, 15);
    shard.send(&cat, T0 + DAY, "ann", "purchase", json!({"total_amount": 10}));
    assert_eq!(member(&shard, "ann", "club").qualifying, 25);
}

#[test]
fn vip_promotion_and_two_grants_in_one_event() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "club", "join": "subscribe", "vip": "staff",
        "tiers": [{"name": "base", "threshold": 0}, {"name": "gold", "threshold": 10}, {"name": "platinum", "threshold": 20}],
        "rewards": [{"name": "gift"}],
        "rules": [
          {"name": "up", "tiers": ["gold", "platinum"], "tier_change": {"direction": "upgrade"},
           "effects": [{"reward": "gift"}, {"credit": {"points": 10, "kind": "qualifying"}}]},
          {"name": "to_gold", "tiers": ["gold", "staff"], "tier_change": {"to": "gold"}, "effects": [{"credit": {"points": 1, "kind": "non_qualifying"}}]},
          {"name": "staff", "tiers": ["staff"], "tier_change": {"vip": true}, "effects": [{"credit": {"points": 5, "kind": "non_qualifying"}}]},
          {"name": "buy", "event": "purchase", "tiers": ["base", "gold", "platinum", "staff"],
           "effects": [{"credit": {"points": 10, "kind": "qualifying"}}]}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "loyalty_subscribe", json!({}));
    // base -> gold (gift + 10) -> platinum (gift + 10): two gifts, two codes.
    shard.send(&cat, T0 + 1, "ann", "purchase", json!({}));
    let m = member(&shard, "ann", "club");
    assert_eq!((m.tier.as_str(), m.qualifying, m.rewards.len()), ("platinum", 30, 2));
    assert_ne!(m.rewards[0].code, m.rewards[1].code);
    // A promotion to VIP runs `vip: true` rules only (not `to: gold`), and leaving is a row.
    shard.send(&cat, T0 + 2, "ann", "loyalty_subscribe", json!({"vip": true}));
    shard.send(&cat, T0 + 3, "ann", "loyalty_subscribe", json!({"vip": false}));
    let m = member(&shard, "ann", "club");
    assert_eq!(m.non_qualifying, 1 + 5, "to_gold once (the upgrade), staff once (the promotion)");
    let tiers: Vec<&str> = shard.ledger.iter().filter(|r| text(r, "kind") == "tier").map(|r| text(r, "reference")).collect();
    assert_eq!(tiers, ["base -> gold", "gold -> platinum", "platinum -> staff", "staff -> platinum"]);
}

#[test]
fn a_return_after_returns_within_is_refused() {
    let cat = catalog(r#"{"loyalty": [{"name": "shop", "returns_within": "30d", "rules": [
        {"name": "per_euro", "template": "points_per_amount", "amount": 1}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", json!({"total_amount": 10, "receipt_id": "R1"}));
    shard.send(&cat, T0 + 31 * DAY, "ann", "purchase_return", json!({"receipt": "R1"}));
    assert_eq!(member(&shard, "ann", "shop").qualifying, 10);
    assert_eq!(text(shard.ledger.last().unwrap(), "entry"), "refused");
    let errs = errors(r#"{"loyalty": [{"name": "c", "tiers": [{"name": "a", "threshold": 5}], "rules": [
        {"name": "r", "event": "view", "tiers": ["a"], "purchase": {"spent": {"op": "gte", "value": 1}},
         "effects": [{"credit": {"points": 1, "kind": "qualifying"}}]}]}]}"#);
    assert!(errs.iter().any(|e| e.contains("the first tier starts at 0")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("the rule's event must be purchase")), "{errs:?}");
}

#[test]
fn points_buy_a_reward_when_the_balance_allows() {
    let cat = cat_with_secret(r#"{"loyalty": [{"name": "club", "rewards": [{"name": "voucher_10"}], "rules": [
        {"name": "per_euro", "template": "points_per_amount", "amount": 1, "kind": "non_qualifying"},
        {"name": "claim", "event": "reward_claim", "when": {"attr": "reward", "op": "equals", "value": "voucher_10"},
         "balance": {"kind": "non_qualifying", "op": "gte", "value": 100},
         "effects": [{"debit": {"points": 100, "kind": "non_qualifying"}}, {"reward": "voucher_10"}]}]}]}"#);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "purchase", json!({"total_amount": 150}));
    shard.send(&cat, T0 + 1, "ann", "reward_claim", json!({"reward": "voucher_10"}));
    shard.send(&cat, T0 + 2, "ann", "reward_claim", json!({"reward": "voucher_10"}));
    let m = member(&shard, "ann", "club");
    assert_eq!((m.non_qualifying, m.rewards.len()), (50, 1), "the second claim finds 50 points: nothing");
    let debit = shard.ledger.iter().find(|r| text(r, "entry") == "debit").unwrap();
    assert!(text(debit, "reason").contains("balance non_qualifying 150 gte 100"), "{debit:?}");
    let errs = errors(r#"{"loyalty": [{"name": "c", "rules": [{"name": "r", "event": "x",
        "balance": {"kind": "gold", "op": "contains", "value": 1}, "effects": [{"credit": {"points": 1, "kind": "qualifying"}}]}]}]}"#);
    assert!(errs.iter().any(|e| e.contains("rules[0].balance.kind: unknown kind 'gold'")), "{errs:?}");
}
