//! Per-contact state: versioned msgpack, structs as arrays of their fields.

use serde::ser::SerializeTupleStruct;
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::facts::Facts;
use crate::loyalty::member::Member;
use crate::msgpack_read::Reader;
use crate::state_reader::Unpack;
use crate::state_writer::Pack;
use crate::value::{decode_owned_fast, encode_compact, Text, Value};
use crate::vecmap::VecMap;

/// Version of the state encoding.
pub const STATE_VERSION: u32 = 1;
/// How many of a contact's latest event ids its state keeps for dedup; older ids
/// spill to the shard's `seen` table.
pub const RECENT_IDS: usize = 16;

/// One step of a program run and why it went that way.
/// Encoded as the array `[node, outcome, reason]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<'a> {
    pub node: &'a str,
    /// What happened at the node: "yes", "no", "branch", "else", "wait", "passed",
    /// "woke", "waiting", "occurred", "not_occurred", "control", "sent", "skipped",
    /// "deferred", "retry", "dropped", "updated", "end", "goal", "not_entered"
    /// (docs/definitions.md).
    pub outcome: &'static str,
    pub reason: Reason,
}

/// Why a step went where it went, as stored in its history row.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Readable text (a msgpack str).
    Text(String),
    /// The trace of a decision or splitter, rendered as text when read
    /// (`crate::trace`): the msgpack bytes of the array `[mode, observed values...]`.
    Trace(Vec<u8>),
}

impl From<String> for Reason {
    fn from(s: String) -> Reason {
        Reason::Text(s)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Reason {
        Reason::Text(s.to_owned())
    }
}

/// What one event did to one program run: why the contact went where it went
/// (explain). Stored in the history row of the event that caused it, so the state
/// stays small; a run that waits continues in the rows of later events, under the
/// same run id. Encoded as the array `[program, version, run, [step, ...]]`: one of
/// these per run per event, so keys would double its size.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord<'a> {
    pub program: &'a str,
    pub version: u64,
    /// The contact's run id (0: the contact did not enter).
    pub run: u64,
    pub steps: Vec<Step<'a>>,
}

/// The event that started a run, kept while the run waits: later decisions and
/// messages still read the trigger's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: i64,
    pub seq: u64,
    pub attrs: Value,
    #[serde(default)]
    pub source: Option<String>,
}

/// A contact inside a program, stopped at a Wait or Wait-and-check node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: u64,
    pub program: String,
    /// The program version the contact entered with; kept until it leaves.
    pub version: u64,
    /// Id of the node the run waits at.
    pub node: String,
    pub entered_ms: i64,
    /// When its timer fires.
    pub wake_ms: i64,
    pub trigger: Trigger,
}

/// What entry rules and conversion counts need to remember of a program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    pub entries: u64,
    pub last_entry_ms: i64,
    pub conversions: u64,
}

// Tuple structs: arrays in either msgpack form, the same bytes as tuples. Not
// tuples: rmp_serde's tuple serializer carries byte-array detection (an Option
// checked per element) and, in the compact serializer, was not inlined: 11 M
// instructions of the journeys batch at a dozen steps per event.
impl Serialize for Step<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple_struct("Step", 3)?;
        t.serialize_field(self.node)?;
        t.serialize_field(self.outcome)?;
        match &self.reason {
            Reason::Text(text) => t.serialize_field(text)?,
            // Not the hot path (`RunRecord::write` copies the bytes): read them back.
            Reason::Trace(bytes) => t.serialize_field(&crate::value::decode_exact::<Value>(bytes).map_err(serde::ser::Error::custom)?)?,
        }
        t.end()
    }
}

