//! Loyalty (L-1..L-9, I-5, I-6): members, tiers, rules, rewards and the ledger.
//!
//! Per event and per program: membership (join rules), the event's rules
//! (multipliers first, so the order of rules never changes what they award), the
//! effects, then the tier with its tier-change rules, then the member's timer.
//! Returns, redemptions, subscriptions and profile joins are the program's own
//! bookkeeping. A member's timer (one per program, a row in the shard's `timers`
//! table) releases pending points, expires old ones, and fires birthday and
//! inactivity rules: nothing ever scans all members.

pub mod book;
pub mod calendar;
pub mod codes;
pub mod member;
pub mod receipt;
pub mod rules;

use rustc_hash::FxHashMap;

use self::book::{Book, Entries};
use self::calendar::{add_months, birthday_window, parse_birthday, year_of};
use self::member::{Grant, Member, Receipt};
use self::receipt::{to_cents, ReceiptView};
use self::rules::{ordered_tier, Occ, Outcome, TierMove};
use crate::definitions::loyalty::{Effect, Join};
use crate::definitions::{Catalog, LoyaltyProgram, PointKind};
use crate::event::Event;
use crate::keys::timer_key;
use crate::state::State;
use crate::value::{map_get, Text, Value};

pub use crate::definitions::loyalty::LOYALTY_TIMER;

/// Where one event's loyalty output goes.
pub struct LoyaltyOut<'o> {
    /// The occasion's ledger entries (the caller writes them as its row).
    pub ledger: &'o mut Entries,
    /// Timer key -> true (put) or false (delete), as journeys use it.
    pub timers: &'o mut FxHashMap<Vec<u8>, bool>,
}

/// The event's effect on every loyalty program: bookkeeping events first, then the
/// programs whose rules watch its type (`programs`: indexes in `cat.loyalty`).
pub fn on_event(cat: &Catalog, programs: &[usize], ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>) {
    if cat.loyalty.is_empty() {
        return;
    }
    match ev.kind.as_str() {
        "loyalty_subscribe" => subscribe(cat, ev, state, out),
        "$profile" => profile(cat, ev, state, out),
        "purchase_return" => each_member(cat, ev, state, out, on_return),
        "reward_redeem" => redeem(cat, ev, state, out),
        _ => {}
    }
    for &li in programs {
        run_event(cat, &cat.loyalty[li], ev, state, out);
    }
}

/// A due member timer (`$timer` event whose run field has `LOYALTY_TIMER`).
pub fn on_timer(cat: &Catalog, ev: &Event, id: u64, at: i64, state: &mut State, out: &mut LoyaltyOut<'_>) {
    let Some(lp) = cat.loyalty.iter().find(|l| l.timer_id == id) else { return };
    let State { loyalty, profile, facts, .. } = state;
    let Some(m) = loyalty.get_mut(&lp.name) else { return };
    if m.wake_ms != at {
        return; // an earlier schedule, since moved
    }
    m.wake_ms = 0;
    let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: at, event_id: &ev.id, grants: 0 };
    for (k, points, receipt) in m.release_due(at) {
        book.points(m, "", k, "release", points, -points, "return window over: pending points become available", &receipt);
    }
    let gone = m.expire_due(at);
    for k in PointKind::BOTH {
        if gone[k.idx()] > 0 {
            let why = expiry_reason(lp);
            book.points(m, "", k, "expire", -gone[k.idx()], 0, &why, "");
        }
    }
    let mut due = Vec::new();
    for &ri in &lp.on_birthday {
        if birthday_due(lp, ri, m, at).is_some_and(|w| w <= at) {
            m.progress.entry_or_default(lp.rules[ri].name.clone()).fired = i64::from(year_of(at, lp.zone));
            due.push(ri);
        }
    }
    for &ri in &lp.on_inactive {
        if let Some((_, last)) = inactive_due(lp, ri, m).filter(|(w, _)| *w <= at) {
            m.progress.entry_or_default(lp.rules[ri].name.clone()).fired = last;
            due.push(ri);
        }
    }
    let o = Occ { ts: at, attrs: &[], receipt: None, tier_move: None, profile, facts };
    fire_rules(cat, lp, &due, m, &o, &ev.contact, &mut book);
    settle_tier(cat, lp, m, &o, &ev.contact, &mut book);
    schedule(lp, m, &ev.contact, at, out.timers);
}

