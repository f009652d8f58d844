//! A contact's counted histories (see `definitions::facts`): per fact key, per value
//! of the `same` attribute ("" when none), the latest matching timestamps, ascending.

use std::collections::BTreeMap;

use crate::definitions::{Catalog, Ctx};
use crate::event::Event;
use crate::value::{map_get, Value};
use crate::vecmap::VecMap;

/// fact key -> value -> timestamps (ascending).
pub type Facts = VecMap<u64, VecMap<String, Vec<i64>>>;

/// Distinct values one fact keeps per contact; the stalest goes first.
pub const MAX_VALUES: usize = 256;

/// The history key of an attribute value: texts as they are, numbers and bools
/// written out; other kinds are not counted.
pub fn value_key(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::F64(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    })
}

/// How many timestamps of `fact` under `value` are at or after `since`.
pub fn count(facts: &Facts, fact: u64, value: &str, since: i64) -> usize {
    facts
        .get(&fact)
        .and_then(|m| m.get(value))
        .map_or(0, |ts| ts.len() - ts.partition_point(|t| *t < since))
}

/// Record `ev` in every fact counting its type; `profile` is the contact's.
pub fn record(cat: &Catalog, facts_idx: &[usize], ev: &Event, facts: &mut Facts, profile: &VecMap<String, Value>) {
    for &fi in facts_idx {
        let def = &cat.facts[fi];
        if let Some(f) = &def.filter {
            let ctx = Ctx { attrs: ev.attrs(), profile, ts: ev.ts, facts: &*facts };
            if !f.eval(&ctx, None) {
                continue;
            }
        }
        let value = match &def.same {
            None => String::new(),
            Some(a) => match map_get(ev.attrs(), a).and_then(value_key) {
                Some(k) => k,
                None => continue,
            },
        };
        let by_value = facts.entry_or_default(def.key);
        let ts = by_value.entry_or_default(value);
        let at = ts.partition_point(|t| *t <= ev.ts);
        ts.insert(at, ev.ts);
        if def.window_ms > 0 {
            let latest = *ts.last().expect("just inserted");
            let old = ts.partition_point(|t| *t < latest - def.window_ms);
            ts.drain(..old);
        }
        if ts.len() > def.keep {
            let extra = ts.len() - def.keep;
            ts.drain(..extra);
        }
        if by_value.len() > MAX_VALUES {
            let stalest = by_value.iter().min_by_key(|(_, t)| t.last().copied()).map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                by_value.remove(&k);
            }
        }
    }
}

/// Count stored history into facts a new catalog starts counting (`keys`), so a
/// segment or condition on "the last 30 days" sees the last 30 days at once.
///
/// `history`: stored history rows (`event::HistoryRow`, or named maps stored
/// before rows were compact), in sequence order; `states`: the stored states of their contacts (others are skipped).
/// Returns the changed states, encoded, sorted by contact.
pub fn backfill<H, K, V>(cat: &Catalog, keys: &[u64], history: &[H], states: &[(K, V)]) -> Result<crate::rows::Rows, crate::error::StateError>
where
    H: AsRef<[u8]>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let idx: Vec<usize> = cat.facts.iter().enumerate().filter(|(_, f)| keys.contains(&f.key)).map(|(i, _)| i).collect();
    let mut live: BTreeMap<&[u8], crate::state::State> = BTreeMap::new();
    for (k, v) in states {
        let contact = String::from_utf8_lossy(k.as_ref());
        live.insert(k.as_ref(), crate::state::State::decode(&contact, v.as_ref())?);
    }
    for raw in history {
        // History rows are the engine's own; one that does not read as an event
        // (none should) counts nothing rather than stopping the apply.
        let Some(ev) = Event::from_history(raw.as_ref()) else { continue };
        let mine: Vec<usize> = idx.iter().copied().filter(|&i| cat.facts[i].event == ev.kind).collect();
        if mine.is_empty() {
            continue;
        }
        if let Some(state) = live.get_mut(ev.contact.as_bytes()) {
            record(cat, &mine, &ev, &mut state.facts, &state.profile);
        }
    }
    let mut out = crate::rows::Rows::with_capacity(live.len(), live.len() * 256);
    for (k, state) in &live {
        out.push_with(&[k], |buf| state.write(buf));
    }
    Ok(out)
}

/// The contacts of stored history rows that count for facts `keys`, sorted, unique.
pub fn backfill_contacts<H: AsRef<[u8]>>(cat: &Catalog, keys: &[u64], history: &[H]) -> Vec<Vec<u8>> {
    let types: Vec<&str> = cat.facts.iter().filter(|f| keys.contains(&f.key)).map(|f| f.event.as_str()).collect();
    let mut out: Vec<Vec<u8>> = history
        .iter()
        .filter_map(|raw| Event::from_history(raw.as_ref()))
        .filter(|ev| types.contains(&ev.kind.as_str()))
        .map(|ev| ev.contact.into_bytes())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
