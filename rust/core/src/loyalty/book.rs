//! Ledger rows: every change of a member's points, rewards or tier, with its cause.
//!
//! Rows are append-only, keyed by the causing event's history sequence (so they
//! commit with the state change in the same transaction). For each kind, the sum
//! of `delta` over a member's rows is its available balance and the sum of
//! `pending_delta` its pending balance; rows about rewards and tiers move nothing.

use serde::Serialize;

use super::member::Member;
use crate::definitions::PointKind;
use crate::rows::EventRows;

/// One ledger row, stored as a named map.
#[derive(Serialize)]
pub struct LedgerRow<'a> {
    pub ts: i64,
    pub event_id: &'a str,
    pub program: &'a str,
    /// The rule that caused it ("" for the program's own bookkeeping: releases,
    /// expiries, returns, redemptions).
    pub rule: &'a str,
    /// Definitions version the rule belongs to.
    pub version: u64,
    /// qualifying | non_qualifying (points rows); reward | tier | member | rule |
    /// refused (rows that move no points)
    pub kind: &'static str,
    /// What happened (docs/definitions.md, "Ledger").
    pub entry: &'static str,
    pub delta: i64,
    pub pending_delta: i64,
    /// Available and pending balances of `kind` after the row.
    pub balance: i64,
    pub pending: i64,
    pub reason: &'a str,
    /// Receipt id, reward code, or "from -> to" of a tier change.
    pub reference: &'a str,
}

/// Writes the rows of one occasion of one program.
pub struct Book<'r, 'l> {
    pub ledger: &'r mut EventRows<'l>,
    pub program: &'r str,
    pub version: u64,
    pub ts: i64,
    pub event_id: &'r str,
    /// Rewards granted so far on this occasion: each grant's code differs.
    pub grants: usize,
}

impl Book<'_, '_> {
    /// A points row for `kind`, with the balances `m` holds after the change.
    #[allow(clippy::too_many_arguments)]
    pub fn points(&mut self, m: &Member, rule: &str, kind: PointKind, entry: &'static str, delta: i64, pending_delta: i64, reason: &str, reference: &str) {
        self.push(rule, kind.name(), entry, delta, pending_delta, m.balance(kind), m.pending[kind.idx()], reason, reference);
    }

    /// A row that moves no points: rewards, tiers, refusals.
    pub fn note(&mut self, rule: &str, kind: &'static str, entry: &'static str, reason: &str, reference: &str) {
        self.push(rule, kind, entry, 0, 0, 0, 0, reason, reference);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, rule: &str, kind: &'static str, entry: &'static str, delta: i64, pending_delta: i64, balance: i64, pending: i64, reason: &str, reference: &str) {
        let row = LedgerRow {
            ts: self.ts,
            event_id: self.event_id,
            program: self.program,
            rule,
            version: self.version,
            kind,
            entry,
            delta,
            pending_delta,
            balance,
            pending,
            reason,
            reference,
        };
        self.ledger.push(&row);
    }
}