fn expiry_reason(lp: &LoyaltyProgram) -> String {
    let months = lp.expiry.map_or(0, |e| e.0);
    format!("points expire {months} months after they were earned, oldest first")
}

/// The program's rules for `ev`'s type, for members (or, with `join: auto`, for
/// contacts who become members when a rule applies).
fn run_event(cat: &Catalog, lp: &LoyaltyProgram, ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>) {
    let State { loyalty, profile, facts, .. } = state;
    let member = loyalty.contains_key(&lp.name);
    let indexed = lp.by_event.get(&ev.kind);
    if !member && (lp.join != Join::Auto || indexed.is_none()) {
        return;
    }
    let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: ev.ts, event_id: &ev.id, grants: 0 };
    // A would-be member (join: auto) is made only for contacts that are not members.
    let mut fresh = None;
    let m = match loyalty.get_mut(&lp.name) {
        Some(m) => m,
        None => fresh.insert(new_member(lp, ev.ts, profile)),
    };
    if member && lp.activity.contains_key(&ev.kind) {
        m.active_ms.insert(ev.kind.clone(), ev.ts);
    }
    let Some(indexed) = indexed else {
        schedule(lp, m, &ev.contact, ev.ts, out.timers);
        return;
    };
    if let Some(got) = other_currency(lp, ev) {
        let why = format!("currency '{got}' differs from the program currency '{}': no points", lp.currency.as_deref().unwrap_or(""));
        // Said for members and would-be members alike: nothing earned, and why.
        book.note("", "refused", "refused", &why, "");
        return;
    }
    let receipt = ReceiptView::new(ev.attrs());
    let is_purchase = ev.kind == "purchase";
    let occ = Occ {
        ts: ev.ts,
        attrs: ev.attrs(),
        receipt: is_purchase.then_some(&receipt),
        tier_move: None,
        profile,
        facts,
    };
    let receipt_id = if is_purchase { receipt.id(&ev.id) } else { "" };
    let rules = indexed.candidates(receipt.store());
    let earned = fire_rules_for(cat, lp, &rules, m, &occ, &ev.contact, &mut book, receipt_id);
    if !member && !earned.matched {
        return;
    }
    if is_purchase && earned.points.iter().any(|p| *p > 0) {
        m.prune_receipts(ev.ts, lp.returns_ms);
        m.receipts.push(Receipt {
            key: member::receipt_key(receipt_id),
            ts: ev.ts,
            cents: receipt.measure(None).0,
            refunded_cents: 0,
            earned: earned.points,
            reversed: [0, 0],
        });
    }
    settle_tier(cat, lp, m, &occ, &ev.contact, &mut book);
    if !member {
        let joined = std::mem::take(m);
        let m = loyalty.entry_or_insert_with(lp.name.clone(), || joined);
        let occ = Occ { ts: ev.ts, attrs: ev.attrs(), receipt: None, tier_move: None, profile, facts };
        book.note("", "member", "join", "joined the program (join: auto): a rule's conditions held", "");
        fire_rules(cat, lp, &lp.on_join, m, &occ, &ev.contact, &mut book);
        settle_tier(cat, lp, m, &occ, &ev.contact, &mut book);
        schedule(lp, m, &ev.contact, ev.ts, out.timers);
    } else {
        schedule(lp, m, &ev.contact, ev.ts, out.timers);
    }
}

/// What the rules of one occasion did: points earned per kind, and whether any
/// rule's conditions held (it applied, counted the occasion, or was limited).
#[derive(Default)]
struct Earned {
    points: [i64; 2],
    matched: bool,
}

