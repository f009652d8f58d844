//! Batch apply: events + states in, new states and rows out. Deterministic.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::batch::Batch;
use crate::definitions::{AttrType, Catalog};
use crate::error::ApplyError;
use crate::event::{Event, HistoryRow};
use crate::journey::{self, Cause, Out, TIMER_EVENT};
use crate::keys::seen_key;
use crate::rows::{EventRows, Rows};
use crate::held::HeldStates;
use crate::state::{RunRecord, State};
use crate::loyalty::book::Entries;
use crate::loyalty::{self, LoyaltyOut, LOYALTY_TIMER};
use crate::facts;

/// Everything one batch produces, ready for one LMDB write transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// (contact, state) of every contact with at least one accepted event, sorted.
    pub states: Rows,
    /// (contact \0 id, history seq as 8 bytes BE) of ids that no longer fit in their
    /// contact's `recent` list: dedup and history index for older events.
    pub seen: Rows,
    /// (history seq as 8 bytes BE, history row: the normalized event and its runs,
    /// compact, `event::HistoryRow`). Sequences are per shard and only grow, so
    /// history is written append-only.
    pub history: Rows,
    /// The shard's next history sequence after this batch.
    pub next_seq: u64,
    /// (history seq of the causing event as 8 bytes BE + row index as 4 bytes BE,
    /// ledger row): append-only; a member's rows are found through its history.
    pub ledger: Rows,
    /// (history seq of the causing event as 8 bytes BE + effect index as 4 bytes BE,
    /// effect, compact, `effect::Effect`): append-only, drained in creation order.
    pub outbox: Rows,
    /// Timer keys (`keys::timer_key`) to write, sorted; values are empty.
    pub timers: Vec<Vec<u8>>,
    /// Timer keys to delete (fired, or their run left the wait), sorted.
    pub timer_deletes: Vec<Vec<u8>>,
    /// (event type \0 attribute \0 inferred type) of every attribute the batch's
    /// accepted events carried, and (event type \0 \0) of every type: the attribute
    /// catalog (J-6), sorted and unique.
    pub attributes: Vec<Vec<u8>>,
    /// (accepted, duplicates) per input part.
    pub parts: Vec<(usize, usize)>,
    pub accepted: usize,
    pub duplicates: usize,
    pub effects: usize,
}

/// The `seen` keys to look up before applying: only events of contacts whose older
/// ids spilled to the `seen` table, and whose id is not among the recent ones.
/// Sorted and unique. The batch's states must be loaded in `held`.
pub fn seen_lookups(batch: &Batch, held: &HeldStates) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = batch
        .events
        .iter()
        .filter(|ev| held.get(&ev.contact).is_some_and(|s| s.spilled > 0 && !s.is_recent(&ev.id)))
        .map(|ev| seen_key(&ev.contact, &ev.id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Apply `batch` given the stored `states`, the `seen` rows found (at least those
/// for `seen_lookups`) and the shard's next history sequence `next_seq`.
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
    let mut held = HeldStates::new(0);
    held.load(batch, states)?;
    Ok(apply_held(cat, batch, &mut held, seen, now_ms, next_seq))
}

/// Apply one accepted producer event to its contact: profile, then the histories it
/// counts in (before anything decides on it), then loyalty (so messages show the
/// points it earned), then the contact's waiting runs, then the programs it
/// triggers (by priority).
#[allow(clippy::too_many_arguments)]
fn apply_event<'c>(
    cat: &'c Catalog,
    ev: &Event,
    seq: u64,
    state: &mut State,
    cause: &Cause<'_>,
    out: &mut Out<'_>,
    ledger: &mut Entries,
    runs: &mut Vec<RunRecord<'c>>,
) {
    if ev.kind == "$profile" {
        state.apply_profile(ev.attrs());
    }
    let idx = cat.by_event.get(&ev.kind);
    if let Some(idx) = idx.filter(|i| !i.facts.is_empty()) {
        facts::record(cat, &idx.facts, ev, &mut state.facts, &state.profile);
    }
    // Loyalty before journeys: a message about this event shows the points it earned.
    let programs = idx.map_or(&[][..], |i| i.loyalty.as_slice());
    loyalty::on_event(cat, programs, ev, state, &mut LoyaltyOut { ledger, timers: out.timers });
    if !state.runs.is_empty() {
        journey::on_event(cat, ev, state, cause, out, runs);
    }
    if let Some(idx) = idx {
        let mut merged = Vec::new();
        for pi in idx.triggers.candidates(ev.attrs(), &mut merged).iter().map(|&pos| idx.programs[pos]) {
            let p = &cat.programs[pi];
            if journey::triggers(p, ev, state) {
                runs.push(journey::enter(p, ev, seq, state, cause, out));
            }
        }
    }
    state.events += 1;
    state.last_ts = state.last_ts.max(ev.ts);
}

/// A batch's part of the attribute catalog (J-6): (type, attribute, inferred type)
/// of what its events carry, and (type, "", None) for each type.
#[derive(Default)]
struct AttributeCatalog<'b> {
    seen: FxHashSet<(&'b str, &'b str, Option<AttrType>)>,
    /// Per type, the attributes (and inferred types) of its latest event noted:
    /// most events of a type carry the same ones, and are then skipped without
    /// hashing each attribute.
    last: FxHashMap<&'b str, Vec<(&'b str, Option<AttrType>)>>,
}

