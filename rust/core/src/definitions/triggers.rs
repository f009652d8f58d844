//! Which programs an event may trigger, without evaluating every trigger filter.
//!
//! Many programs on one event type differ by an equality in their trigger filter
//! (a store's campaign: `store equals 'MI'`). Evaluating each filter was a tenth of
//! a journeys batch; here a program whose filter requires `attr == "text"` (alone
//! or inside an `all`) is found through that value, and only the candidates' full
//! filters are evaluated.

use rustc_hash::FxHashMap;

use super::condition::{Cond, Op, Subject};
use super::Program;
use crate::value::{map_get, Text, Value};

/// Programs of one event type by their trigger filter's equality, keeping the
/// priority order of `programs`.
#[derive(Debug, Clone, Default)]
pub struct TriggerIndex {
    /// Positions in the priority order of programs with no usable equality.
    unkeyed: Vec<usize>,
    /// Per attribute: value -> positions of programs requiring that value.
    keyed: Vec<(String, FxHashMap<String, Vec<usize>>)>,
}

/// The attribute and text a filter requires to be equal, if any: a leaf, or one
/// leaf of an `all`.
fn equality(c: &Cond) -> Option<(&str, &str)> {
    match c {
        Cond::Leaf(l) if matches!(l.subject, Subject::Attr) => match &l.op {
            Op::Equals(Value::Str(v)) => Some((l.name.as_str(), v.as_str())),
            _ => None,
        },
        Cond::All(items) => items.iter().find_map(equality),
        _ => None,
    }
}

impl TriggerIndex {
    /// Index `order` (program indexes, highest priority first).
    pub fn new(programs: &[Program], order: &[usize]) -> Self {
        let mut ix = TriggerIndex::default();
        for (pos, &pi) in order.iter().enumerate() {
            let Some((attr, value)) = programs[pi].filter.as_ref().and_then(equality) else {
                ix.unkeyed.push(pos);
                continue;
            };
            let at = match ix.keyed.iter().position(|(a, _)| a == attr) {
                Some(at) => at,
                None => {
                    ix.keyed.push((attr.to_owned(), FxHashMap::default()));
                    ix.keyed.len() - 1
                }
            };
            ix.keyed[at].1.entry(value.to_owned()).or_default().push(pos);
        }
        ix
    }

    /// Positions (in priority order) of the programs whose filter may hold for an
    /// event with `attrs`: every unkeyed one, and the keyed ones whose value the
    /// event carries. Equality on text holds only for that same text. One list is
    /// returned as it is; several are merged into `buf` (so the usual event, whose
    /// candidates are one list, allocates nothing).
    pub fn candidates<'a>(&'a self, attrs: &[(Text, Value)], buf: &'a mut Vec<usize>) -> &'a [usize] {
        let keyed = self
            .keyed
            .iter()
            .filter_map(|(attr, by_value)| map_get(attrs, attr).and_then(Value::as_str).and_then(|v| by_value.get(v)));
        let mut lists = std::iter::once(&self.unkeyed).filter(|u| !u.is_empty()).chain(keyed);
        let Some(first) = lists.next() else { return &[] };
        let Some(second) = lists.next() else { return first };
        buf.clear();
        buf.extend_from_slice(first);
        buf.extend_from_slice(second);
        lists.for_each(|l| buf.extend_from_slice(l));
        // Each list is in priority order; merged, they need sorting.
        buf.sort_unstable();
        buf
    }
}