impl RunRecord<'_> {
    /// Append the record's bytes, the same as its `Serialize` (a history row holds
    /// a dozen of these strings per event: serde spent ~100 instructions on each).
    pub fn write(&self, out: &mut Vec<u8>) {
        use crate::msgpack::{write_array_len, write_str, write_uint};
        write_array_len(out, 4);
        write_str(out, self.program);
        write_uint(out, self.version);
        write_uint(out, self.run);
        write_array_len(out, self.steps.len());
        for step in &self.steps {
            write_array_len(out, 3);
            write_str(out, step.node);
            write_str(out, step.outcome);
            match &step.reason {
                Reason::Text(text) => write_str(out, text),
                Reason::Trace(bytes) => out.extend_from_slice(bytes),
            }
        }
    }
}

impl Serialize for RunRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple_struct("RunRecord", 4)?;
        t.serialize_field(self.program)?;
        t.serialize_field(&self.version)?;
        t.serialize_field(&self.run)?;
        t.serialize_field(&self.steps)?;
        t.end()
    }
}


/// Stored compactly (msgpack, structs as arrays of fields in this order: new fields
/// go at the end, with a default); `decode` also reads the named-map form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub v: u32,
    #[serde(default)]
    pub profile: VecMap<String, Value>,
    /// Number of events applied.
    #[serde(default)]
    pub events: u64,
    /// Unused since ledger rows are keyed by history sequence; kept so stored
    /// states (positional) still decode.
    #[serde(default = "one")]
    pub ledger_seq: u64,
    /// Greatest event ts applied (0 when none).
    #[serde(default)]
    pub last_ts: i64,
    /// Loyalty program name -> the contact as a member of it.
    #[serde(default)]
    pub loyalty: VecMap<String, Member>,
    /// The latest accepted event ids with their history sequences, oldest first.
    /// A resend usually follows a lost ack closely: it is found here, in the page
    /// the state is read from anyway, and most contacts never write a `seen` row.
    #[serde(default)]
    pub recent: Vec<(String, u64)>,
    /// How many ids spilled from `recent` to the `seen` table: when 0, an id not in
    /// `recent` is new without looking there.
    #[serde(default)]
    pub spilled: u64,
    /// Runs waiting in programs.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Last run id given out.
    #[serde(default)]
    pub last_run: u64,
    /// Per program: entries and conversions, for programs with entry rules or a goal.
    #[serde(default)]
    pub journeys: VecMap<String, Journey>,
    /// Counted histories (definitions::facts).
    #[serde(default)]
    pub facts: Facts,
    /// Per capped channel: when the latest messages went (arbitration caps).
    #[serde(default)]
    pub sends: VecMap<String, Vec<i64>>,
}

fn one() -> u64 {
    1
}

impl Default for State {
    fn default() -> Self {
        State {
            v: STATE_VERSION,
            profile: VecMap::new(),
            events: 0,
            ledger_seq: 1,
            last_ts: 0,
            loyalty: VecMap::new(),
            recent: Vec::new(),
            spilled: 0,
            runs: Vec::new(),
            last_run: 0,
            journeys: VecMap::new(),
            facts: Facts::new(),
            sends: VecMap::new(),
        }
    }
}

impl State {
    /// Is `id` among the latest accepted ids?
    pub fn is_recent(&self, id: &str) -> bool {
        self.recent.iter().any(|(r, _)| r == id)
    }

    /// Remember an accepted id; returns the id (and sequence) that no longer fits,
    /// which the caller writes to the `seen` table.
    pub fn remember(&mut self, id: &str, seq: u64) -> Option<(String, u64)> {
        self.recent.push((id.to_owned(), seq));
        if self.recent.len() > RECENT_IDS {
            self.spilled += 1;
            Some(self.recent.remove(0))
        } else {
            None
        }
    }

    /// The contact's time zone (profile field `time_zone`), when valid.
    pub fn time_zone(&self) -> Option<crate::definitions::when::Zone> {
        self.profile.get("time_zone").and_then(Value::as_str).and_then(crate::definitions::when::Zone::parse)
    }