impl<'b> AttributeCatalog<'b> {
    fn note(&mut self, ev: &'b Event) {
        if ev.kind == "$profile" {
            return;
        }
        let attrs = ev.attrs();
        let shape = self.last.entry(&ev.kind).or_default();
        let same = shape.len() == attrs.len()
            && shape.iter().zip(attrs).all(|((k, t), (key, v))| *k == key.as_str() && *t == AttrType::infer(v));
        if same {
            return;
        }
        shape.clear();
        shape.extend(attrs.iter().map(|(k, v)| (k.as_str(), AttrType::infer(v))));
        self.seen.insert((&ev.kind, "", None));
        for &(k, t) in shape.iter() {
            if t.is_some() {
                self.seen.insert((&ev.kind, k, t));
            }
        }
    }
}

/// `apply` with the states of the batch's contacts held decoded (`HeldStates::load`):
/// they are updated in place, and trimmed to the held capacity afterwards.
pub fn apply_held<SK, SV>(
    cat: &Catalog,
    batch: &Batch,
    held: &mut HeldStates,
    seen: &[(SK, SV)],
    now_ms: i64,
    next_seq: u64,
) -> BatchResult
where
    SK: AsRef<[u8]>,
{
    let found: FxHashSet<&[u8]> = seen.iter().map(|(k, _)| k.as_ref()).collect();
    // Seen keys spilled by this batch: not in `found`, not in `recent` any more.
    let mut spilled_now: FxHashSet<Vec<u8>> = FxHashSet::default();
    let mut out = BatchResult { next_seq: next_seq.max(1), ..BatchResult::default() };
    // Room for a typical batch's rows up front (growing by doubling copies every
    // byte about twice), but not much more: fresh pages cost their zeroing.
    out.history = Rows::with_capacity(batch.len(), batch.len() * 384);
    out.outbox = Rows::with_capacity(batch.len() / 2, batch.len() * 192);
    out.ledger = Rows::with_capacity(batch.len() / 2, batch.len() * 192);
    let mut part = (0usize, 0usize);
    let mut part_idx = 0;
    let mut runs = Vec::new();
    let mut entries = Entries::default();
    let mut timers = FxHashMap::default();
    let mut attributes = AttributeCatalog::default();
    // Contacts with an accepted event: only their states are written back.
    let mut touched: FxHashSet<&str> = FxHashSet::default();

    for (i, ev) in batch.events.iter().enumerate() {
        while part_idx < batch.part_ends.len() && i >= batch.part_ends[part_idx] {
            out.parts.push(part);
            part = (0, 0);
            part_idx += 1;
        }
        let state = held.get_mut(&ev.contact).expect("HeldStates::load covers every contact");
        let duplicate = state.is_recent(&ev.id) || (state.spilled > 0 && {
            let key = seen_key(&ev.contact, &ev.id);
            found.contains(key.as_slice()) || spilled_now.contains(&key)
        });
        if duplicate {
            part.1 += 1;
            out.duplicates += 1;
            if ev.kind == TIMER_EVENT {
                // Its row went with the step it ran; should it come back, it goes.
                journey::drop_timer(ev, &mut timers);
            }
            continue;
        }
        part.0 += 1;
        out.accepted += 1;
        touched.insert(&ev.contact);
        let seq = out.next_seq;
        out.next_seq += 1;
        runs.clear();
        let before = out.outbox.len();
        let cause = Cause {
            contact: &ev.contact,
            id: &ev.id,
            now_ms,
            limits: &cat.arbitration,
            raw_attrs: batch.raw_attrs(i),
            text_reasons: cat.text_reasons,
        };
        let mut o = Out { outbox: EventRows { rows: &mut out.outbox, seq, first: before }, timers: &mut timers };
        if ev.kind == TIMER_EVENT {
            let (run, at) = journey::timer_of(ev);
            if run & LOYALTY_TIMER != 0 {
                journey::drop_timer(ev, o.timers);
                let mut lo = LoyaltyOut { ledger: &mut entries, timers: o.timers };
                loyalty::on_timer(cat, ev, run, at, state, &mut lo);
            } else {
                journey::on_timer(cat, ev, state, &cause, &mut o, &mut runs);
            }
        } else {
            attributes.note(ev);
            apply_event(cat, ev, seq, state, &cause, &mut o, &mut entries, &mut runs);
        }
        entries.flush(&mut out.ledger, seq);
        out.effects += out.outbox.len() - before;
        out.history.push_with(&[&seq.to_be_bytes()], |buf| HistoryRow::new(ev, &runs).write(buf, batch.raw_attrs(i)));
        // Timer events too: the recent ids (then `seen`) are the contact's index into
        // its history rows, which explain reads.
        if let Some((old_id, old_seq)) = state.remember(&ev.id, seq) {
            let key = seen_key(&ev.contact, &old_id);
            out.seen.push_raw(&[&key], &old_seq.to_be_bytes());
            spilled_now.insert(key);
        }
    }
    while part_idx < batch.part_ends.len() {
        out.parts.push(part);
        part = (0, 0);
        part_idx += 1;
    }
    let (mut puts, mut deletes): (Vec<_>, Vec<_>) = timers.into_iter().partition(|(_, put)| *put);
    puts.sort_unstable();
    deletes.sort_unstable();
    out.timers = puts.into_iter().map(|(k, _)| k).collect();
    out.timer_deletes = deletes.into_iter().map(|(k, _)| k).collect();
    out.attributes = attributes
        .seen
        .into_iter()
        .map(|(e, a, t)| [e.as_bytes(), b"\0", a.as_bytes(), b"\0", t.map_or("", AttrType::name).as_bytes()].concat())
        .collect();
    out.attributes.sort_unstable();
    let mut contacts: Vec<&str> = touched.into_iter().collect();
    // Held states a batch changed are marked for the shard's state log (a capacity
    // of 0 holds nothing past the batch). States written in place go in key order
    // (LMDB's B-tree pages are then touched in order); a log entry takes them in
    // any order, and the checkpoint sorts what it writes.
    let mark = held.capacity() > 0;
    if !mark {
        contacts.sort_unstable();
    }
    out.states = Rows::with_capacity(contacts.len(), contacts.len() * 256);
    for contact in contacts {
        let state = held.get(contact).expect("a touched contact is held");
        out.states.push_with(&[contact.as_bytes()], |buf| state.write(buf));
        if mark {
            held.mark_dirty(contact, out.states.get(out.states.len() - 1).1);
        }
    }
    held.trim(batch);
    out
}
