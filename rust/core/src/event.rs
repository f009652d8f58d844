//! The normalized event: the batch format between split_frame and apply, and the
//! history row format.

use serde::{Deserialize, Serialize};

use crate::state::RunRecord;
use crate::value::Value;

/// A validated event: type lowercased, ts filled, attrs a map.
/// Encoded as a msgpack map {"id","contact","type","ts","attrs","source"}.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub contact: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: i64,
    pub attrs: Value,
    #[serde(default)]
    pub source: Option<String>,
}

impl Event {
    /// The event a stored history row holds (None when the bytes are not one).
    pub fn from_history(raw: &[u8]) -> Option<Event> {
        crate::value::decode_owned_fast::<Event>(raw).ok()
    }

    /// The attributes as map entries (empty when attrs is not a map).
    pub fn attrs(&self) -> &[(String, Value)] {
        match &self.attrs {
            Value::Map(m) => m,
            _ => &[],
        }
    }
}

/// The history row of an accepted event: the normalized event, its sequence in the
/// contact's history, and the program runs it caused with their reasons (explain).
#[derive(Serialize)]
pub struct HistoryRow<'a> {
    pub id: &'a str,
    pub contact: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub ts: i64,
    pub attrs: &'a Value,
    pub source: &'a Option<String>,
    pub seq: u64,
    pub runs: &'a [RunRecord<'a>],
}

impl<'a> HistoryRow<'a> {
    pub fn new(ev: &'a Event, seq: u64, runs: &'a [RunRecord<'a>]) -> Self {
        HistoryRow { id: &ev.id, contact: &ev.contact, kind: &ev.kind, ts: ev.ts, attrs: &ev.attrs, source: &ev.source, seq, runs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{decode_exact, encode};

    #[test]
    fn named_map_round_trip() {
        let e = Event {
            id: "e1".into(),
            contact: "c1".into(),
            kind: "purchase".into(),
            ts: 5,
            attrs: Value::Map(vec![("amount".into(), Value::Int(3))]),
            source: None,
        };
        let bytes = encode(&e);
        let v: Value = decode_exact(&bytes).unwrap();
        assert_eq!(v.get("type"), Some(&Value::Str("purchase".into())));
        assert_eq!(v.get("source"), Some(&Value::Nil));
        let back: Event = decode_exact(&bytes).unwrap();
        assert_eq!(back, e);
    }
}
