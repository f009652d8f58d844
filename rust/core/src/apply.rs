//! Batch apply: events + states in, new states and rows out. Deterministic.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::batch::Batch;
use crate::definitions::Catalog;
use crate::error::ApplyError;
use crate::event::HistoryRow;
use crate::keys::seen_key;
use crate::rows::{EventRows, Rows};
use crate::state::State;
use crate::{loyalty, program};

/// Everything one batch produces, ready for one LMDB write transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// (contact, state) of every contact with at least one accepted event, sorted.
    pub states: Rows,
    /// (contact \0 id, history seq as 8 bytes BE): dedup, and each contact's index
    /// into the history.
    pub seen: Rows,
    /// (history seq as 8 bytes BE, history row: the normalized event, its seq and its
    /// runs). Sequences are per shard and only grow, so history is written append-only.
    pub history: Rows,
    /// The shard's next history sequence after this batch.
    pub next_seq: u64,
    /// (history seq of the causing event as 8 bytes BE + row index as 4 bytes BE,
    /// ledger row): append-only; a member's rows are found through its history.
    pub ledger: Rows,
    /// (history seq of the causing event as 8 bytes BE + effect index as 4 bytes BE,
    /// effect): append-only, drained in creation order.
    pub outbox: Rows,
    /// (accepted, duplicates) per input part.
    pub parts: Vec<(usize, usize)>,
    pub accepted: usize,
    pub duplicates: usize,
    pub effects: usize,
}

/// Apply `batch` given the stored `states`, the `seen` keys found and the shard's
/// next history sequence `next_seq`.
pub fn apply<K, V, SK, SV>(
    cat: &Catalog,
    batch: &Batch,
    states: &[(K, V)],
    seen: &[(SK, SV)],
    now_ms: i64,
    next_seq: u64,
) -> Result<BatchResult, ApplyError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    SK: AsRef<[u8]>,
{
    // Fx hashing: keys are our own (no untrusted hash flooding across batches) and
    // SipHash was a visible share of the per-event cost.
    let stored: FxHashMap<&[u8], &[u8]> = states.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    let found: FxHashSet<&[u8]> = seen.iter().map(|(k, _)| k.as_ref()).collect();
    let mut live: FxHashMap<&str, State> = FxHashMap::default();
    let mut in_batch: FxHashSet<(&str, &str)> = FxHashSet::default();
    in_batch.reserve(batch.len());
    let mut out = BatchResult { next_seq: next_seq.max(1), ..BatchResult::default() };
    out.history = Rows::with_capacity(batch.len(), batch.len() * 160);
    out.seen = Rows::with_capacity(batch.len(), batch.len() * 40);
    // Room for a typical batch's effects and ledger rows up front: growing these
    // buffers by doubling copied every byte about twice.
    out.outbox = Rows::with_capacity(batch.len(), batch.len() * 384);
    out.ledger = Rows::with_capacity(batch.len(), batch.len() * 192);
    let mut part = (0usize, 0usize);
    let mut part_idx = 0;
    let mut runs = Vec::new();

    for (i, ev) in batch.events.iter().enumerate() {
        while part_idx < batch.part_ends.len() && i >= batch.part_ends[part_idx] {
            out.parts.push(part);
            part = (0, 0);
            part_idx += 1;
        }
        let key = seen_key(&ev.contact, &ev.id);
        if found.contains(key.as_slice()) || !in_batch.insert((&ev.contact, &ev.id)) {
            part.1 += 1;
            out.duplicates += 1;
            continue;
        }
        part.0 += 1;
        out.accepted += 1;
        let state = match live.get_mut(ev.contact.as_str()) {
            Some(s) => s,
            None => {
                let s = match stored.get(ev.contact.as_bytes()) {
                    Some(bytes) => State::decode(&ev.contact, bytes)?,
                    None => State::default(),
                };
                live.entry(ev.contact.as_str()).or_insert(s)
            }
        };
        match ev.kind.as_str() {
            "$profile" => state.apply_profile(ev.attrs()),
            "loyalty_subscribe" => loyalty::subscribe(cat, ev, state),
            _ => {}
        }
        let seq = out.next_seq;
        out.next_seq += 1;
        runs.clear();
        if let Some(idx) = cat.by_event.get(&ev.kind) {
            let before = out.outbox.len();
            for &pi in &idx.programs {
                let p = &cat.programs[pi];
                if program::triggers(p, ev, state) {
                    let mut at = EventRows { rows: &mut out.outbox, seq, first: before };
                    runs.push(program::run(cat, p, ev, state, now_ms, &mut at));
                }
            }
            out.effects += out.outbox.len() - before;
            let first = out.ledger.len();
            loyalty::apply_rules(cat, &idx.rules, ev, state, &mut EventRows { rows: &mut out.ledger, seq, first });
        }
        state.events += 1;
        state.last_ts = state.last_ts.max(ev.ts);
        let seq_be = seq.to_be_bytes();
        out.history.push(&[&seq_be], &HistoryRow::new(ev, seq, &runs));
        out.seen.push_raw(&[&key], &seq_be);
    }
    while part_idx < batch.part_ends.len() {
        out.parts.push(part);
        part = (0, 0);
        part_idx += 1;
    }
    let mut states: Vec<(&str, State)> = live.into_iter().collect();
    states.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.states = Rows::with_capacity(states.len(), states.len() * 256);
    for (contact, state) in &states {
        out.states.push(&[contact.as_bytes()], state);
    }
    Ok(out)
}
