//! The normalized event: the batch format between split_frame and apply, and the
//! history row format.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::state::RunRecord;
use crate::value::{decode_exact, decode_owned_fast, encode, Text, Value};

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
        StoredHistory::read_event(raw).ok()
    }

    /// The attributes as map entries (empty when attrs is not a map).
    pub fn attrs(&self) -> &[(Text, Value)] {
        match &self.attrs {
            Value::Map(m) => m,
            _ => &[],
        }
    }
}

/// The history row of an accepted event: the normalized event and the program runs
/// it caused with their reasons (explain). Keyed by its shard sequence.
///
/// Stored compactly, as the msgpack array
/// `[id, contact, type, ts, attrs, source, runs]` (fields in this order; new fields
/// go at the end): one row per accepted event, whose field names were a tenth of
/// its bytes (the reasons of its steps are most of the rest) and eight string
/// writes each. The sequence is not stored: it is the row's key. Readers outside
/// the core get the named map with `named_history`.
#[derive(Serialize)]
pub struct HistoryRow<'a> {
    pub id: &'a str,
    pub contact: &'a str,
    pub kind: &'a str,
    pub ts: i64,
    pub attrs: &'a Value,
    pub source: &'a Option<String>,
    pub runs: &'a [RunRecord<'a>],
}

impl<'a> HistoryRow<'a> {
    pub fn new(ev: &'a Event, runs: &'a [RunRecord<'a>]) -> Self {
        HistoryRow { id: &ev.id, contact: &ev.contact, kind: &ev.kind, ts: ev.ts, attrs: &ev.attrs, source: &ev.source, runs }
    }

    /// Append the row's compact bytes (the same as its `Serialize`), the event's
    /// fields written directly: an event's attributes are most of the elements a
    /// batch writes. `raw_attrs`, when known, are the msgpack bytes `attrs` was
    /// decoded from (`Batch::raw_attrs`), which are exactly what writing `attrs`
    /// gives: copied instead (debug builds check).
    pub fn write(&self, out: &mut Vec<u8>, raw_attrs: Option<&[u8]>) {
        use crate::msgpack::{write_array_len, write_int, write_str, write_value};
        write_array_len(out, 7);
        write_str(out, self.id);
        write_str(out, self.contact);
        write_str(out, self.kind);
        write_int(out, self.ts);
        match raw_attrs {
            Some(raw) => {
                out.extend_from_slice(raw);
                debug_assert!(raw == crate::value::encode_compact(self.attrs), "raw attrs must be what write_value writes");
            }
            None => write_value(out, self.attrs),
        }
        match self.source {
            Some(s) => write_str(out, s),
            None => out.push(0xc0),
        }
        write_array_len(out, self.runs.len());
        for run in self.runs {
            run.write(out);
        }
    }
}

/// A stored history row read back, in either form: the compact array `HistoryRow`
/// writes, or the named map rows were stored as before (whose `seq` is ignored:
/// the key holds it). `R` is what the runs are read as: `Value` to keep them,
/// `IgnoredAny` to skip them.
#[derive(Deserialize)]
pub struct StoredHistory<R> {
    pub id: String,
    pub contact: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: i64,
    pub attrs: Value,
    #[serde(default)]
    pub source: Option<String>,
    pub runs: R,
}

impl StoredHistory<IgnoredAny> {
    /// The normalized event of a stored history row (the runs skipped unread).
    pub fn read_event(raw: &[u8]) -> Result<Event, String> {
        let row: StoredHistory<IgnoredAny> = decode_owned_fast(raw)?;
        Ok(Event { id: row.id, contact: row.contact, kind: row.kind, ts: row.ts, attrs: row.attrs, source: row.source })
    }
}

/// The named-map form of a history row: what readers outside the core see.
#[derive(Serialize)]
struct NamedHistory<'a, R> {
    id: &'a str,
    contact: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    ts: i64,
    attrs: &'a Value,
    source: &'a Option<String>,
    seq: u64,
    runs: &'a R,
}

/// A stored history row (either form) as the msgpack named map
/// `{"id", "contact", "type", "ts", "attrs", "source", "seq", "runs"}`, `seq` being
/// the row's key; an error when `raw` is not a history row. Decision traces read
/// as a fallback text without the definitions: see `named_history_with`.
pub fn named_history(raw: &[u8], seq: u64) -> Result<Vec<u8>, String> {
    named_history_with(raw, seq, None)
}