fn other_currency<'e>(lp: &LoyaltyProgram, ev: &'e Event) -> Option<&'e str> {
    let want = lp.currency.as_deref()?;
    match map_get(ev.attrs(), "currency") {
        Some(Value::Str(got)) if !got.eq_ignore_ascii_case(want) => Some(got),
        _ => None,
    }
}

fn fire_rules(cat: &Catalog, lp: &LoyaltyProgram, rules: &[usize], m: &mut Member, occ: &Occ<'_>, contact: &str, book: &mut Book<'_>) {
    fire_rules_for(cat, lp, rules, m, occ, contact, book, "");
}

/// Evaluate `rules` for one occasion and apply their effects: multipliers are
/// collected first and scale the credits of the others, whatever their order.
#[allow(clippy::too_many_arguments)]
fn fire_rules_for(cat: &Catalog, lp: &LoyaltyProgram, rules: &[usize], m: &mut Member, occ: &Occ<'_>, contact: &str, book: &mut Book<'_>, receipt: &str) -> Earned {
    let mut fired: Vec<(usize, i64, String)> = Vec::new();
    let mut matched = false;
    // The tier is the same for every rule of one occasion (it moves after them).
    let tier = ordered_tier(lp, m);
    for &ri in rules {
        let rule = &lp.rules[ri];
        match rules::evaluate(lp, rule, m, tier, occ) {
            Outcome::Skip => {}
            Outcome::Counted => matched = true,
            Outcome::Limited { reason } => {
                matched = true;
                book.note(&rule.name, "rule", "limited", &reason, "");
            }
            Outcome::Fire { times, reason } => fired.push((ri, times, reason)),
        }
    }
    let mut earned = Earned { matched: matched || !fired.is_empty(), ..Earned::default() };
    let multipliers: Vec<(&str, f64, PointKind, &[String])> = fired
        .iter()
        .flat_map(|(ri, ..)| {
            let r = &lp.rules[*ri];
            r.effects.iter().filter_map(move |e| match e {
                Effect::Multiply { factor, kind, rules } => Some((r.name.as_str(), *factor, *kind, rules.as_slice())),
                _ => None,
            })
        })
        .collect();
    for (ri, times, reason) in &fired {
        let rule = &lp.rules[*ri];
        for effect in &rule.effects {
            match effect {
                Effect::Credit { points, kind } => {
                    let applying: Vec<&(&str, f64, PointKind, &[String])> = multipliers
                        .iter()
                        .filter(|(name, _, k, only)| *k == *kind && *name != rule.name && (only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(&rule.name))))
                        .collect();
                    let factor: f64 = applying.iter().map(|m| m.1).product();
                    let amount = ((*points * *times) as f64 * factor).floor() as i64;
                    let mut why = reason.clone();
                    for (name, f, ..) in &applying {
                        why.push_str("; x");
                        why.push_str(&format_factor(*f));
                        why.push_str(" by rule ");
                        why.push_str(name);
                    }
                    credit(lp, m, *kind, amount, occ.ts, receipt, &rule.name, &why, book);
                    earned.points[kind.idx()] += amount;
                }
                Effect::Debit { points, kind } => {
                    let want = points * times;
                    let taken = m.take(*kind, want);
                    let mut why = reason.clone();
                    if taken < want {
                        why.push_str(&format!("; only {taken} of {want} available: a balance never goes below 0"));
                    }
                    book.points(m, &rule.name, *kind, "debit", -taken, 0, &why, "");
                }
                Effect::Reset { kind } => {
                    let taken = m.take(*kind, m.balance(*kind));
                    book.points(m, &rule.name, *kind, "reset", -taken, 0, reason, "");
                }
                Effect::Multiply { .. } => {}
                Effect::Reward(i) => {
                    for _ in 0..*times {
                        grant(cat, lp, *i, m, occ.ts, contact, &rule.name, reason, book);
                    }
                }
                Effect::Vip(v) => m.vip = *v,
            }
        }
    }
    earned
}

