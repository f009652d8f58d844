//! Per-contact state: versioned msgpack named map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::value::{decode_exact, encode, Value};

/// Version of the state encoding.
pub const STATE_VERSION: u32 = 1;
/// How many run records a state keeps (newest last).
pub const MAX_RUNS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub node: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// "yes" | "no" | "sent" | "skipped" | "end"
    pub outcome: String,
    pub reason: String,
}

/// One program run: why the contact went where it went (explain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub program: String,
    pub version: u64,
    pub event_id: String,
    pub ts: i64,
    pub status: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub joined_ms: i64,
    pub qualifying: i64,
    pub non_qualifying: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub v: u32,
    #[serde(default)]
    pub profile: BTreeMap<String, Value>,
    /// Number of events applied.
    #[serde(default)]
    pub events: u64,
    /// Next history sequence number (starts at 1).
    #[serde(default = "one")]
    pub seq: u64,
    /// Next ledger sequence number (starts at 1).
    #[serde(default = "one")]
    pub ledger_seq: u64,
    /// Greatest event ts applied (0 when none).
    #[serde(default)]
    pub last_ts: i64,
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// Loyalty program name -> membership and balances.
    #[serde(default)]
    pub loyalty: BTreeMap<String, Membership>,
}

fn one() -> u64 {
    1
}

impl Default for State {
    fn default() -> Self {
        State {
            v: STATE_VERSION,
            profile: BTreeMap::new(),
            events: 0,
            seq: 1,
            ledger_seq: 1,
            last_ts: 0,
            runs: Vec::new(),
            loyalty: BTreeMap::new(),
        }
    }
}

impl State {
    pub fn decode(contact: &str, bytes: &[u8]) -> Result<State, StateError> {
        let err = |message: String| StateError { contact: contact.to_owned(), message };
        let s: State = decode_exact(bytes).map_err(|e| err(format!("cannot decode: {e}")))?;
        if s.v != STATE_VERSION {
            return Err(err(format!("unsupported state version {} (this build reads {STATE_VERSION})", s.v)));
        }
        Ok(s)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Keep the last `MAX_RUNS` run records.
    pub fn push_run(&mut self, run: RunRecord) {
        if self.runs.len() >= MAX_RUNS {
            let extra = self.runs.len() + 1 - MAX_RUNS;
            self.runs.drain(..extra);
        }
        self.runs.push(run);
    }

    /// Apply a `$profile` event's attrs: {set: map, unset: [str]}.
    pub fn apply_profile(&mut self, attrs: &[(String, Value)]) {
        for (k, v) in attrs {
            match (k.as_str(), v) {
                ("set", Value::Map(fields)) => {
                    for (f, fv) in fields {
                        if matches!(fv, Value::Nil) {
                            self.profile.remove(f);
                        } else {
                            self.profile.insert(f.clone(), fv.clone());
                        }
                    }
                }
                ("unset", Value::Array(names)) => {
                    for n in names {
                        if let Value::Str(n) = n {
                            self.profile.remove(n);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = State::default();
        s.profile.insert("email".into(), Value::Str("a@b.c".into()));
        s.events = 3;
        s.loyalty.insert("club".into(), Membership { joined_ms: 1, qualifying: 2, non_qualifying: 3 });
        s.push_run(RunRecord {
            program: "p".into(),
            version: 1,
            event_id: "e".into(),
            ts: 9,
            status: "done".into(),
            steps: vec![Step { node: "n".into(), kind: "end".into(), outcome: "end".into(), reason: String::new() }],
        });
        let bytes = s.encode();
        assert_eq!(State::decode("c", &bytes).unwrap(), s);
        let v: Value = decode_exact(&bytes).unwrap();
        assert_eq!(v.get("v"), Some(&Value::Int(1)));
        assert!(v.get("runs").is_some() && v.get("ledger_seq").is_some());
    }

    #[test]
    fn bad_state_is_an_error() {
        assert!(State::decode("c", b"\xc1").is_err());
        let mut s = State::default();
        s.v = 99;
        assert!(State::decode("c", &s.encode()).unwrap_err().message.contains("version 99"));
    }

    #[test]
    fn runs_are_capped() {
        let mut s = State::default();
        for i in 0..25 {
            s.push_run(RunRecord {
                program: "p".into(),
                version: 1,
                event_id: i.to_string(),
                ts: i,
                status: "done".into(),
                steps: vec![],
            });
        }
        assert_eq!(s.runs.len(), MAX_RUNS);
        assert_eq!(s.runs[0].event_id, "5");
    }

    #[test]
    fn profile_set_unset() {
        let mut s = State::default();
        s.apply_profile(&[(
            "set".into(),
            Value::Map(vec![("a".into(), Value::Int(1)), ("b".into(), Value::Int(2))]),
        )]);
        s.apply_profile(&[("unset".into(), Value::Array(vec![Value::Str("a".into())]))]);
        assert_eq!(s.profile.len(), 1);
        assert_eq!(s.profile.get("b"), Some(&Value::Int(2)));
    }
}