    /// Read a stored state: the compact form `write` writes directly
    /// (`state_reader`), any other form (named map, an older build's fewer fields)
    /// through serde, which also words the errors. Bytes after the state are
    /// ignored. Debug builds check the direct read against serde's.
    pub fn decode(contact: &str, bytes: &[u8]) -> Result<State, StateError> {
        let err = |message: String| StateError { contact: contact.to_owned(), message };
        let s = match State::unpack(&mut Reader::new(bytes)) {
            Some(s) => {
                // Compared as bytes: a NaN in a profile is not equal to itself.
                debug_assert_eq!(
                    Ok(encode_compact(&s)),
                    decode_owned_fast::<State>(bytes).map(|serde| encode_compact(&serde)),
                    "the state reader must read what serde reads"
                );
                s
            }
            None => decode_owned_fast(bytes).map_err(|e| err(format!("cannot decode: {e}")))?,
        };
        if s.v != STATE_VERSION {
            return Err(err(format!("unsupported state version {} (this build reads {STATE_VERSION})", s.v)));
        }
        Ok(s)
    }

    /// The state's stored bytes (compact: structs as arrays of their fields).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write(&mut out);
        out
    }

    /// Append the stored bytes: what rmp-serde's compact serializer writes from the
    /// derives, written directly (`state_writer`). Debug builds check them against
    /// serde, so every state a test makes pins the writer.
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.pack(out);
        debug_assert_eq!(out[start..], encode_compact(self)[..], "the state writer must write what serde writes");
    }

    /// The state as a msgpack named map, for readers outside the core.
    pub fn encode_named(&self) -> Vec<u8> {
        crate::value::encode(self)
    }

    /// Apply a `$profile` event's attrs: {set: map, unset: [str]}.
    pub fn apply_profile(&mut self, attrs: &[(Text, Value)]) {
        for (k, v) in attrs {
            match (k.as_str(), v) {
                ("set", Value::Map(fields)) => self.update_profile::<Text, &str>(fields, &[]),
                ("unset", Value::Array(names)) => {
                    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                    self.update_profile::<&str, &str>(&[], &names);
                }
                _ => {}
            }
        }
    }

    /// Set `set` (a null value removes the field) and remove `unset`: what a
    /// `$profile` event and an update_profile action do.
    pub fn update_profile<K: AsRef<str>, S: AsRef<str>>(&mut self, set: &[(K, Value)], unset: &[S]) {
        for (f, v) in set {
            if matches!(v, Value::Nil) {
                self.profile.remove(f.as_ref());
            } else {
                self.profile.insert(f.as_ref().to_owned(), v.clone());
            }
        }
        for f in unset {
            self.profile.remove(f.as_ref());
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
        s.loyalty.insert("club".into(), Member { joined_ms: 1, qualifying: 2, non_qualifying: 3, ..Member::default() });
        let bytes = s.encode();
        assert_eq!(State::decode("c", &bytes).unwrap(), s);
        // The named form, for readers outside the core, decodes to the same state.
        let named = s.encode_named();
        assert!(named.len() > bytes.len());
        assert_eq!(State::decode("c", &named).unwrap(), s);
        let v: Value = crate::value::decode_exact(&named).unwrap();
        assert_eq!(v.get("v"), Some(&Value::Int(1)));
        assert!(v.get("loyalty").is_some() && v.get("ledger_seq").is_some());
    }

    #[test]
    fn recent_ids_spill_oldest_first() {
        let mut s = State::default();
        for i in 0..RECENT_IDS as u64 {
            assert_eq!(s.remember(&format!("e{i}"), i), None);
        }
        assert_eq!(s.remember("last", 99), Some(("e0".to_owned(), 0)));
        assert_eq!((s.recent.len(), s.spilled), (RECENT_IDS, 1));
        assert!(s.is_recent("last") && s.is_recent("e1") && !s.is_recent("e0"));
    }

    #[test]
    fn bad_state_is_an_error() {
        assert!(State::decode("c", b"\xc1").is_err());
        let s = State { v: 99, ..State::default() };
        assert!(State::decode("c", &s.encode()).unwrap_err().message.contains("version 99"));
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