fn format_factor(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Credit points: pending for the program's return window when a receipt earned
/// them, with an expiry when the program's points expire.
#[allow(clippy::too_many_arguments)]
fn credit(lp: &LoyaltyProgram, m: &mut Member, kind: PointKind, amount: i64, ts: i64, receipt: &str, rule: &str, why: &str, book: &mut Book<'_>) {
    if amount <= 0 {
        return;
    }
    let expires = match lp.expiry {
        Some((months, only)) if only.is_none_or(|k| k == kind) => add_months(ts, months),
        _ => 0,
    };
    let pending = lp.pending_ms.filter(|_| !receipt.is_empty()).map(|p| ts + p);
    m.earn(kind, amount, ts, pending, expires, receipt);
    if pending.is_some() {
        book.points(m, rule, kind, "pending", 0, amount, why, receipt);
    } else {
        book.points(m, rule, kind, "earn", amount, 0, why, receipt);
    }
}

#[allow(clippy::too_many_arguments)]
fn grant(cat: &Catalog, lp: &LoyaltyProgram, i: usize, m: &mut Member, ts: i64, contact: &str, rule: &str, reason: &str, book: &mut Book<'_>) {
    let reward = &lp.rewards[i];
    let code = codes::reward_code(&cat.secret, contact, book.event_id, &lp.name, rule, book.grants);
    book.grants += 1;
    if m.rewards.iter().any(|g| g.code == code) {
        return; // the same grant, replayed
    }
    m.rewards.push(Grant {
        code: code.clone(),
        reward: reward.name.clone(),
        rule: rule.to_owned(),
        granted_ms: ts,
        expires_ms: reward.expires_ms.map_or(0, |e| ts + e),
        redeemed_ms: 0,
        redeemed_at: String::new(),
    });
    let why = format!("{reason}; reward {}", reward.name);
    book.note(rule, "reward", "grant", &why, &code);
}

/// The ordered tier for `qualifying` points ("" below the first threshold).
fn tier_for(lp: &LoyaltyProgram, qualifying: i64) -> String {
    lp.tiers.iter().rev().find(|t| qualifying >= t.threshold).map_or_else(String::new, |t| t.name.clone())
}

/// Recompute the tier from qualifying points; each change (and a promotion to
/// VIP) is a ledger row and runs the tier-change rules, which may change points,
/// and so the tier, again (a few rounds at most).
fn settle_tier(cat: &Catalog, lp: &LoyaltyProgram, m: &mut Member, occ: &Occ<'_>, contact: &str, book: &mut Book<'_>) {
    if lp.tiers.is_empty() {
        return;
    }
    let name = |t: Option<usize>| t.map_or("none", |i| lp.tier_name(i));
    let vip = lp.tiers.len();
    for _ in 0..4 {
        let from = ordered_tier(lp, m);
        let next = lp.tiers.iter().rposition(|t| m.qualifying >= t.threshold);
        let (mv, entry, reference) = if !m.vip && m.vip_noted {
            // Out of the VIP tier: a downgrade from it to the ordered tier.
            m.vip_noted = false;
            let mv = TierMove { from: Some(vip), to: from, upgrade: false, vip_promoted: false };
            (mv, "downgrade", format!("{} -> {}", lp.vip.as_deref().unwrap_or("vip"), name(from)))
        } else if m.vip && !m.vip_noted {
            m.vip_noted = true;
            let mv = TierMove { from, to: from, upgrade: false, vip_promoted: true };
            (mv, "vip", format!("{} -> {}", name(from), lp.vip.as_deref().unwrap_or("vip")))
        } else if next != from {
            m.tier = next.map_or_else(String::new, |i| lp.tiers[i].name.clone());
            let to = next;
            let mv = TierMove { from, to, upgrade: to > from, vip_promoted: false };
            (mv, if mv.upgrade { "upgrade" } else { "downgrade" }, format!("{} -> {}", name(from), name(to)))
        } else {
            return;
        };
        let why = format!("{} qualifying points", m.qualifying);
        book.note("", "tier", entry, &why, &reference);
        let o = Occ { tier_move: Some(mv), receipt: None, ..*occ };
        fire_rules(cat, lp, &lp.on_tier, m, &o, contact, book);
    }
}

/// When a birthday rule is next due for `m` (None: no birthday, or done this year).
fn birthday_due(lp: &LoyaltyProgram, ri: usize, m: &Member, now: i64) -> Option<i64> {
    let rule = &lp.rules[ri];
    let b = rule.birthday?;
    let bday = parse_birthday(&m.birthday)?;
    let fired = m.progress.get(&rule.name).map_or(0, |p| p.fired);
    let y = year_of(now, lp.zone);
    [y - 1, y, y + 1].into_iter().filter(|year| i64::from(*year) > fired).find_map(|year| {
        let (start, end) = birthday_window(year, bday, b, lp.zone);
        // A member who joins inside the window gets it at once; a past one is gone.
        (end > now && end > m.joined_ms).then_some(start.max(now.min(start.max(m.joined_ms))))
    })
}

/// (due, last activity) of an inactivity rule not yet fired for that activity.
fn inactive_due(lp: &LoyaltyProgram, ri: usize, m: &Member) -> Option<(i64, i64)> {
    let rule = &lp.rules[ri];
    let i = rule.inactive.as_ref()?;
    let last = m.active_ms.get(&i.event).copied().unwrap_or(m.joined_ms);
    let fired = m.progress.get(&rule.name).map_or(i64::MIN, |p| p.fired);
    (fired != last).then_some((last + i.for_ms, last))
}

/// Keep one timer per member and program at the next moment something is due.
/// A timer is only ever moved earlier: one that fires with nothing due re-arms.
fn schedule(lp: &LoyaltyProgram, m: &mut Member, contact: &str, now: i64, timers: &mut FxHashMap<Vec<u8>, bool>) {
    let birthdays = lp.on_birthday.iter().filter_map(|&ri| birthday_due(lp, ri, m, now));
    let inactive = lp.on_inactive.iter().filter_map(|&ri| inactive_due(lp, ri, m).map(|d| d.0));
    let Some(due) = m.next_lot_change().into_iter().chain(birthdays).chain(inactive).min() else { return };
    let due = due.max(now);
    if m.wake_ms != 0 && m.wake_ms <= due {
        return;
    }
    if m.wake_ms != 0 {
        timers.insert(timer_key(m.wake_ms, contact, lp.timer_id), false);
    }
    m.wake_ms = due;
    timers.insert(timer_key(due, contact, lp.timer_id), true);
}

/// A member joining at `ts`: in the tier of 0 points, with the profile's birthday.
fn new_member(lp: &LoyaltyProgram, ts: i64, profile: &crate::vecmap::VecMap<String, Value>) -> Member {
    let mut m = Member::new(ts);
    m.tier = tier_for(lp, 0);
    member_fields(&[("birthday".into(), profile.get("birthday").cloned().unwrap_or_default())], &mut m, false);
    m
}

/// Join `lp` now: member fields from `fields`, then join rules, tier, timer.
fn join(cat: &Catalog, lp: &LoyaltyProgram, ev: &Event, state: &mut State, how: &str, fields: &[(Text, Value)], out: &mut LoyaltyOut<'_>) {
    let State { loyalty, profile, facts, .. } = state;
    let mut fresh = new_member(lp, ev.ts, profile);
    member_fields(fields, &mut fresh, ev.kind == "loyalty_subscribe" && lp.vip.is_some());
    let m = loyalty.entry_or_insert_with(lp.name.clone(), || fresh);
    let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: ev.ts, event_id: &ev.id, grants: 0 };
    book.note("", "member", "join", how, "");
    let occ = Occ { ts: ev.ts, attrs: ev.attrs(), receipt: None, tier_move: None, profile, facts };
    fire_rules(cat, lp, &lp.on_join, m, &occ, &ev.contact, &mut book);
    settle_tier(cat, lp, m, &occ, &ev.contact, &mut book);
    schedule(lp, m, &ev.contact, ev.ts, out.timers);
}

