//! Ledger rows: every change of a member's points, rewards or tier, with its cause.
//!
//! Rows are append-only, keyed by the causing event's history sequence (so they
//! commit with the state change in the same transaction). For each kind, the sum
//! of `delta` over a member's rows is its available balance and the sum of
//! `pending_delta` its pending balance; rows about rewards and tiers move nothing.

use serde::{Deserialize, Serialize};

use super::member::Member;
use crate::definitions::PointKind;
use crate::rows::EventRows;
use crate::state_writer::{fields, Pack};

/// One ledger row. Stored compactly, as the msgpack array of its fields in this
/// order (field names were half of a row's bytes); `named_ledger` gives readers
/// the named map.
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

// ~1.8 rows per purchase: written directly, not through rmp-serde's per-field
// dispatch (the same bytes; `EventRows::push_packed` checks them in debug builds).
impl Pack for LedgerRow<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let LedgerRow { ts, event_id, program, rule, version, kind, entry, delta, pending_delta, balance, pending, reason, reference } = self;
        fields!(out; ts, event_id, program, rule, version, kind, entry, delta, pending_delta, balance, pending, reason, reference);
    }
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
        self.ledger.push_packed(&row);
    }
}

/// A stored ledger row read back: compact, or a named map as earlier builds wrote
/// (whose `seq` is ignored, and whose missing fields read as empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLedger {
    pub ts: i64,
    pub event_id: String,
    pub program: String,
    pub rule: String,
    pub version: u64,
    pub kind: String,
    #[serde(default)]
    pub entry: String,
    pub delta: i64,
    #[serde(default)]
    pub pending_delta: i64,
    pub balance: i64,
    #[serde(default)]
    pub pending: i64,
    pub reason: String,
    #[serde(default)]
    pub reference: String,
}

/// A stored ledger row as the msgpack named map readers use: `{"ts", "event_id",
/// "program", "rule", "version", "kind", "entry", "delta", "pending_delta",
/// "balance", "pending", "reason", "reference"}`.
pub fn named_ledger(raw: &[u8]) -> Result<Vec<u8>, String> {
    let row: StoredLedger = crate::value::decode_exact(raw)?;
    Ok(crate::value::encode(&row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Rows;

    /// Every kind and entry of the ledger table (docs/definitions.md, "Ledger"),
    /// written directly and by serde, with negative and boundary integers and
    /// strings of every length form.
    #[test]
    fn the_direct_writer_writes_what_serde_writes() {
        use crate::state_writer::tests::{strings, written, INTS, UINTS};
        let entries = [
            ("qualifying", "earn"), ("non_qualifying", "pending"), ("non_qualifying", "release"), ("qualifying", "debit"),
            ("qualifying", "reset"), ("non_qualifying", "return"), ("non_qualifying", "cancel"), ("qualifying", "expire"),
            ("refused", "refused"), ("reward", "refused"), ("rule", "limited"), ("reward", "grant"), ("reward", "redeem"),
            ("tier", "upgrade"), ("tier", "downgrade"), ("tier", "vip"), ("member", "join"),
        ];
        let strings = strings();
        for (i, (kind, entry)) in entries.into_iter().enumerate() {
            for (j, n) in INTS.into_iter().enumerate() {
                let s = |k: usize| strings[(i + j + k) % strings.len()].as_str();
                let int = |k: usize| INTS[(j + k) % INTS.len()];
                let row = LedgerRow {
                    ts: n,
                    event_id: s(0),
                    program: s(1),
                    rule: s(2),
                    version: UINTS[(i + j) % UINTS.len()],
                    kind,
                    entry,
                    delta: int(4),
                    pending_delta: int(1),
                    balance: int(2),
                    pending: int(3),
                    reason: s(3),
                    reference: s(4),
                };
                assert!(written(&row) == crate::value::encode_compact(&row), "{kind} {entry} {n}");
            }
        }
    }

    #[test]
    fn rows_are_positional_and_read_as_named_maps() {
        let mut rows = Rows::default();
        let mut ledger = EventRows { rows: &mut rows, seq: 7, first: 0 };
        let mut book = Book { ledger: &mut ledger, program: "club", version: 2, ts: 5, event_id: "e1", grants: 0 };
        book.note("r", "reward", "grant", "why", "CODE");
        let (_, raw) = rows.get(0);
        let named = named_ledger(raw).unwrap();
        assert!(raw.len() + 80 < named.len(), "{} vs {}", raw.len(), named.len());
        let row: crate::value::Value = crate::value::decode_exact(&named).unwrap();
        assert_eq!(row.get("reference").and_then(crate::value::Value::as_str), Some("CODE"));
        assert_eq!(row.get("entry").and_then(crate::value::Value::as_str), Some("grant"));
        // A row as earlier builds stored it (named, with a member sequence) reads too.
        let old = crate::value::encode(&serde_json::json!({"seq": 1, "ts": 5, "event_id": "e1", "program": "club",
            "rule": "r", "version": 1, "kind": "qualifying", "delta": 3, "balance": 3, "reason": "why"}));
        let back: StoredLedger = crate::value::decode_exact(&named_ledger(&old).unwrap()).unwrap();
        assert_eq!((back.delta, back.entry.as_str(), back.pending), (3, "", 0));
    }
}
