//! Ledger rows: every change of a member's points, rewards or tier, with its cause.
//!
//! Entries are append-only. The entries of one occasion (an event, or a member
//! timer) are one row, keyed by its history sequence (so they commit with the state
//! change in the same transaction): a purchase earning on two rules and joining
//! the program is one row of three entries, one LMDB put instead of three. For
//! each kind, the sum of `delta` over a member's entries is its available balance
//! and the sum of `pending_delta` its pending balance; entries about rewards and
//! tiers move nothing.

use serde::{Deserialize, Serialize};

use super::member::Member;
use crate::definitions::PointKind;
use crate::msgpack::write_array_len;
use crate::rows::Rows;
use crate::state_writer::{fields, pack_checked, Pack};

/// One ledger entry. Stored compactly, as the msgpack array of its fields in this
/// order (field names were half of an entry's bytes); `named_ledger` gives readers
/// named maps.
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

// ~2 entries per purchase: written directly, not through rmp-serde's per-field
// dispatch (the same bytes; `Entries::push_packed` checks them in debug builds).
impl Pack for LedgerRow<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let LedgerRow { ts, event_id, program, rule, version, kind, entry, delta, pending_delta, balance, pending, reason, reference } = self;
        fields!(out; ts, event_id, program, rule, version, kind, entry, delta, pending_delta, balance, pending, reason, reference);
    }
}

/// The ledger entries of one occasion, packed as they come and written as one row
/// when it is done (`flush`). Reused from one occasion to the next.
#[derive(Debug, Default)]
pub struct Entries {
    packed: Vec<u8>,
    count: usize,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Append an entry written compactly by its direct writer (`pack_checked`).
    fn push_packed(&mut self, entry: &LedgerRow<'_>) {
        pack_checked(entry, &mut self.packed);
        self.count += 1;
    }

    /// Write the entries so far as the row of the occasion with history sequence
    /// `seq` (key: `seq` then 0, 12 bytes BE, as every event-keyed row), if any, and
    /// start over.
    pub fn flush(&mut self, rows: &mut Rows, seq: u64) {
        if self.count == 0 {
            return;
        }
        let (packed, count) = (&self.packed, self.count);
        rows.push_with(&[&seq.to_be_bytes(), &0u32.to_be_bytes()], |out| {
            write_array_len(out, count);
            out.extend_from_slice(packed);
        });
        self.clear();
    }

    /// Forget the entries so far (a simulation counts them and keeps none).
    pub fn clear(&mut self) {
        self.packed.clear();
        self.count = 0;
    }
}

/// Writes the entries of one occasion of one program.
pub struct Book<'r> {
    pub ledger: &'r mut Entries,
    pub program: &'r str,
    pub version: u64,
    pub ts: i64,
    pub event_id: &'r str,
    /// Rewards granted so far on this occasion: each grant's code differs.
    pub grants: usize,
}

impl Book<'_> {
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

/// A stored ledger entry read back: compact, or a named map as earlier builds wrote
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

/// A stored ledger row's entries as the msgpack array of named maps readers use:
/// `[{"ts", "event_id", "program", "rule", "version", "kind", "entry", "delta",
/// "pending_delta", "balance", "pending", "reason", "reference"}, ...]`. Rows of
/// earlier builds held one entry (compact, or named) and read as one.
pub fn named_ledger(raw: &[u8]) -> Result<Vec<u8>, String> {
    let entries: Vec<StoredLedger> = match crate::value::decode_exact(raw) {
        Ok(entries) => entries,
        Err(many) => vec![crate::value::decode_exact(raw).map_err(|_| many)?],
    };
    Ok(crate::value::encode(&entries))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_occasions_entries_are_one_positional_row_read_as_named_maps() {
        let mut rows = Rows::default();
        let mut entries = Entries::default();
        entries.flush(&mut rows, 6);
        assert!(rows.is_empty(), "an occasion without entries writes no row");
        let mut book = Book { ledger: &mut entries, program: "club", version: 2, ts: 5, event_id: "e1", grants: 0 };
        book.note("r", "reward", "grant", "why", "CODE");
        book.points(&Member::default(), "r2", PointKind::Qualifying, "earn", 4, 0, "because", "");
        assert_eq!(entries.len(), 2);
        entries.flush(&mut rows, 7);
        assert!(entries.is_empty(), "flushed entries start over");
        let (key, raw) = rows.get(0);
        assert_eq!((rows.len(), key), (1, &[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0][..]), "one row, keyed by the sequence then 0");
        let named = named_ledger(raw).unwrap();
        assert!(raw.len() + 160 < named.len(), "{} vs {}", raw.len(), named.len());
        let read: Vec<StoredLedger> = crate::value::decode_exact(&named).unwrap();
        let got: Vec<(&str, &str, i64, &str)> =
            read.iter().map(|e| (e.entry.as_str(), e.rule.as_str(), e.delta, e.reference.as_str())).collect();
        assert_eq!(got, [("grant", "r", 0, "CODE"), ("earn", "r2", 4, "")]);
        assert!(read.iter().all(|e| (e.ts, e.event_id.as_str(), e.program.as_str(), e.version) == (5, "e1", "club", 2)));
    }

    #[test]
    fn rows_of_earlier_builds_read_as_one_entry() {
        // One compact entry per row, as builds before one row per occasion wrote.
        let mut one = Vec::new();
        let entry = LedgerRow { ts: 5, event_id: "e1", program: "club", rule: "r", version: 1, kind: "qualifying",
            entry: "earn", delta: 3, pending_delta: 0, balance: 3, pending: 0, reason: "why", reference: "" };
        entry.pack(&mut one);
        let back: Vec<StoredLedger> = crate::value::decode_exact(&named_ledger(&one).unwrap()).unwrap();
        assert_eq!(back.iter().map(|e| (e.rule.as_str(), e.delta)).collect::<Vec<_>>(), [("r", 3)]);
        // A named map with a member sequence, as the first builds wrote.
        let old = crate::value::encode(&serde_json::json!({"seq": 1, "ts": 5, "event_id": "e1", "program": "club",
            "rule": "r", "version": 1, "kind": "qualifying", "delta": 3, "balance": 3, "reason": "why"}));
        let back: Vec<StoredLedger> = crate::value::decode_exact(&named_ledger(&old).unwrap()).unwrap();
        assert_eq!((back.len(), back[0].delta, back[0].entry.as_str(), back[0].pending), (1, 3, "", 0));
        assert!(named_ledger(b"\x93\x01\x02\x03").is_err(), "neither entries nor an entry");
    }
}