/// `loyalty_subscribe` {program?, birthday?, vip?}: join the subscribe programs (only
/// `program` when given, whatever its join), or update a member's fields.
fn subscribe(cat: &Catalog, ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>) {
    let only = map_get(ev.attrs(), "program").and_then(Value::as_str);
    for lp in &cat.loyalty {
        let wanted = only.map_or(lp.join == Join::Subscribe, |p| p.eq_ignore_ascii_case(&lp.name));
        if !wanted {
            continue;
        }
        match state.loyalty.get_mut(&lp.name) {
            None => join(cat, lp, ev, state, "joined the program (loyalty_subscribe)", ev.attrs(), out),
            Some(m) => {
                member_fields(ev.attrs(), m, lp.vip.is_some());
                settle_after_fields(cat, lp, ev, state, out);
            }
        }
    }
}

/// Member fields an event carries: `birthday`, and `vip` where `vip` is allowed
/// (a `loyalty_subscribe` event, in a program with a VIP tier).
fn member_fields(attrs: &[(Text, Value)], m: &mut Member, vip: bool) {
    if let Some(b) = map_get(attrs, "birthday").and_then(Value::as_str).filter(|b| parse_birthday(b).is_some()) {
        m.birthday = b.to_owned();
    }
    if let (true, Some(Value::Bool(v))) = (vip, map_get(attrs, "vip")) {
        m.vip = *v;
    }
}

