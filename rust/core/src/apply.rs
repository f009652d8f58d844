//! Batch apply: events + states in, new states and rows out. Deterministic.

use std::collections::{HashMap, HashSet};

use crate::batch::Batch;
use crate::definitions::Catalog;
use crate::error::ApplyError;
use crate::keys::{seen_key, seq_key};
use crate::state::State;
use crate::value::encode;
use crate::{loyalty, program};

pub type Row = (Vec<u8>, Vec<u8>);

/// Everything one batch produces, ready for one LMDB write transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// (contact, state) of every contact with at least one accepted event, sorted.
    pub states: Vec<Row>,
    /// (contact \0 id, history seq as 8 bytes BE).
    pub seen: Vec<Row>,
    /// (contact \0 seq, normalized event).
    pub history: Vec<Row>,
    /// (contact \0 ledger seq, ledger row).
    pub ledger: Vec<Row>,
    /// (now_ms BE + effect hash BE, effect).
    pub outbox: Vec<Row>,
    /// (accepted, duplicates) per input part.
    pub parts: Vec<(usize, usize)>,
    pub accepted: usize,
    pub duplicates: usize,
    pub effects: usize,
}

/// Apply `batch` given the stored `states` and the `seen` keys found.
pub fn apply<K, V, SK, SV>(
    cat: &Catalog,
    batch: &Batch,
    states: &[(K, V)],
    seen: &[(SK, SV)],
    now_ms: i64,
) -> Result<BatchResult, ApplyError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    SK: AsRef<[u8]>,
{
    let stored: HashMap<&[u8], &[u8]> = states.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    let found: HashSet<&[u8]> = seen.iter().map(|(k, _)| k.as_ref()).collect();
    let mut live: HashMap<&str, State> = HashMap::new();
    let mut in_batch: HashSet<(&str, &str)> = HashSet::with_capacity(batch.len());
    let mut out = BatchResult::default();
    let mut part = (0usize, 0usize);
    let mut part_idx = 0;

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
        if let Some(idx) = cat.by_event.get(&ev.kind) {
            let before = out.outbox.len();
            for &pi in &idx.programs {
                let p = &cat.programs[pi];
                if program::triggers(p, ev, state) {
                    let run = program::run(cat, p, ev, state, now_ms, &mut out.outbox);
                    state.push_run(run);
                }
            }
            out.effects += out.outbox.len() - before;
            loyalty::apply_rules(cat, &idx.rules, ev, state, &mut out.ledger);
        }
        let seq = state.seq;
        state.seq += 1;
        state.events += 1;
        state.last_ts = state.last_ts.max(ev.ts);
        out.history.push((seq_key(&ev.contact, seq), encode(ev)));
        out.seen.push((key, seq.to_be_bytes().to_vec()));
    }
    while part_idx < batch.part_ends.len() {
        out.parts.push(part);
        part = (0, 0);
        part_idx += 1;
    }
    let mut states: Vec<(&str, State)> = live.into_iter().collect();
    states.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.states = states.into_iter().map(|(c, s)| (c.as_bytes().to_vec(), s.encode())).collect();
    Ok(out)
}
