//! `split_frame`'s fast path: the frame read in place, each event checked on
//! borrowed data and its normalized msgpack written straight into its shard's part.
//!
//! Why: the reference path (`split_frame_serde`) decodes the whole frame into a
//! `Value` tree and encodes every valid event again with serde, ~10k instructions per
//! event of a purchase frame: most of what the gateway spends on an event. Here the
//! frame is read with `msgpack_read::Reader`, an event's part bytes are written
//! directly (what serde writes for an `Event`: the map of its six fields in
//! declaration order, smallest forms) and its attrs' bytes are copied as they came
//! when they already are what serde would write for them.
//!
//! It answers only where its answer is the reference path's, byte for byte, and
//! otherwise falls back:
//! - The whole frame (None: `split_frame` runs the reference path on it) when it is
//!   not a map whose `op` is "events", with a list `events` and `seq` nil or an
//!   unsigned integer (in any order); when one of these keys is repeated; when anything in it is
//!   in a form `Reader` does not read (extension types, non-string map keys, invalid
//!   UTF-8, nesting near serde's limit, trailing bytes); above `MAX_SHARDS` shards.
//!   The reference path then decides as it always did, errors included.
//! - One event, which then goes alone through serde and `validate` (its bytes,
//!   which `Reader` read, decode alone to the value they are within the frame) and
//!   serde's encoding, when it is not plainly valid: any rejection (the message is
//!   `validate`'s), a `$profile` or reserved type, a repeated field, attrs not in the
//!   smallest msgpack forms (ints or lengths written wider, float 32), or an
//!   attribute whose declared type it cannot accept from the bytes alone.

use std::borrow::Cow;

use super::{validate, FrameSplit};
use crate::definitions::{AttrType, Catalog};
use crate::keys::shard_of;
use crate::msgpack::{write_array_len, write_int, write_str};
use crate::msgpack_read::Reader;
use crate::value::{decode_exact, encode, Value, MAX_DEPTH};

/// Levels of nesting read in any value of the frame's map (an event, its attrs,
/// another key's value): with the frame's map and the events list above it, below
/// the depth at which serde stops (`MAX_DEPTH`), so whatever this path reads, serde
/// reads too.
const VALUE_DEPTH: usize = MAX_DEPTH - 4;

/// Most shards split here (one part slot each); more go to the reference path.
const MAX_SHARDS: u32 = 256;

/// Distinct event types whose verdict is remembered within a frame.
const TYPES_KEPT: usize = 8;

/// The frame split, or None to leave it to the reference path.
pub fn split(cat: &Catalog, frame: &[u8], shards: u32, now_ms: i64) -> Option<FrameSplit> {
    if shards > MAX_SHARDS {
        return None;
    }
    let mut rd = Reader::new(frame);
    let mut out = FrameSplit::default();
    let (mut op, mut seq, mut parts) = (false, false, None);
    for _ in 0..rd.map_len()? {
        match rd.key()?.0 {
            "op" if !op => {
                op = true;
                out.op = rd.str()?.to_owned();
                if out.op != "events" {
                    return None;
                }
            }
            "seq" if !seq => {
                seq = true;
                out.seq = if rd.nil() { None } else { Some(rd.uint()?) };
            }
            "events" if parts.is_none() => parts = Some(events(cat, &mut rd, shards, now_ms, &mut out)?),
            "op" | "seq" | "events" => return None,
            _ => {
                rd.skip(VALUE_DEPTH)?;
            }
        }
    }
    // An op other than "events" returned above: the reference path answers it.
    if !op || !rd.at_end() {
        return None;
    }
    out.batches = parts?.finish();
    Some(out)
}

/// The parts of the events list at `rd`, counting the events and noting
/// rejections in `out`.
fn events(cat: &Catalog, rd: &mut Reader<'_>, shards: u32, now_ms: i64, out: &mut FrameSplit) -> Option<Parts> {
    let n = rd.array_len()?;
    out.total = n;
    let mut parts = Parts::new(shards, rd.rest(), n);
    let mut types = Types { cat, seen: Vec::new() };
    for i in 0..n {
        let start = rd.pos;
        let mut ahead = *rd;
        if let Some(ev) = plain_event(&mut ahead, &mut types, now_ms) {
            *rd = ahead;
            write_event(parts.part(ev.contact), &ev);
            continue;
        }
        rd.skip(VALUE_DEPTH)?;
        match validate(cat, decode_exact::<Value>(rd.since(start)).ok()?, now_ms) {
            Ok(e) => parts.part(&e.contact).extend_from_slice(&encode(&e)),
            Err((code, msg)) => out.rejected.push((i, code, msg)),
        }
    }
    Some(parts)
}

