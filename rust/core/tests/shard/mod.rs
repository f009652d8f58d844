#![allow(dead_code)]
//! An in-memory shard (states, timers, history sequence) that drives `apply` as the
//! store does, so journeys and loyalty are checked in the core alone, without LMDB
//! or Python. Shared by the journeys and loyalty tests.

use std::collections::BTreeMap;

use cairn_core::definitions::compile_next;
use cairn_core::effect::named_effect_in;
use cairn_core::event::named_history_with;
use cairn_core::keys::parse_timer_key;
use cairn_core::state::State;
use cairn_core::value::{decode_exact, encode};
use cairn_core::{apply, split_frame, Batch, BatchResult, Catalog, Value};

pub const T0: i64 = 1_795_424_400_000; // 2026-11-23T09:00:00Z, a Monday
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

pub fn doc(json: &str) -> Vec<u8> {
    encode(&serde_json::from_str::<Value>(json).expect("test JSON"))
}

pub fn catalog(json: &str) -> Catalog {
    compile_next(&doc(json), 1, None).unwrap_or_else(|e| panic!("{e}"))
}

pub fn errors(json: &str) -> Vec<String> {
    match compile_next(&doc(json), 1, None) {
        Ok(_) => vec![],
        Err(e) => e.errors.into_iter().map(|(p, m)| format!("{p}: {m}")).collect(),
    }
}

/// What one shard holds between batches.
#[derive(Default)]
pub struct Shard {
    pub states: BTreeMap<Vec<u8>, Vec<u8>>,
    pub timers: BTreeMap<Vec<u8>, ()>,
    pub next_seq: u64,
    pub ids: u64,
    /// Every effect written: (channel, contact, node, text).
    pub sent: Vec<(String, String, String, String)>,
    /// Every outbox row written, in order, as stored: (key, value).
    pub outbox: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every history row written, in order, as stored.
    pub stored_history: Vec<Vec<u8>>,
    /// The same rows as readers see them (named maps, as rows were stored before
    /// they were compact; decision traces rendered as text with the catalog).
    pub history: Vec<Value>,
    /// Every ledger row written, in order.
    pub ledger: Vec<Value>,
}

impl Shard {
    pub fn apply(&mut self, cat: &Catalog, batch: Batch, now: i64) -> BatchResult {
        let keys = batch.state_keys();
        let states: Vec<(Vec<u8>, Vec<u8>)> = keys.iter().filter_map(|k| self.states.get(k).map(|v| (k.clone(), v.clone()))).collect();
        let r = apply(cat, &batch, &states, &[] as &[(Vec<u8>, Vec<u8>)], now, self.next_seq.max(1)).unwrap();
        self.next_seq = r.next_seq;
        for (k, v) in r.states.iter() {
            self.states.insert(k.to_vec(), v.to_vec());
        }
        for k in &r.timers {
            self.timers.insert(k.clone(), ());
        }
        for k in &r.timer_deletes {
            self.timers.remove(k);
        }
        for (k, v) in r.outbox.iter() {
            self.outbox.push((k.to_vec(), v.to_vec()));
            let e: Value = decode_exact(&named_effect_in(cat, v).unwrap()).unwrap();
            let text = e.get("message").and_then(|m| m.get("text")).and_then(Value::as_str).unwrap_or("").to_owned();
            let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            self.sent.push((field("channel"), field("contact"), field("node"), text));
        }
        for (k, v) in r.history.iter() {
            let seq = u64::from_be_bytes(k.try_into().unwrap());
            self.history.push(decode_exact(&named_history_with(v, seq, Some(cat)).unwrap()).unwrap());
            self.stored_history.push(v.to_vec());
        }
        for (_, v) in r.ledger.iter() {
            let entries: Vec<Value> = decode_exact(&cairn_core::loyalty::book::named_ledger(v).unwrap()).unwrap();
            self.ledger.extend(entries);
        }
        r
    }

    pub fn send(&mut self, cat: &Catalog, now: i64, contact: &str, kind: &str, attrs: serde_json::Value) -> BatchResult {
        self.ids += 1;
        let ev = serde_json::json!({"id": format!("e{}", self.ids), "contact": contact, "type": kind, "ts": now, "attrs": attrs});
        let frame = encode(&serde_json::from_value::<Value>(serde_json::json!({"op": "events", "events": [ev]})).unwrap());
        let split = split_frame(cat, &frame, 1, now).unwrap();
        assert!(split.rejected.is_empty(), "{:?}", split.rejected);
        let parts: Vec<Vec<u8>> = split.batches.into_iter().map(|b| b.1).collect();
        self.apply(cat, Batch::decode(&parts).unwrap(), now)
    }

    /// Fire every timer due at `now`, as the store's `fire_due` does.
    pub fn fire(&mut self, cat: &Catalog, now: i64) -> usize {
        let due: Vec<Vec<u8>> = self.timers.keys().filter(|k| parse_timer_key(k).unwrap().0 <= now).cloned().collect();
        if !due.is_empty() {
            self.apply(cat, Batch::timers(&due).unwrap(), now);
        }
        due.len()
    }

    pub fn state(&self, contact: &str) -> State {
        State::decode(contact, &self.states[contact.as_bytes()]).unwrap()
    }

    /// (node, outcome) steps of every run record of `program` in history order.
    pub fn steps(&self, program: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for row in &self.history {
            let Some(Value::Array(runs)) = row.get("runs") else { continue };
            for run in runs {
                let Value::Array(r) = run else { panic!() };
                if r[0].as_str() != Some(program) {
                    continue;
                }
                let Value::Array(steps) = &r[3] else { panic!() };
                for s in steps {
                    let Value::Array(s) = s else { panic!() };
                    out.push((s[0].as_str().unwrap().to_owned(), s[1].as_str().unwrap().to_owned()));
                }
            }
        }
        out
    }
}

