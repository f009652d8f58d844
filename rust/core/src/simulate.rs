//! Loyalty simulation (L, "beyond every product we know"): replay stored history
//! through a candidate catalog without touching real state.
//!
//! Each contact starts with no membership. Events before `from_ms` only rebuild
//! the profile and counted histories (what conditions read); from `from_ms` on,
//! each event goes through the loyalty programs as in `apply`, and the contact's
//! member timers (pending releases, expiries, birthdays, inactivity) fire in time
//! order between its events, then up to `until_ms`. Journeys do not run: a
//! simulation changes points, tiers and rewards only, and writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::definitions::Catalog;
use crate::event::Event;
use crate::journey::timer_event;
use crate::keys::parse_timer_key;
use crate::loyalty::{self, LoyaltyOut};
use crate::loyalty::book::Entries;
use crate::state::State;

/// One contact being replayed.
#[derive(Default)]
struct Replay {
    state: State,
    /// (wake ms, timer id) of its member timers.
    timers: BTreeSet<(i64, u64)>,
}

/// A replay in progress over one shard's history, fed in pages.
pub struct Simulation {
    cat: Arc<Catalog>,
    from_ms: i64,
    contacts: BTreeMap<String, Replay>,
    /// Events applied through loyalty (from `from_ms` on), and ledger rows written.
    pub events: u64,
    pub ledger_rows: u64,
    scratch: Entries,
}

/// What the replay ended with, for one contact and one loyalty program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberOutcome {
    pub contact: String,
    pub program: String,
    pub qualifying: i64,
    pub non_qualifying: i64,
    pub pending: [i64; 2],
    pub tier: String,
    pub vip: bool,
    pub rewards: usize,
}

impl Simulation {
    pub fn new(cat: Arc<Catalog>, from_ms: i64) -> Simulation {
        Simulation { cat, from_ms, contacts: BTreeMap::new(), events: 0, ledger_rows: 0, scratch: Entries::default() }
    }

    /// Replay stored events, in history order (`$timer` events are skipped: the
    /// simulation fires its own timers).
    pub fn feed(&mut self, events: impl IntoIterator<Item = Event>) {
        for ev in events {
            if ev.kind == crate::journey::TIMER_EVENT {
                continue;
            }
            let mut r = self.contacts.remove(&ev.contact).unwrap_or_default();
            self.fire_until(&mut r, &ev.contact, ev.ts);
            self.step(&mut r, &ev);
            self.contacts.insert(ev.contact.clone(), r);
        }
    }

    fn step(&mut self, r: &mut Replay, ev: &Event) {
        let cat = &*self.cat;
        if ev.kind == "$profile" {
            r.state.apply_profile(ev.attrs());
        }
        let idx = cat.by_event.get(&ev.kind);
        if let Some(idx) = idx.filter(|i| !i.facts.is_empty()) {
            crate::facts::record(cat, &idx.facts, ev, &mut r.state.facts, &r.state.profile);
        }
        if ev.ts < self.from_ms {
            return;
        }
        self.events += 1;
        let programs = idx.map_or(&[][..], |i| i.loyalty.as_slice());
        let mut timers = FxHashMap::default();
        loyalty::on_event(cat, programs, ev, &mut r.state, &mut LoyaltyOut { ledger: &mut self.scratch, timers: &mut timers });
        self.settle(r, timers);
    }

    /// Fire the contact's member timers due at or before `until`, in time order.
    fn fire_until(&mut self, r: &mut Replay, contact: &str, until: i64) {
        while let Some(&(at, id)) = r.timers.first().filter(|(at, _)| *at <= until) {
            r.timers.remove(&(at, id));
            if at < self.from_ms {
                continue;
            }
            let ev = timer_event(at, contact, id);
            let mut timers = FxHashMap::default();
            loyalty::on_timer(&self.cat, &ev, id, at, &mut r.state, &mut LoyaltyOut { ledger: &mut self.scratch, timers: &mut timers });
            self.settle(r, timers);
        }
    }

    /// Apply timer changes to the contact's set; count and drop the ledger rows.
    fn settle(&mut self, r: &mut Replay, timers: FxHashMap<Vec<u8>, bool>) {
        for (key, put) in timers {
            let Some((at, _, id)) = parse_timer_key(&key) else { continue };
            if put {
                r.timers.insert((at, id));
            } else {
                r.timers.remove(&(at, id));
            }
        }
        self.ledger_rows += self.scratch.len() as u64;
        self.scratch.clear();
    }

    /// Fire what is due up to `until_ms`, then each contact's memberships.
    pub fn finish(mut self, until_ms: i64) -> Vec<MemberOutcome> {
        let contacts = std::mem::take(&mut self.contacts);
        let mut out = Vec::new();
        for (contact, mut r) in contacts {
            self.fire_until(&mut r, &contact, until_ms);
            for (program, m) in r.state.loyalty.iter() {
                out.push(MemberOutcome {
                    contact: contact.clone(),
                    program: program.clone(),
                    qualifying: m.qualifying,
                    non_qualifying: m.non_qualifying,
                    pending: m.pending,
                    tier: m.tier.clone(),
                    vip: m.vip,
                    rewards: m.rewards.len(),
                });
            }
        }
        out
    }
}