/// An event's fields as they will be written: `kind` lowercased, `ts` and
/// `attrs` (msgpack bytes) filled.
struct Fields<'a> {
    id: &'a str,
    contact: &'a str,
    kind: Cow<'a, str>,
    ts: i64,
    attrs: &'a [u8],
    source: Option<&'a str>,
}

/// The event at `rd` when `validate` accepts it as it is and its attrs' bytes are
/// the ones serde writes for them; None for any other (then `rd` is anywhere).
fn plain_event<'a>(rd: &mut Reader<'a>, types: &mut Types<'_>, now_ms: i64) -> Option<Fields<'a>> {
    let (mut id, mut contact, mut kind, mut ts, mut attrs, mut source) = (None, None, None, None, None, None);
    // The declared attributes once the type is known: attrs read before the type
    // are checked against them after the loop.
    let (mut declared, mut unchecked) = (None, false);
    for _ in 0..rd.map_len()? {
        match rd.key_bytes()? {
            b"id" => fill(&mut id, sized(rd.str()?, 128)?)?,
            b"contact" => fill(&mut contact, sized(rd.str()?, 256).filter(|c| !c.as_bytes().contains(&0))?)?,
            b"type" => {
                fill(&mut kind, lowercase(sized(rd.str()?, 128)?))?;
                declared = Some(types.declared(kind.as_deref()?)?);
            }
            b"ts" => fill(&mut ts, if rd.nil() { now_ms } else { rd.int()? })?,
            b"attrs" => {
                fill(&mut attrs, raw_attrs(rd, declared)?)?;
                unchecked = declared.is_none();
            }
            b"source" => fill(&mut source, rd.opt_str()?)?,
            other => {
                std::str::from_utf8(other).ok()?;
                rd.skip(VALUE_DEPTH - 1)?;
            }
        }
    }
    let attrs = attrs.unwrap_or(EMPTY_MAP);
    if unchecked {
        raw_attrs(&mut Reader::new(attrs), declared)?;
    }
    Some(Fields { id: id?, contact: contact?, kind: kind?, ts: ts.unwrap_or(now_ms), attrs, source: source.flatten() })
}

/// `s` when it is 1..=`max` bytes long.
fn sized(s: &str, max: usize) -> Option<&str> {
    (1..=max).contains(&s.len()).then_some(s)
}

/// Put a field's value into its empty slot; None when it is taken (a repeated key).
fn fill<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// `kind.to_lowercase()`, borrowed when that changes nothing.
fn lowercase(kind: &str) -> Cow<'_, str> {
    if kind.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(kind)
    } else {
        Cow::Owned(kind.to_lowercase())
    }
}

/// What serde writes for the empty map attrs default to.
const EMPTY_MAP: &[u8] = &[0x80];

/// The bytes of the attrs at `rd` (a nil: the empty map) when they are a map
/// written as serde writes it whose values have the `declared` types (when given;
/// nil is any type's).
fn raw_attrs<'a>(rd: &mut Reader<'a>, declared: Option<&[Declared<'_>]>) -> Option<&'a [u8]> {
    if rd.nil() {
        return Some(EMPTY_MAP);
    }
    let start = rd.pos;
    let n = rd.map_len()?;
    // The header in its smallest form: its bytes are 1, 3 or 5 as n needs.
    if rd.pos - start != head_len(n) {
        return None;
    }
    for _ in 0..n {
        let (k, smallest) = rd.key()?;
        let t = declared.and_then(|d| d.iter().find(|(name, _)| *name == k));
        if !smallest || t.is_some_and(|&(_, t)| rd.peek() != Some(0xc0) && !accepts(t, *rd)) {
            return None;
        }
        if !rd.skip(VALUE_DEPTH - 2)? {
            return None;
        }
    }
    Some(rd.since(start))
}

/// Bytes of the smallest map or array header for `n` elements.
fn head_len(n: usize) -> usize {
    match n {
        0..=15 => 1,
        16..=0xffff => 3,
        _ => 5,
    }
}

/// `t.accepts(v)` for the value `v` at `rd`, from its bytes.
fn accepts(t: AttrType, mut rd: Reader<'_>) -> bool {
    let Some(m) = rd.peek() else { return false };
    let int = matches!(m, 0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff);
    let str = matches!(m, 0xa0..=0xbf | 0xd9..=0xdb);
    match t {
        AttrType::Text => str,
        AttrType::Number => int || matches!(m, 0xca | 0xcb),
        AttrType::Bool => matches!(m, 0xc2 | 0xc3),
        AttrType::List => matches!(m, 0x90..=0x9f | 0xdc | 0xdd),
        AttrType::Map => matches!(m, 0x80..=0x8f | 0xde | 0xdf),
        // An int read as `Value::Int` (not above i64::MAX), or an ISO date string.
        AttrType::Date if int => rd.int().is_some(),
        AttrType::Date => str && rd.str().and_then(crate::dates::parse_iso).is_some(),
    }
}

/// A declared attribute of an interaction type, and its type.
type Declared<'c> = (&'c str, AttrType);

