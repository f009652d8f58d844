//! A shard's decoded contact states, held between batches.
//!
//! Decoding a contact's stored state was a quarter to a third of a batch apply
//! (its strings, maps and runs rebuilt on every event). A shard is the only writer
//! of its contacts' states, so once a state is decoded the copy in memory stays
//! what LMDB holds, as long as every batch that changed it commits: the caller
//! clears the held states when a write transaction does not commit, and after
//! anything that writes states outside `apply_held` (definitions that backfill
//! counted histories). Bounded by a number of contacts; LMDB stays the truth.
//!
//! A shard may also write states behind (docs/architecture.md, "State log"): a
//! batch's changed states are appended to a log rather than rewritten in place, and
//! copied into the state table at checkpoints. Until then the held copy is the only
//! decoded one that is current, so a state changed since the last checkpoint is
//! *dirty*: never evicted, and it keeps the bytes it was logged with, which readers
//! and the checkpoint take as they are (encoding every changed state again at each
//! checkpoint was a sixth of a shard's time there).

use rustc_hash::{FxHashMap, FxHashSet};

use crate::batch::Batch;
use crate::error::{ApplyError, StateError};
use crate::rows::Rows;
use crate::state::State;

/// Decoded states by contact: after a batch, at most `capacity` of them, or the
/// batch's own contacts when they are more.
#[derive(Debug, Default)]
pub struct HeldStates {
    map: FxHashMap<Box<str>, Held>,
    capacity: usize,
    /// How many held states changed since `mark_clean` (kept by `trim`).
    dirty: usize,
}

/// One held state and, when it changed since the last `mark_clean` (dirty), its
/// stored form as the batch that last changed it logged it.
#[derive(Debug)]
struct Held {
    state: State,
    logged: Option<Box<[u8]>>,
}

impl Held {
    fn clean(state: State) -> Self {
        Held { state, logged: None }
    }
}

impl HeldStates {
    /// Hold up to `capacity` contacts' states between batches (0: none; every
    /// batch decodes the states it reads).
    pub fn new(capacity: usize) -> Self {
        HeldStates { map: FxHashMap::default(), capacity, dirty: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forget every held state (the next batches read them from storage again).
    pub fn clear(&mut self) {
        self.map.clear();
        self.dirty = 0;
    }

    /// Note that `contact`'s held state changed and was logged as `stored` (its
    /// encoding as of now; it is kept until `mark_clean`).
    pub fn mark_dirty(&mut self, contact: &str, stored: &[u8]) {
        if let Some(held) = self.map.get_mut(contact) {
            if held.logged.is_none() {
                self.dirty += 1;
            }
            held.logged = Some(stored.into());
        }
    }

    /// Every change so far is in the state table: any held state may be evicted.
    pub fn mark_clean(&mut self) {
        if self.dirty > 0 {
            self.map.values_mut().for_each(|held| held.logged = None);
            self.dirty = 0;
        }
    }

    /// How many held states changed since `mark_clean`.
    pub fn dirty_len(&self) -> usize {
        self.dirty
    }

    /// The (contact, stored state) rows of every state changed since `mark_clean`,
    /// sorted by contact: what a checkpoint writes into the state table.
    pub fn dirty_rows(&self) -> Rows {
        let mut dirty: Vec<(&str, &[u8])> =
            self.map.iter().filter_map(|(c, held)| Some((c.as_ref(), held.logged.as_deref()?))).collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let bytes = dirty.iter().map(|(c, v)| c.len() + v.len()).sum();
        let mut rows = Rows::with_capacity(dirty.len(), bytes);
        for (contact, stored) in dirty {
            rows.push_raw(&[contact.as_bytes()], stored);
        }
        rows
    }

    /// The stored form of `contact`'s state if it changed since `mark_clean`.
    pub fn dirty_state(&self, contact: &str) -> Option<&[u8]> {
        self.map.get(contact)?.logged.as_deref()
    }

    pub fn get(&self, contact: &str) -> Option<&State> {
        self.map.get(contact).map(|held| &held.state)
    }

    pub fn get_mut(&mut self, contact: &str) -> Option<&mut State> {
        self.map.get_mut(contact).map(|held| &mut held.state)
    }

    /// Sorted unique contact ids (utf-8) of `batch` whose state is not held: the
    /// state keys to read from storage before `load`.
    pub fn missing(&self, batch: &Batch) -> Vec<Vec<u8>> {
        batch.state_keys_where(|c| !self.map.contains_key(c))
    }

    /// Decode the `stored` (contact, state) rows of the batch's contacts not held
    /// yet; a contact with no stored row starts from the default state. Rows of
    /// contacts already held are ignored: the held copy is at least as new.
    pub fn load<K, V>(&mut self, batch: &Batch, stored: &[(K, V)]) -> Result<(), ApplyError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.load_rows(stored)?;
        for ev in &batch.events {
            if !self.map.contains_key(ev.contact.as_str()) {
                self.map.insert(ev.contact.as_str().into(), Held::clean(State::default()));
            }
        }
        Ok(())
    }

    /// Decode the stored (contact, state) rows of contacts not held yet (warming
    /// the held states ahead of the batches that will read them).
    pub fn load_rows<K, V>(&mut self, stored: &[(K, V)]) -> Result<(), ApplyError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        for (k, v) in stored {
            let contact = std::str::from_utf8(k.as_ref()).map_err(|_| StateError {
                contact: String::from_utf8_lossy(k.as_ref()).into_owned(),
                message: "the contact key is not utf-8".to_owned(),
            })?;
            if !self.map.contains_key(contact) {
                let state = State::decode(contact, v.as_ref())?;
                self.map.insert(contact.into(), Held::clean(state));
            }
        }
        Ok(())
    }

