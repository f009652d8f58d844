//! The normalized event: the batch format between split_frame and apply, and the
//! history row format.

use serde::{Deserialize, Serialize};

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
    /// The attributes as map entries (empty when attrs is not a map).
    pub fn attrs(&self) -> &[(String, Value)] {
        match &self.attrs {
            Value::Map(m) => m,
            _ => &[],
        }
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
