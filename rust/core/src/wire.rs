//! `split_frame`: decode one wire frame, validate each event alone, route the valid ones
//! to shards as normalized batches. Never panics on any input.
//!
//! Two paths give the same answer: `fast` reads the frame in place and writes each
//! event's part bytes itself, for the frames it can answer for exactly as the other
//! would; `split_frame_serde`, the reference, decodes the frame into a `Value` tree
//! and decides everything else (malformed frames, unusual forms).

use std::collections::BTreeMap;

use crate::definitions::Catalog;
use crate::error::FrameError;
use crate::event::Event;
use crate::keys::shard_of;
use crate::value::{decode_exact, encode, map_get, Text, Value};

mod fast;

/// Rejection codes of single events.
pub const INVALID: &str = "invalid";
pub const UNKNOWN_TYPE: &str = "unknown_type";

/// The result of splitting one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameSplit {
    pub op: String,
    pub seq: Option<u64>,
    /// (shard, msgpack array of normalized events, count), ascending shard, non-empty only.
    pub batches: Vec<(u32, Vec<u8>, usize)>,
    /// (index in the frame, code, message).
    pub rejected: Vec<(usize, &'static str, String)>,
    /// Number of events in the frame.
    pub total: usize,
}

type Reject = (&'static str, String);

fn invalid(m: String) -> Reject {
    (INVALID, m)
}

/// Split `frame` (one msgpack map) into per-shard batches.
pub fn split_frame(cat: &Catalog, frame: &[u8], shards: u32, now_ms: i64) -> Result<FrameSplit, FrameError> {
    match split_frame_fast(cat, frame, shards, now_ms) {
        Some(split) => Ok(split),
        None => split_frame_serde(cat, frame, shards, now_ms),
    }
}

/// `split_frame`'s fast path alone: None for a frame it leaves to
/// `split_frame_serde` (see `fast`).
pub fn split_frame_fast(cat: &Catalog, frame: &[u8], shards: u32, now_ms: i64) -> Option<FrameSplit> {
    fast::split(cat, frame, shards, now_ms)
}

/// `split_frame` by the reference path: the whole frame decoded into a `Value`
/// tree, every valid event encoded by serde.
pub fn split_frame_serde(cat: &Catalog, frame: &[u8], shards: u32, now_ms: i64) -> Result<FrameSplit, FrameError> {
    let root = decode_exact::<Value>(frame).map_err(|e| FrameError::bad_frame(format!("frame is not one msgpack map: {e}")))?;
    let Value::Map(mut entries) = root else {
        return Err(FrameError::bad_frame(format!("frame must be a msgpack map, got {}", root.type_name())));
    };
    let op = match map_get(&entries, "op") {
        Some(Value::Str(s)) => s.to_string(),
        Some(v) => return Err(FrameError::bad_frame(format!("key 'op' must be a string, got {}", v.type_name()))),
        None => return Err(FrameError::bad_frame("missing key 'op'")),
    };
    let seq = match map_get(&entries, "seq") {
        None | Some(Value::Nil) => None,
        Some(Value::Int(i)) if *i >= 0 => Some(*i as u64),
        Some(Value::UInt(u)) => Some(*u),
        Some(v) => {
            return Err(FrameError::invalid(
                format!("key 'seq' must be an unsigned integer, got {}", v.type_name()),
                None,
            ))
        }
    };
    let mut out = FrameSplit { op, seq, ..FrameSplit::default() };
    if out.op != "events" {
        return Ok(out);
    }
    let events = match entries.iter_mut().find(|(k, _)| k == "events") {
        Some((_, v)) => std::mem::take(v),
        None => return Err(FrameError::invalid("missing key 'events'", seq)),
    };
    let Value::Array(events) = events else {
        return Err(FrameError::invalid(format!("key 'events' must be a list, got {}", events.type_name()), seq));
    };
    out.total = events.len();
    let mut per_shard: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
    for (i, ev) in events.into_iter().enumerate() {
        match validate(cat, ev, now_ms) {
            Ok(e) => per_shard.entry(shard_of(&e.contact, shards)).or_default().push(e),
            Err((code, msg)) => out.rejected.push((i, code, msg)),
        }
    }
    out.batches = per_shard
        .into_iter()
        .map(|(shard, evs)| (shard, encode(&evs), evs.len()))
        .collect();
    Ok(out)
}

fn take_str(m: &mut [(Text, Value)], key: &str, max: usize, required: bool) -> Result<Option<String>, Reject> {
    match m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| std::mem::take(v)) {
        None | Some(Value::Nil) if required => Err(invalid(format!("missing key '{key}'"))),
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Str(s)) => {
            if s.is_empty() || s.len() > max {
                Err(invalid(format!("key '{key}' must be 1..{max} bytes, got {}", s.len())))
            } else {
                Ok(Some(s.into()))
            }
        }
        Some(v) => Err(invalid(format!("key '{key}' must be a string, got {}", v.type_name()))),
    }
}