/// After member fields changed: a VIP promotion is a tier change; a birthday may
/// need the timer.
fn settle_after_fields(cat: &Catalog, lp: &LoyaltyProgram, ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>) {
    let State { loyalty, profile, facts, .. } = state;
    let Some(m) = loyalty.get_mut(&lp.name) else { return };
    let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: ev.ts, event_id: &ev.id, grants: 0 };
    let occ = Occ { ts: ev.ts, attrs: ev.attrs(), receipt: None, tier_move: None, profile, facts };
    settle_tier(cat, lp, m, &occ, &ev.contact, &mut book);
    schedule(lp, m, &ev.contact, ev.ts, out.timers);
}

/// `$profile`: join the profile programs whose member field the event sets to true;
/// member fields it sets (birthday) apply to every membership.
fn profile(cat: &Catalog, ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>) {
    let Some(Value::Map(set)) = map_get(ev.attrs(), "set") else { return };
    for lp in &cat.loyalty {
        if let Some(m) = state.loyalty.get_mut(&lp.name) {
            member_fields(set, m, false);
            settle_after_fields(cat, lp, ev, state, out);
        } else if let Join::Profile(field) = &lp.join {
            if matches!(map_get(set, field), Some(Value::Bool(true))) {
                join(cat, lp, ev, state, &format!("joined the program ($profile set {field})"), set, out);
            }
        }
    }
}

type MemberOp = fn(&LoyaltyProgram, &Event, &mut Member, &mut Book<'_>);

fn each_member(cat: &Catalog, ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>, op: MemberOp) {
    let State { loyalty, profile, facts, .. } = state;
    for lp in &cat.loyalty {
        let Some(m) = loyalty.get_mut(&lp.name) else { continue };
        let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: ev.ts, event_id: &ev.id, grants: 0 };
        op(lp, ev, m, &mut book);
        let occ = Occ { ts: ev.ts, attrs: ev.attrs(), receipt: None, tier_move: None, profile, facts };
        settle_tier(cat, lp, m, &occ, &ev.contact, &mut book);
    }
}