/// `named_history` with the decision traces of its steps rendered as the text
/// they stand for, from the programs of `cat` (`trace::render`); text reasons (rows
/// stored before traces, and every other step) stay as stored.
pub fn named_history_with(raw: &[u8], seq: u64, cat: Option<&crate::definitions::Catalog>) -> Result<Vec<u8>, String> {
    let mut row: StoredHistory<Value> = decode_exact(raw)?;
    crate::trace::render_runs(cat, &mut row.runs, &row.attrs);
    let named = NamedHistory {
        id: &row.id,
        contact: &row.contact,
        kind: &row.kind,
        ts: row.ts,
        attrs: &row.attrs,
        source: &row.source,
        seq,
        runs: &row.runs,
    };
    Ok(encode(&named))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Step;
    use crate::value::{decode_exact, encode, encode_compact};

    fn purchase() -> Event {
        Event {
            id: "e1".into(),
            contact: "c1".into(),
            kind: "purchase".into(),
            ts: 1_764_000_000_000,
            attrs: Value::Map(vec![("amount".into(), Value::Int(3)), ("store".into(), Value::Str("MI".into()))]),
            source: Some("pos".into()),
        }
    }

    fn runs() -> Vec<RunRecord<'static>> {
        vec![RunRecord {
            program: "p",
            version: 2,
            run: 7,
            steps: vec![Step { node: "check", outcome: "yes", reason: "attr amount = 3 gte 1: true => yes".into() }, Step { node: "done", outcome: "end", reason: "".into() }],
        }]
    }

    /// A history row as it was stored before rows were compact: a named map with
    /// the sequence in it.
    #[derive(Serialize)]
    struct OldHistoryRow<'a> {
        id: &'a str,
        contact: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        ts: i64,
        attrs: &'a Value,
        source: &'a Option<String>,
        seq: u64,
        runs: &'a [RunRecord<'a>],
    }

    fn old_row(ev: &Event, seq: u64, runs: &[RunRecord<'_>]) -> Vec<u8> {
        encode(&OldHistoryRow { id: &ev.id, contact: &ev.contact, kind: &ev.kind, ts: ev.ts, attrs: &ev.attrs, source: &ev.source, seq, runs })
    }

    #[test]
    fn named_map_round_trip() {
        let e = Event { source: None, ..purchase() };
        let bytes = encode(&e);
        let v: Value = decode_exact(&bytes).unwrap();
        assert_eq!(v.get("type"), Some(&Value::Str("purchase".into())));
        assert_eq!(v.get("source"), Some(&Value::Nil));
        let back: Event = decode_exact(&bytes).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn history_rows_are_positional_without_their_sequence() {
        let (ev, runs) = (purchase(), runs());
        let compact = encode_compact(&HistoryRow::new(&ev, &runs));
        let Value::Array(fields) = decode_exact::<Value>(&compact).unwrap() else { panic!("not an array") };
        assert_eq!(fields.len(), 7);
        assert_eq!((&fields[0], &fields[2], &fields[5]), (&Value::Str("e1".into()), &Value::Str("purchase".into()), &Value::Str("pos".into())));
        // Readers see exactly the named row that used to be stored.
        let old = old_row(&ev, 42, &runs);
        assert_eq!(named_history(&compact, 42).unwrap(), old);
        assert!(compact.len() + 40 < old.len(), "{} vs {}", compact.len(), old.len());
        assert_eq!(StoredHistory::read_event(&compact).unwrap(), ev);
        // The hand-written writer of the hot path writes the same bytes, a
        // decision trace included.
        let mut traced = runs.clone();
        traced[0].steps[0].reason = crate::state::Reason::Trace(vec![0x92, 0x01, 0xa3, b'v', b'i', b'p']);
        for (e, r) in [(&ev, &runs[..]), (&ev, &traced[..]), (&Event { source: None, ..ev.clone() }, &[][..])] {
            let mut written = Vec::new();
            HistoryRow::new(e, r).write(&mut written, None);
            assert_eq!(written, encode_compact(&HistoryRow::new(e, r)));
        }
    }

    #[test]
    fn old_named_history_rows_still_read() {
        let (ev, runs) = (purchase(), runs());
        let old = old_row(&ev, 42, &runs);
        assert_eq!(named_history(&old, 42).unwrap(), old);
        assert_eq!(StoredHistory::read_event(&old).unwrap(), ev);
        let no_runs = old_row(&Event { source: None, ..ev.clone() }, 3, &[]);
        assert_eq!(named_history(&no_runs, 3).unwrap(), no_runs);
    }

    #[test]
    fn what_is_not_a_history_row_is_an_error() {
        assert!(named_history(b"\xc1", 1).is_err());
        assert!(named_history(&encode(&Value::Array(vec![Value::Int(1)])), 1).is_err());
        let mut trailing = encode_compact(&HistoryRow::new(&purchase(), &[]));
        trailing.push(0xc0);
        assert!(named_history(&trailing, 1).is_err());
        assert!(StoredHistory::read_event(&encode(&Value::Map(vec![]))).is_err());
    }
}