/// The declared attributes of the event types met in a frame (most frames hold a
/// few types), or None for a type left to `validate`.
struct Types<'c> {
    cat: &'c Catalog,
    seen: Vec<(String, Option<Vec<Declared<'c>>>)>,
}

impl<'c> Types<'c> {
    fn declared(&mut self, kind: &str) -> Option<&[Declared<'c>]> {
        let i = match self.seen.iter().position(|(k, _)| k == kind) {
            Some(i) => i,
            None => {
                if self.seen.len() == TYPES_KEPT {
                    self.seen.pop();
                }
                self.seen.push((kind.to_owned(), self.judge(kind)));
                self.seen.len() - 1
            }
        };
        self.seen[i].1.as_deref()
    }

    /// `validate`'s decision on a (lowercased) type before its attributes: the
    /// attributes to check (empty: none), or None when the event is left to
    /// `validate` (`$profile`, reserved, unknown under `strict_types`).
    fn judge(&self, kind: &str) -> Option<Vec<Declared<'c>>> {
        if kind.starts_with('$') {
            return None;
        }
        match self.cat.interaction_type(kind) {
            Some(it) => Some(it.attributes.iter().map(|(name, t)| (name.as_str(), *t)).collect()),
            None if self.cat.strict_types && !self.cat.knows_type(kind) => None,
            None => Some(Vec::new()),
        }
    }
}

/// Append what serde writes for the normalized `Event` of `ev`: the map
/// {id, contact, type, ts, attrs, source} in this order.
fn write_event(out: &mut Vec<u8>, ev: &Fields<'_>) {
    out.extend_from_slice(b"\x86\xa2id");
    write_str(out, ev.id);
    out.extend_from_slice(b"\xa7contact");
    write_str(out, ev.contact);
    out.extend_from_slice(b"\xa4type");
    write_str(out, &ev.kind);
    out.extend_from_slice(b"\xa2ts");
    write_int(out, ev.ts);
    out.extend_from_slice(b"\xa5attrs");
    out.extend_from_slice(ev.attrs);
    out.extend_from_slice(b"\xa6source");
    match ev.source {
        Some(s) => write_str(out, s),
        None => out.push(0xc0),
    }
}

/// The parts being written, one slot per shard.
struct Parts {
    slots: Vec<Part>,
    shards: u32,
    /// Bytes left at the start of a part for its array header: as many as the
    /// header of a part of the expected count needs (the header is written there
    /// at the end, the rest moved only when the count needs another size).
    room: usize,
    /// Bytes reserved for a part when its first event comes.
    reserve: usize,
}

#[derive(Default)]
struct Part {
    /// `room` bytes, then the events.
    bytes: Vec<u8>,
    count: usize,
}

impl Parts {
    /// Slots for `shards` parts of the `events` events of a frame of `frame_len` bytes.
    fn new(shards: u32, frame_len: usize, events: usize) -> Parts {
        let n = shards.max(1) as usize;
        let room = head_len(events / n);
        // Normalized events are about the size they came in, a little more.
        let reserve = room + (frame_len + frame_len / 4) / n;
        Parts { slots: (0..n).map(|_| Part::default()).collect(), shards, room, reserve }
    }

    /// The bytes to append the next event of `contact` to.
    fn part(&mut self, contact: &str) -> &mut Vec<u8> {
        let p = &mut self.slots[shard_of(contact, self.shards) as usize];
        if p.count == 0 {
            p.bytes.reserve(self.reserve);
            p.bytes.resize(self.room, 0);
        }
        p.count += 1;
        &mut p.bytes
    }