/// Validate one event on its own; the normalized event or (code, message).
pub fn validate(cat: &Catalog, ev: Value, now_ms: i64) -> Result<Event, Reject> {
    let Value::Map(mut m) = ev else {
        return Err(invalid(format!("event must be a map, got {}", ev.type_name())));
    };
    let id = take_str(&mut m, "id", 128, true)?.unwrap_or_default();
    let contact = take_str(&mut m, "contact", 256, true)?.unwrap_or_default();
    if contact.as_bytes().contains(&0) {
        return Err(invalid("key 'contact' must not contain a NUL byte".into()));
    }
    let kind = take_str(&mut m, "type", 128, true)?.unwrap_or_default().to_lowercase();
    let ts = match map_get(&m, "ts") {
        None | Some(Value::Nil) => now_ms,
        Some(Value::Int(i)) => *i,
        Some(Value::UInt(_)) => return Err(invalid("key 'ts' is out of range (ms since epoch)".into())),
        Some(v) => {
            return Err(invalid(format!("key 'ts' must be an integer (ms since epoch), got {}", v.type_name())))
        }
    };
    let attrs = match m.iter_mut().find(|(k, _)| k == "attrs").map(|(_, v)| std::mem::take(v)) {
        None | Some(Value::Nil) => Value::Map(Vec::new()),
        Some(v @ Value::Map(_)) => v,
        Some(v) => return Err(invalid(format!("key 'attrs' must be a map, got {}", v.type_name()))),
    };
    let source = match m.iter_mut().find(|(k, _)| k == "source").map(|(_, v)| std::mem::take(v)) {
        None | Some(Value::Nil) => None,
        Some(Value::Str(s)) => Some(s.into()),
        Some(v) => return Err(invalid(format!("key 'source' must be a string, got {}", v.type_name()))),
    };
    if kind.starts_with('$') && kind != "$profile" {
        return Err(invalid(format!("event type '{kind}' is reserved: the only type starting with '$' a producer may send is $profile")));
    }
    if kind == "$profile" {
        check_profile(cat, &attrs)?;
    } else if let Some(it) = cat.interaction_type(&kind) {
        for (k, v) in attrs_of(&attrs) {
            if let Some(t) = it.attributes.get(k.as_str()) {
                if !matches!(v, Value::Nil) && !t.accepts(v) {
                    return Err(invalid(format!(
                        "attribute '{k}' of '{kind}' must be {}, got {}",
                        describe(*t),
                        v.type_name()
                    )));
                }
            }
        }
    } else if cat.strict_types && !cat.knows_type(&kind) {
        return Err((UNKNOWN_TYPE, format!("unknown event type '{kind}' (strict_types is on: declare it in interaction_types)")));
    }
    Ok(Event { id, contact, kind, ts, attrs, source })
}

fn attrs_of(v: &Value) -> &[(Text, Value)] {
    match v {
        Value::Map(m) => m,
        _ => &[],
    }
}

fn describe(t: crate::definitions::AttrType) -> &'static str {
    use crate::definitions::AttrType as T;
    match t {
        T::Text => "text (a string)",
        T::Number => "number (int or float)",
        T::Bool => "bool",
        T::Date => "date (ISO string or int ms)",
        T::List => "list",
        T::Map => "map",
    }
}

fn check_profile(cat: &Catalog, attrs: &Value) -> Result<(), Reject> {
    for (k, v) in attrs_of(attrs) {
        match (k.as_str(), v) {
            ("set", Value::Nil) | ("unset", Value::Nil) => {}
            ("set", Value::Map(fields)) => {
                for (f, fv) in fields {
                    if let Some(t) = cat.profile_fields.get(f.as_str()) {
                        if !matches!(fv, Value::Nil) && !t.accepts(fv) {
                            return Err(invalid(format!(
                                "profile field '{f}' must be {}, got {}",
                                describe(*t),
                                fv.type_name()
                            )));
                        }
                    }
                }
            }
            ("set", v) => return Err(invalid(format!("key 'attrs.set' of a $profile event must be a map, got {}", v.type_name()))),
            ("unset", Value::Array(items)) => {
                if let Some(bad) = items.iter().find(|i| !matches!(i, Value::Str(_))) {
                    return Err(invalid(format!(
                        "key 'attrs.unset' of a $profile event must be a list of strings, got an item of type {}",
                        bad.type_name()
                    )));
                }
            }
            ("unset", v) => {
                return Err(invalid(format!(
                    "key 'attrs.unset' of a $profile event must be a list of strings, got {}",
                    v.type_name()
                )))
            }
            (other, _) => {
                return Err(invalid(format!(
                    "key 'attrs' of a $profile event may only hold 'set' and 'unset', got '{other}'"
                )))
            }
        }
    }
    Ok(())
}
