//! Does a rule apply to an occasion, how many times, and why (L-2..L-7, I-6, L-9).
//!
//! Checks that only read come first (calendar, tiers, conditions, receipt); the
//! rule's running totals, counts and uses change only once those passed, so a
//! purchase that does not match a rule never counts towards it.

use super::calendar::{days_between, in_birthday, parse_birthday, period_start, same_day};
use super::member::{Member, Progress};
use super::receipt::{push_cents, ReceiptView};
use crate::definitions::condition::Op;
use crate::definitions::loyalty::{Every, LoyaltyProgram, Purchase, Subscribed, TierChange};
use crate::definitions::{Ctx, Rule};
use crate::facts::Facts;
use crate::value::{Text, Value};
use crate::vecmap::VecMap;

/// A tier change, as tier-change conditions read it (tier indexes; None: no tier).
#[derive(Debug, Clone, Copy)]
pub struct TierMove {
    pub from: Option<usize>,
    pub to: Option<usize>,
    pub upgrade: bool,
    pub vip_promoted: bool,
}

/// What a rule looks at.
pub struct Occ<'a> {
    pub ts: i64,
    pub attrs: &'a [(Text, Value)],
    pub receipt: Option<&'a ReceiptView<'a>>,
    pub tier_move: Option<TierMove>,
    pub profile: &'a VecMap<String, Value>,
    pub facts: &'a Facts,
}

pub enum Outcome {
    Skip,
    /// The conditions held and the occasion counted towards the rule (a running
    /// total, an "every X" carry, a count), but it does not apply yet.
    Counted,
    Fire { times: i64, reason: String },
    /// The conditions held but the rule's restriction is used up.
    Limited { reason: String },
}

/// The member's ordered tier index (None below the first threshold).
pub fn ordered_tier(lp: &LoyaltyProgram, m: &Member) -> Option<usize> {
    lp.tiers.iter().position(|t| t.name == m.tier)
}

fn in_scope(lp: &LoyaltyProgram, rule: &Rule, m: &Member, tier: Option<usize>) -> bool {
    let Some(tiers) = &rule.tiers else { return true };
    let vip = lp.tiers.len();
    tiers.iter().any(|&t| (t == vip && m.vip) || Some(t) == tier)
}

fn subscribed_ok(s: Subscribed, m: &Member, ts: i64, lp: &LoyaltyProgram) -> bool {
    match s {
        Subscribed::OnDay => same_day(ts, m.joined_ms, lp.zone),
        // Whole local days, as birthdays count them: the day of joining and d more.
        Subscribed::WithinDays(d) => ts >= m.joined_ms && days_between(m.joined_ms, ts, lp.zone) <= i64::from(d),
    }
}

fn tier_ok(t: &TierChange, mv: Option<TierMove>) -> bool {
    let Some(mv) = mv else { return false };
    // A promotion to VIP is only what `vip: true` waits for.
    if t.vip || mv.vip_promoted {
        return t.vip && mv.vip_promoted;
    }
    t.upgrade.is_none_or(|u| u == mv.upgrade && !mv.vip_promoted)
        && t.from.is_none_or(|f| mv.from == Some(f))
        && t.to.is_none_or(|x| mv.to == Some(x))
}

/// Read-only checks; `Some(per-receipt measure)` when they pass.
fn matches(lp: &LoyaltyProgram, rule: &Rule, m: &Member, tier: Option<usize>, occ: &Occ<'_>) -> Option<(i64, i64)> {
    if rule.start_ms.is_some_and(|s| occ.ts < s) || rule.end_ms.is_some_and(|e| occ.ts >= e) || !in_scope(lp, rule, m, tier) {
        return None;
    }
    if let Some(w) = &rule.when {
        let ctx = Ctx { attrs: occ.attrs, profile: occ.profile, ts: occ.ts, facts: occ.facts };
        if !w.eval(&ctx, None) {
            return None;
        }
    }
    if let Some(b) = rule.birthday {
        let bday = parse_birthday(&m.birthday)?;
        if !in_birthday(occ.ts, bday, b, lp.zone) {
            return None;
        }
    }
    if rule.subscribed.is_some_and(|s| !subscribed_ok(s, m, occ.ts, lp)) {
        return None;
    }
    if rule.tier_change.as_ref().is_some_and(|t| !tier_ok(t, occ.tier_move)) {
        return None;
    }
    if let Some((kind, op)) = &rule.balance {
        if op.test(&Value::F64(m.balance(*kind) as f64), 0) != Some(true) {
            return None;
        }
    }
    match &rule.purchase {
        None => Some((0, 0)),
        Some(p) => {
            let r = occ.receipt?;
            if !r.in_stores(&p.stores) {
                return None;
            }
            let (cents, items, lines) = r.measure(p.lines.as_ref());
            if p.lines.is_some() && lines == 0 {
                return None;
            }
            let ok = test(&p.spent, cents as f64 / 100.0) && test(&p.quantity, items as f64);
            ok.then_some((cents, items))
        }
    }
}