    /// (shard, bytes, count) of the non-empty parts, ascending shard.
    fn finish(self) -> Vec<(u32, Vec<u8>, usize)> {
        let mut out = Vec::new();
        for (shard, mut p) in self.slots.into_iter().enumerate() {
            if p.count > 0 {
                let mut head = Vec::with_capacity(5);
                write_array_len(&mut head, p.count);
                p.bytes.splice(..self.room, head);
                out.push((shard as u32, p.bytes, p.count));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::compile;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn catalog() -> Catalog {
        let attributes = map(vec![("total_amount", s("number")), ("store_code", s("text")), ("at", s("date")), ("lines", s("list"))]);
        let it = map(vec![("name", s("Purchase")), ("channel", s("store")), ("source", s("api")), ("attributes", attributes)]);
        let aerger = map(vec![("name", s("Ärger")), ("channel", s("store")), ("source", s("api"))]);
        let doc = map(vec![("strict_types", Value::Bool(true)), ("interaction_types", Value::Array(vec![it, aerger]))]);
        compile(&encode(&doc), 1).unwrap()
    }

    /// The fast path's own answer for the event `ev` (msgpack): its part bytes, or
    /// None when it hands the event to serde.
    fn written(cat: &Catalog, ev: &[u8]) -> Option<Vec<u8>> {
        let mut rd = Reader::new(ev);
        let fields = plain_event(&mut rd, &mut Types { cat, seen: Vec::new() }, 7)?;
        assert!(rd.at_end());
        let mut out = Vec::new();
        write_event(&mut out, &fields);
        Some(out)
    }

    /// Plainly valid events are written here, not handed to serde, and as serde
    /// writes them: the identity tests of `split_frame` test this writer.
    #[test]
    fn writes_plain_events_as_serde_does() {
        let cat = catalog();
        let ev = |extra: Vec<(&str, Value)>| {
            let mut e = vec![("id", s("b1-1")), ("contact", s("c1")), ("type", s("purchase")), ("ts", Value::Int(1_700_000_000_000))];
            for (k, v) in extra {
                e.retain(|(ek, _)| *ek != k);
                e.push((k, v));
            }
            map(e)
        };
        let purchase = map(vec![("total_amount", Value::Int(37)), ("store_code", s("MI")), ("currency", s("EUR"))]);
        let events = vec![
            ev(vec![("attrs", purchase.clone())]),
            ev(vec![("type", s("PURCHASE")), ("attrs", purchase.clone()), ("source", s("pos"))]),
            ev(vec![("type", s("Ärger")), ("ts", Value::Nil), ("attrs", Value::Nil), ("source", Value::Nil)]),
            ev(vec![("type", s("view")), ("id", s(&"x".repeat(128))), ("contact", s(&"é".repeat(128)))]),
            ev(vec![("extra", map(vec![("a", Value::Array(vec![Value::Bin(vec![1])]))])), ("ts", Value::Int(i64::MIN))]),
            ev(vec![(
                "attrs",
                map(vec![
                    ("at", s("2024-01-02")),
                    ("lines", Value::Array(vec![map(vec![("qty", Value::Int(-40_000)), ("price", Value::F64(1.5))])])),
                    ("big", Value::UInt(u64::MAX)),
                    ("ünï", s(&"y".repeat(300))),
                    ("total_amount", Value::Nil),
                ]),
            )]),
        ];
        for e in &events {
            let expected = encode(&validate(&cat, e.clone(), 7).unwrap());
            assert_eq!(written(&cat, &encode(e)), Some(expected), "{e:?}");
        }
        // Attrs before the type, checked once it is known.
        let attrs_first = map(vec![("attrs", purchase), ("id", s("e")), ("contact", s("c")), ("type", s("purchase"))]);
        assert!(written(&cat, &encode(&attrs_first)).is_some());
        let wrong_first = map(vec![("attrs", map(vec![("at", s("soon"))])), ("id", s("e")), ("contact", s("c")), ("type", s("purchase"))]);
        assert_eq!(written(&cat, &encode(&wrong_first)), None);
    }

    #[test]
    fn hands_other_events_to_serde() {
        let cat = catalog();
        let ev = |ty: &str, attrs: Value| map(vec![("id", s("e")), ("contact", s("c")), ("type", s(ty)), ("attrs", attrs)]);
        for e in [
            ev("$profile", map(vec![("set", map(vec![]))])),
            ev("gym", map(vec![])),
            ev("purchase", map(vec![("total_amount", s("12"))])),
            ev("purchase", map(vec![("at", Value::UInt(u64::MAX))])),
            ev("purchase", Value::Array(vec![])),
            map(vec![("id", s("e")), ("type", s("view"))]),
        ] {
            assert_eq!(written(&cat, &encode(&e)), None, "{e:?}");
        }
        // Attrs in a wider form than serde writes: a uint 16 for 5.
        let mut wide = encode(&ev("view", Value::Nil));
        assert_eq!(wide.pop(), Some(0xc0));
        wide.extend_from_slice(&[0x81, 0xa1, b'n', 0xcd, 0, 5]);
        assert_eq!(written(&cat, &wide), None);
        wide.truncate(wide.len() - 3);
        wide.push(5);
        assert!(written(&cat, &wide).is_some());
    }
}
