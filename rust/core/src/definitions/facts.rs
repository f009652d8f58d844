//! Facts: the event histories that conditions count ("viewed this product more than
//! once in 7 days", "had a store visit in the last 30 days").
//!
//! The core never reads the history table: for each distinct (event type, filter,
//! `same` attribute) the definitions count, a contact's state keeps the latest
//! timestamps of matching events, as many as the largest count any condition needs
//! plus one, and only within the largest window. That is exact: a count compared
//! with N only needs to know whether there are at least N+1.

use std::cell::RefCell;

use super::condition::Cond;

/// One counted history, shared by every condition that counts the same thing.
#[derive(Debug, Clone)]
pub struct FactDef {
    /// Stable across definitions versions (a hash of the type, `same` and the
    /// filter as written), so states keep counting when unrelated definitions change.
    pub key: u64,
    pub event: String,
    pub filter: Option<Cond>,
    /// Attribute whose value splits the history (e.g. product_id).
    pub same: Option<String>,
    /// Latest timestamps kept per value.
    pub keep: usize,
    /// Older timestamps are dropped; 0 = kept whatever their age.
    pub window_ms: i64,
}

/// Facts registered while compiling (conditions are compiled through `&Scope`).
#[derive(Debug, Default)]
pub struct FactTable(pub RefCell<Vec<FactDef>>);

impl FactTable {
    /// Register a counted history; returns its key.
    pub fn register(&self, def: FactDef) -> u64 {
        let mut facts = self.0.borrow_mut();
        if let Some(f) = facts.iter_mut().find(|f| f.key == def.key) {
            f.keep = f.keep.max(def.keep);
            f.window_ms = if f.window_ms == 0 || def.window_ms == 0 { 0 } else { f.window_ms.max(def.window_ms) };
            return f.key;
        }
        let key = def.key;
        facts.push(def);
        key
    }

    pub fn into_vec(self) -> Vec<FactDef> {
        self.0.into_inner()
    }
}

/// Most timestamps one fact may keep per value (a count compared with at most 999).
pub const MAX_KEEP: usize = 1000;