fn test(op: &Option<Op>, x: f64) -> bool {
    op.as_ref().is_none_or(|o| o.test(&Value::F64(x), 0) == Some(true))
}

/// Evaluate `rule` for `occ`, updating the member's progress for it. `tier`: the
/// member's ordered tier (`ordered_tier`), read once per occasion.
pub fn evaluate(lp: &LoyaltyProgram, rule: &Rule, m: &mut Member, tier: Option<usize>, occ: &Occ<'_>) -> Outcome {
    let Some((cents, items)) = matches(lp, rule, m, tier, occ) else { return Outcome::Skip };
    // The measures' account; the conditions' goes in front once the rule applies
    // (most occasions that only count towards a rule never need it).
    let mut reason = String::with_capacity(96);
    let mut progress = if rule.has_progress() {
        if !m.progress.contains_key(rule.name.as_str()) {
            m.progress.insert(rule.name.clone(), Progress::default());
        }
        m.progress.get_mut(rule.name.as_str())
    } else {
        None
    };
    let mut times = 1;
    if let Some(p) = &rule.purchase {
        push_receipt(&mut reason, cents, items, p);
        if p.cumulative() {
            let pr = progress.as_deref_mut().expect("cumulative rules keep progress");
            match cumulative(p, pr, occ.ts, cents, items, &mut reason) {
                Some(t) => times = t,
                None => return Outcome::Counted,
            }
        } else if let Some(e) = p.every {
            times = per_transaction(e, cents, items, &mut reason);
        }
        if times == 0 {
            return if p.cumulative() { Outcome::Counted } else { Outcome::Skip };
        }
    }
    if let Some((n, within)) = rule.count {
        let pr = progress.as_deref_mut().expect("counting rules keep progress");
        if let Some(w) = within {
            pr.counted.retain(|t| *t > occ.ts - w);
        }
        pr.counted.push(occ.ts);
        let have = pr.counted.len();
        reason.push_str("; counted ");
        reason.push_str(itoa::Buffer::new().format(have));
        reason.push_str(" of ");
        reason.push_str(itoa::Buffer::new().format(n));
        if (have as u32) < n {
            return Outcome::Counted;
        }
        pr.counted.drain(..n as usize);
    }
    if let Some(limit) = rule.limit {
        let pr = progress.expect("limited rules keep progress");
        let period = period_start(occ.ts, limit.per, lp.zone);
        if pr.period != period {
            pr.period = period;
            pr.uses = 0;
        }
        let left = i64::from(limit.times) - i64::from(pr.uses);
        reason.push_str("; limit ");
        reason.push_str(itoa::Buffer::new().format(limit.times));
        reason.push_str(" per ");
        reason.push_str(limit.per.name());
        if left <= 0 {
            reason.push_str(": used up");
            return Outcome::Limited { reason: account(rule, m, occ, &reason) };
        }
        times = times.min(left);
        pr.uses += times as u32;
    }
    Outcome::Fire { times, reason: account(rule, m, occ, &reason) }
}

/// "rule NAME: <conditions><measures>", tidied.
fn account(rule: &Rule, m: &Member, occ: &Occ<'_>, measures: &str) -> String {
    let mut reason = String::with_capacity(32 + measures.len());
    reason.push_str("rule ");
    reason.push_str(&rule.name);
    reason.push(':');
    explain_conditions(rule, m, occ, &mut reason);
    reason.push_str(measures);
    tidy(reason, rule)
}

/// "rule r:; x" -> "rule r: x"; "rule r:" -> "rule r" (a rule with no condition
/// text before its measures). Looks only right after the prefix: no search.
fn tidy(mut reason: String, rule: &Rule) -> String {
    let colon = "rule ".len() + rule.name.len();
    match reason.as_bytes().get(colon + 1) {
        None => {
            reason.truncate(colon);
        }
        Some(b';') => {
            reason.remove(colon + 1);
        }
        Some(_) => {}
    }
    reason
}