/// `purchase_return` {receipt, total_amount?}: reverse what the receipt earned, in
/// proportion to the amount refunded (all of it when no amount is given). Pending
/// points are cancelled; available ones debited; points already spent are not
/// charged again (a balance never goes below 0).
fn on_return(lp: &LoyaltyProgram, ev: &Event, m: &mut Member, book: &mut Book<'_>) {
    let Some(id) = map_get(ev.attrs(), "receipt").and_then(Value::as_str) else {
        book.note("", "refused", "refused", "purchase_return needs the receipt it returns (attribute receipt)", "");
        return;
    };
    let Some(r) = m.receipt_mut(id).filter(|r| r.ts > ev.ts.saturating_sub(lp.returns_ms)) else {
        let why = format!("receipt '{id}' earned no points here (or is older than returns_within)");
        book.note("", "refused", "refused", &why, id);
        return;
    };
    let left = r.cents - r.refunded_cents;
    let refund = map_get(ev.attrs(), "total_amount").map_or(left, |v| to_cents(Some(v))).clamp(0, left);
    r.refunded_cents += refund;
    let full = r.refunded_cents >= r.cents;
    let mut back = [0i64; 2];
    for k in PointKind::BOTH {
        let i = k.idx();
        let target = if full || r.cents == 0 { r.earned[i] } else { (i128::from(r.earned[i]) * i128::from(r.refunded_cents) / i128::from(r.cents)) as i64 };
        back[i] = target - r.reversed[i];
        r.reversed[i] = target;
    }
    let mut why = String::from("return of ");
    receipt::push_cents(&mut why, refund);
    why.push_str(if full { " (receipt fully returned)" } else { " (partial)" });
    for k in PointKind::BOTH {
        let want = back[k.idx()];
        if want <= 0 {
            continue;
        }
        let cancelled = m.cancel_pending(k, id, want);
        if cancelled > 0 {
            book.points(m, "", k, "cancel", 0, -cancelled, &format!("{why}: pending points cancelled"), id);
        }
        let rest = want - cancelled;
        if rest > 0 {
            let taken = m.take(k, rest);
            let mut w = why.clone();
            if taken < rest {
                w.push_str(&format!("; {} points already spent are not charged again", rest - taken));
            }
            book.points(m, "", k, "return", -taken, 0, &w, id);
        }
    }
}

/// `reward_redeem` {code, channel?, store_code?}: a member's reward, once, before it
/// expires.
fn redeem(cat: &Catalog, ev: &Event, state: &mut State, out: &mut LoyaltyOut<'_>) {
    let raw = map_get(ev.attrs(), "code").and_then(Value::as_str).unwrap_or("");
    let code = codes::normalize(raw);
    let at = match (map_get(ev.attrs(), "store_code").and_then(Value::as_str), map_get(ev.attrs(), "channel").and_then(Value::as_str)) {
        (Some(s), _) => format!("store {s}"),
        (None, Some(c)) => c.to_owned(),
        (None, None) => "online".to_owned(),
    };
    for lp in &cat.loyalty {
        let Some(m) = state.loyalty.get_mut(&lp.name) else { continue };
        let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: ev.ts, event_id: &ev.id, grants: 0 };
        let Some(g) = m.rewards.iter_mut().find(|g| g.code == code) else { continue };
        let (entry, why) = match g.status(ev.ts) {
            "redeemed" => ("refused", format!("reward {} was already redeemed ({})", g.reward, g.redeemed_at)),
            "expired" => ("refused", format!("reward {} expired at {}", g.reward, crate::dates::format_iso(g.expires_ms))),
            _ => {
                g.redeemed_ms = ev.ts;
                g.redeemed_at = at.clone();
                ("redeem", format!("reward {} redeemed ({at})", g.reward))
            }
        };
        let rule = g.rule.clone();
        book.note(&rule, "reward", entry, &why, &code);
        return;
    }
    // No membership holds the code: say so in every program the contact is in.
    for lp in &cat.loyalty {
        if state.loyalty.contains_key(&lp.name) {
            let mut book = Book { ledger: out.ledger, program: &lp.name, version: cat.version, ts: ev.ts, event_id: &ev.id, grants: 0 };
            book.note("", "reward", "refused", &format!("no reward of this member has the code '{raw}'"), &code);
        }
    }
}
