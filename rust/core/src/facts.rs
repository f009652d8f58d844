//! A contact's counted histories (see `definitions::facts`): per fact key, per value
//! of the `same` attribute ("" when none), the latest matching timestamps, ascending.

use std::collections::BTreeMap;

use crate::definitions::{Catalog, Ctx};
use crate::event::Event;
use crate::value::{map_get, Value};

/// fact key -> value -> timestamps (ascending).
pub type Facts = BTreeMap<u64, BTreeMap<String, Vec<i64>>>;

/// Distinct values one fact keeps per contact; the stalest goes first.
pub const MAX_VALUES: usize = 256;

/// The history key of an attribute value: texts as they are, numbers and bools
/// written out; other kinds are not counted.
pub fn value_key(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) => s.clone(),
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
pub fn record(cat: &Catalog, facts_idx: &[usize], ev: &Event, facts: &mut Facts, profile: &BTreeMap<String, Value>) {
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
        let by_value = facts.entry(def.key).or_default();
        let ts = by_value.entry(value).or_default();
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