fn explain_conditions(rule: &Rule, m: &Member, occ: &Occ<'_>, reason: &mut String) {
    if let Some(w) = &rule.when {
        let ctx = Ctx { attrs: occ.attrs, profile: occ.profile, ts: occ.ts, facts: occ.facts };
        reason.push(' ');
        let mut trace = String::new();
        w.eval(&ctx, Some(&mut trace));
        reason.push_str(&trace);
    }
    if rule.birthday.is_some() {
        reason.push_str(" birthday ");
        reason.push_str(&m.birthday);
    }
    if let Some((kind, op)) = &rule.balance {
        reason.push_str(" balance ");
        reason.push_str(kind.name());
        reason.push(' ');
        reason.push_str(itoa::Buffer::new().format(m.balance(*kind)));
        op.write_operand_named(reason);
    }
    if rule.subscribed.is_some() {
        reason.push_str(" subscribed ");
        crate::dates::push_iso(reason, m.joined_ms);
    }
    if let Some(mv) = occ.tier_move.filter(|_| rule.tier_change.is_some()) {
        reason.push_str(if mv.vip_promoted { " promoted to vip" } else if mv.upgrade { " upgrade" } else { " downgrade" });
    }
}

fn push_receipt(reason: &mut String, cents: i64, items: i64, p: &Purchase) {
    reason.push_str(if p.lines.is_some() { " matching lines " } else { " receipt " });
    push_cents(reason, cents);
    reason.push_str(", ");
    reason.push_str(itoa::Buffer::new().format(items));
    reason.push_str(" items");
}

/// Times for an "every X per transaction" measure.
fn per_transaction(e: Every, cents: i64, items: i64, reason: &mut String) -> i64 {
    let (times, what) = match e {
        Every::SpentPerTransaction(x) => (cents / x, "every_spent_per_transaction"),
        Every::QuantityPerTransaction(n) => (items / n, "every_quantity_per_transaction"),
        _ => (1, ""),
    };
    reason.push_str("; ");
    reason.push_str(what);
    reason.push_str(" x");
    reason.push_str(itoa::Buffer::new().format(times));
    times
}

/// Running totals: add this receipt, check totals and thresholds; None when the
/// rule does not apply, else how many times ("every X" carries the rest).
fn cumulative(p: &Purchase, pr: &mut Progress, ts: i64, cents: i64, items: i64, reason: &mut String) -> Option<i64> {
    let before = pr.spent;
    pr.spent += cents;
    pr.quantity += items;
    pr.transactions += 1;
    let (spent, quantity, transactions) = match p.within_ms {
        None => (pr.spent, pr.quantity, pr.transactions),
        Some(w) => {
            pr.window.retain(|(t, ..)| *t > ts - w);
            pr.window.push((ts, cents, items));
            pr.window.iter().fold((0, 0, 0), |(s, q, n), (_, c, i)| (s + c, q + i, n + 1))
        }
    };
    reason.push_str("; total ");
    push_cents(reason, spent);
    reason.push_str(", ");
    reason.push_str(itoa::Buffer::new().format(quantity));
    reason.push_str(" items, ");
    reason.push_str(itoa::Buffer::new().format(transactions));
    reason.push_str(" transactions");
    let ok = test(&p.total_spent, spent as f64 / 100.0)
        && test(&p.total_quantity, quantity as f64)
        && test(&p.transactions, transactions as f64)
        && p.spent_from.is_none_or(|f| spent >= f)
        && p.spent_up_to.is_none_or(|u| before < u);
    let times = match p.every {
        None => 1,
        Some(Every::Spent(x)) => carry(pr, cents, x),
        Some(Every::Quantity(n)) => carry(pr, items, n),
        Some(Every::Transactions(n)) => carry(pr, 1, n as i64),
        Some(e) => per_transaction(e, cents, items, reason),
    };
    if matches!(p.every, Some(Every::Spent(_) | Every::Quantity(_) | Every::Transactions(_))) {
        reason.push_str("; every x");
        reason.push_str(itoa::Buffer::new().format(times));
        reason.push_str(", carried ");
        reason.push_str(itoa::Buffer::new().format(pr.carry));
    }
    ok.then_some(times)
}

fn carry(pr: &mut Progress, add: i64, every: i64) -> i64 {
    pr.carry += add;
    let times = pr.carry / every;
    pr.carry %= every;
    times
}
