//! Loyalty: membership, `loyalty_subscribe`, rules crediting balances with ledger rows.

use serde::Serialize;

use crate::definitions::{Catalog, Ctx, Join, LoyaltyProgram, PointKind, Rule};
use crate::event::Event;
use crate::rows::EventRows;
use crate::state::{Membership, State};
use crate::value::{map_get, Value};

/// One ledger row value.
#[derive(Serialize)]
pub struct LedgerRow<'a> {
    pub seq: u64,
    pub ts: i64,
    pub event_id: &'a str,
    pub program: &'a str,
    pub rule: &'a str,
    pub version: u64,
    pub kind: &'static str,
    pub delta: i64,
    pub balance: i64,
    pub reason: &'a str,
}

fn new_member(ts: i64) -> Membership {
    Membership { joined_ms: ts, qualifying: 0, non_qualifying: 0 }
}

/// `loyalty_subscribe`: join the subscribe-programs (only `attrs.program` when given).
pub fn subscribe(cat: &Catalog, ev: &Event, state: &mut State) {
    let only = map_get(ev.attrs(), "program").and_then(Value::as_str);
    for lp in cat.loyalty.iter().filter(|l| l.join == Join::Subscribe) {
        if only.is_some_and(|p| !p.eq_ignore_ascii_case(&lp.name)) {
            continue;
        }
        state.loyalty.entry_or_insert_with(lp.name.clone(), || new_member(ev.ts));
    }
}

/// Apply every loyalty rule of the event's type; ledger rows appended to `ledger`.
pub fn apply_rules(cat: &Catalog, rules: &[(usize, usize)], ev: &Event, state: &mut State, ledger: &mut EventRows<'_>) {
    for &(li, ri) in rules {
        let lp = &cat.loyalty[li];
        apply_rule(cat, lp, &lp.rules[ri], ev, state, ledger);
    }
}

fn apply_rule(cat: &Catalog, lp: &LoyaltyProgram, rule: &Rule, ev: &Event, state: &mut State, ledger: &mut EventRows<'_>) {
    let member = state.loyalty.contains_key(&lp.name);
    if lp.join == Join::Subscribe && !member {
        return;
    }
    if let Some(when) = &rule.when {
        let ctx = Ctx { attrs: ev.attrs(), profile: &state.profile, ts: ev.ts, facts: &state.facts };
        if !when.eval(&ctx, None) {
            return;
        }
    }
    let mut reason = String::with_capacity(96);
    reason.push_str("rule ");
    reason.push_str(&rule.name);
    reason.push_str(": ");
    if let Some(when) = &rule.when {
        let ctx = Ctx { attrs: ev.attrs(), profile: &state.profile, ts: ev.ts, facts: &state.facts };
        let mut trace = String::new();
        when.eval(&ctx, Some(&mut trace));
        reason.push_str(&trace);
    } else {
        reason.push_str(&format!("every {}", rule.event));
    }
    let mismatch = match (&lp.currency, map_get(ev.attrs(), "currency")) {
        (Some(want), Some(Value::Str(got))) if !got.eq_ignore_ascii_case(want) => Some(got.clone()),
        _ => None,
    };
    if let Some(got) = mismatch {
        // Explain why nothing was earned: one zero row per effect, no membership change.
        let why = format!("{reason}; currency '{got}' differs from the program currency '{}': no points", lp.currency.as_deref().unwrap_or(""));
        for c in &rule.effects {
            let balance = state.loyalty.get(&lp.name).map_or(0, |m| balance(m, c.kind));
            push_row(cat, lp, rule, ev, state, c.kind, 0, balance, &why, ledger);
        }
        return;
    }
    let joined = !member;
    state.loyalty.entry_or_insert_with(lp.name.clone(), || new_member(ev.ts));
    if joined {
        reason.push_str("; joined the program");
    }
    for c in &rule.effects {
        let m = state.loyalty.get_mut(&lp.name).expect("just joined");
        let slot = match c.kind {
            PointKind::Qualifying => &mut m.qualifying,
            PointKind::NonQualifying => &mut m.non_qualifying,
        };
        *slot = slot.saturating_add(c.points);
        let bal = *slot;
        push_row(cat, lp, rule, ev, state, c.kind, c.points, bal, &reason, ledger);
    }
}

fn balance(m: &Membership, k: PointKind) -> i64 {
    match k {
        PointKind::Qualifying => m.qualifying,
        PointKind::NonQualifying => m.non_qualifying,
    }
}

#[allow(clippy::too_many_arguments)]
fn push_row(
    cat: &Catalog,
    lp: &LoyaltyProgram,
    rule: &Rule,
    ev: &Event,
    state: &mut State,
    kind: PointKind,
    delta: i64,
    balance: i64,
    reason: &str,
    ledger: &mut EventRows<'_>,
) {
    let seq = state.ledger_seq;
    state.ledger_seq += 1;
    let row = LedgerRow {
        seq,
        ts: ev.ts,
        event_id: &ev.id,
        program: &lp.name,
        rule: &rule.name,
        version: cat.version,
        kind: kind.name(),
        delta,
        balance,
        reason,
    };
    ledger.push(&row);
}