    /// Drop states beyond the capacity, keeping those of `batch`'s contacts and the
    /// dirty ones. Evicts down to 7/8 of the capacity, so the walk over the map
    /// happens once every several batches rather than after each; which other
    /// states go is arbitrary (hash order): any of them can be read again from
    /// storage.
    pub fn trim(&mut self, batch: &Batch) {
        if self.map.len() <= self.capacity {
            return;
        }
        if self.capacity == 0 && self.dirty == 0 {
            self.map.clear();
            return;
        }
        let keep: FxHashSet<&str> = batch.events.iter().map(|e| e.contact.as_str()).collect();
        let mut excess = self.map.len() - (self.capacity - self.capacity / 8);
        self.map.retain(|contact, held| {
            if excess == 0 || held.logged.is_some() || keep.contains(contact.as_ref()) {
                return true;
            }
            excess -= 1;
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::value::Value;

    fn batch(contacts: &[&str]) -> Batch {
        let events: Vec<Event> = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| Event {
                id: format!("e{i}"),
                contact: (*c).to_owned(),
                kind: "view".into(),
                ts: 1,
                attrs: Value::Map(vec![]),
                source: None,
            })
            .collect();
        Batch::decode(&[crate::value::encode(&events)]).unwrap()
    }

    #[test]
    fn load_decodes_only_what_is_not_held() {
        let mut held = HeldStates::new(10);
        let b = batch(&["b", "a", "b"]);
        assert_eq!(held.missing(&b), vec![b"a".to_vec(), b"b".to_vec()]);
        let stored = State { events: 7, ..State::default() }.encode();
        held.load(&b, &[(b"a".to_vec(), stored.clone())]).unwrap();
        assert_eq!((held.get("a").unwrap().events, held.get("b").unwrap().events), (7, 0));
        assert!(held.missing(&b).is_empty());
        // A held state wins over a stored row passed again.
        held.get_mut("a").unwrap().events = 8;
        held.load(&b, &[(b"a".to_vec(), stored)]).unwrap();
        assert_eq!(held.get("a").unwrap().events, 8);
    }

    #[test]
    fn a_bad_stored_state_is_an_error_naming_the_contact() {
        let mut held = HeldStates::new(10);
        let err = held.load(&batch(&["x"]), &[(b"x".to_vec(), b"\xc1".to_vec())]).unwrap_err();
        assert!(err.to_string().contains('x'), "{err}");
        assert!(held.get("x").is_none());
    }

    #[test]
    fn trim_keeps_the_batch_and_evicts_below_capacity() {
        let mut held = HeldStates::new(8);
        let all: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        held.load(&batch(&names), &[] as &[(Vec<u8>, Vec<u8>)]).unwrap();
        let last = batch(&names[..3]);
        held.trim(&last);
        assert_eq!(held.len(), 7, "down to 7/8 of the capacity");
        assert!(names[..3].iter().all(|c| held.get(c).is_some()), "the batch's contacts stay");

        // Dirty states stay, whatever the capacity, until marked clean.
        let mut dirty = HeldStates::new(2);
        dirty.load(&batch(&names), &[] as &[(Vec<u8>, Vec<u8>)]).unwrap();
        dirty.mark_dirty("c10", b"first");
        dirty.mark_dirty("c10", b"logged");
        dirty.mark_dirty("c11", b"other");
        dirty.trim(&last);
        assert_eq!(dirty.len(), 5, "the batch's 3 and the 2 dirty");
        assert!(dirty.get("c10").is_some() && dirty.dirty_state("c11").is_some() && dirty.dirty_state("c0").is_none());
        let rows = dirty.dirty_rows().to_vec();
        assert_eq!(rows.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>(), [&b"c10"[..], b"c11"]);
        assert_eq!(rows[0].1, b"logged", "the bytes last logged, as they are");
        assert_eq!(dirty.dirty_state("c10"), Some(&b"logged"[..]));
        assert_eq!(dirty.dirty_len(), 2, "marked twice, counted once");
        dirty.mark_clean();
        dirty.trim(&batch(&names[..1]));
        assert_eq!((dirty.len(), dirty.dirty_len()), (2, 0), "back to the capacity");
        assert!(dirty.get("c0").is_some());

        let mut none = HeldStates::new(0);
        none.load(&last, &[] as &[(Vec<u8>, Vec<u8>)]).unwrap();
        none.trim(&last);
        assert!(none.is_empty());
    }
}
