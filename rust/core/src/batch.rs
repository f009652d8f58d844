//! A decoded batch: the normalized events of one or more parts, in order.

use std::ops::Range;

use crate::error::FrameError;
use crate::event::Event;
use crate::msgpack_read::Reader;
use crate::value::{decode_exact, Value, MAX_DEPTH};

#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The events, in order. An event changed after `decode` no longer matches its
    /// `raw_attrs`, which its history row and effects copy.
    pub events: Vec<Event>,
    /// End index (exclusive) in `events` of each part.
    pub part_ends: Vec<usize>,
    /// The decoded parts' bytes, back to back: where `raw_attrs` points.
    bytes: Vec<u8>,
    /// Per event (by index), the range of its attrs' msgpack in `bytes`; empty when
    /// not known, or not in the forms `msgpack::write_value` writes.
    attrs_at: Vec<Range<usize>>,
}

impl Batch {
    /// Decode parts produced by `split_frame` (msgpack arrays of normalized events),
    /// keeping each event's attrs bytes (`raw_attrs`).
    pub fn decode<P: AsRef<[u8]>>(parts: &[P]) -> Result<Batch, FrameError> {
        let mut b = Batch::default();
        b.bytes.reserve(parts.iter().map(|p| p.as_ref().len()).sum());
        for (i, p) in parts.iter().enumerate() {
            let start = b.events.len();
            b.decode_part(p.as_ref())
                .map_err(|e| FrameError::invalid(format!("batch part {i} is not a list of normalized events: {e}"), None))?;
            if let Some(bad) = b.events[start..].iter().find(|e| !matches!(e.attrs, Value::Map(_))) {
                return Err(FrameError::invalid(format!("batch part {i}: event '{}' has attrs that are not a map", bad.id), None));
            }
            b.part_ends.push(b.events.len());
        }
        Ok(b)
    }

    /// Append the events of one part. Read by hand in the form `split_frame` writes,
    /// noting where each event's attrs are; any other form goes to serde whole, which
    /// decides as it always did (same events, same errors), without attrs bytes.
    fn decode_part(&mut self, part: &[u8]) -> Result<(), String> {
        let n = self.events.len();
        if read_part(part, self.bytes.len(), &mut self.events, &mut self.attrs_at).is_some() {
            self.bytes.extend_from_slice(part);
            return Ok(());
        }
        self.events.truncate(n);
        self.attrs_at.truncate(n);
        self.events.extend(decode_exact::<Vec<Event>>(part)?);
        self.attrs_at.resize(self.events.len(), 0..0);
        Ok(())
    }

    /// The msgpack bytes event `i`'s attrs were decoded from, when it came from a
    /// part in the form `split_frame` writes and they are byte for byte what
    /// writing its attrs gives (`msgpack::write_value`: smallest forms, floats as
    /// float 64; always so for `split_frame`'s parts, which it wrote). None
    /// otherwise, and for `$timer` events. History rows and effects copy them
    /// instead of encoding the attrs again: the same bytes, for less work.
    pub fn raw_attrs(&self, i: usize) -> Option<&[u8]> {
        self.attrs_at.get(i).filter(|r| !r.is_empty()).map(|r| &self.bytes[r.clone()])
    }

    /// A batch of the `$timer` events that due timer keys (`keys::timer_key`) come
    /// back as; keys that are not timer keys are an error.
    pub fn timers<K: AsRef<[u8]>>(keys: &[K]) -> Result<Batch, FrameError> {
        let mut events = Vec::with_capacity(keys.len());
        for k in keys {
            let (wake, contact, run) = crate::keys::parse_timer_key(k.as_ref())
                .ok_or_else(|| FrameError::invalid(format!("{:?} is not a timer key", k.as_ref()), None))?;
            events.push(crate::journey::timer_event(wake, contact, run));
        }
        let n = events.len();
        Ok(Batch { events, part_ends: vec![n], ..Batch::default() })
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Sorted unique contact ids (utf-8 bytes): the state keys to read.
    pub fn state_keys(&self) -> Vec<Vec<u8>> {
        self.state_keys_where(|_| true)
    }

    /// `state_keys` of the contacts `keep` accepts.
    pub fn state_keys_where(&self, keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
        let mut k: Vec<Vec<u8>> = self.events.iter().filter(|e| keep(&e.contact)).map(|e| e.contact.as_bytes().to_vec()).collect();
        k.sort_unstable();
        k.dedup();
        k
    }
}

/// Read a part written by `split_frame`: an array of maps with string keys, each of
/// `Event`'s fields once (`source` may be absent) and no other key, nothing after
/// it, in the forms `msgpack_read::Reader` reads. Pushes its events and their
/// attrs' ranges (offset by `base`); None for any other form (whatever was pushed
/// is then the caller's to drop).
fn read_part(part: &[u8], base: usize, events: &mut Vec<Event>, attrs_at: &mut Vec<Range<usize>>) -> Option<()> {
    let mut rd = Reader::new(part);
    let n = rd.array_len()?;
    // The length is untrusted: cap what it reserves as serde does.
    let cap = n.min((1 << 20) / std::mem::size_of::<Event>());
    events.reserve(cap);
    attrs_at.reserve(cap);
    for _ in 0..n {
        let (ev, at) = read_event(&mut rd)?;
        events.push(ev);
        attrs_at.push(base + at.start..base + at.end);
    }
    rd.at_end().then_some(())
}

/// One event map, and the range of its attrs in the part.
fn read_event(rd: &mut Reader<'_>) -> Option<(Event, Range<usize>)> {
    let (mut id, mut contact, mut kind, mut ts, mut attrs, mut source) = (None, None, None, None, None, None);
    let mut at = 0..0;
    for _ in 0..rd.map_len()? {
        match rd.str()? {
            "id" => fill(&mut id, rd.str()?.to_owned())?,
            "contact" => fill(&mut contact, rd.str()?.to_owned())?,
            "type" => fill(&mut kind, rd.str()?.to_owned())?,
            "ts" => fill(&mut ts, rd.int()?)?,
            "attrs" => {
                let start = rd.pos;
                rd.loose = false;
                // Inside the part's array and the event's map, as serde counts depth.
                fill(&mut attrs, rd.value(ATTRS_DEPTH)?)?;
                // Bytes in other forms than the writers' are not kept: copied, they
                // would not be what writing the attrs gives.
                at = if rd.loose { 0..0 } else { start..rd.pos };
            }
            "source" => fill(&mut source, rd.opt_str()?.map(str::to_owned))?,
            _ => return None,
        }
    }
    let ev = Event { id: id?, contact: contact?, kind: kind?, ts: ts?, attrs: attrs?, source: source.flatten() };
    Some((ev, at))
}

/// Levels of nesting read by hand inside attrs: below what serde allows there
/// (`MAX_DEPTH` less the part's array and the event's map), so that whatever this
/// reader takes, serde would have taken too.
const ATTRS_DEPTH: usize = MAX_DEPTH - 3;

/// Put a field's value into its empty slot; None when the slot is taken (a
/// duplicate key).
fn fill<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::Catalog;
    use crate::event::HistoryRow;
    use crate::value::{encode, encode_compact};
    use crate::wire::split_frame;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    /// `Batch::decode` as it was before it kept attrs bytes: serde alone.
    fn serde_decode(parts: &[Vec<u8>]) -> Result<Vec<Event>, FrameError> {
        let mut events = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let evs: Vec<Event> = decode_exact(p)
                .map_err(|e| FrameError::invalid(format!("batch part {i} is not a list of normalized events: {e}"), None))?;
            if let Some(bad) = evs.iter().find(|e| !matches!(e.attrs, Value::Map(_))) {
                return Err(FrameError::invalid(format!("batch part {i}: event '{}' has attrs that are not a map", bad.id), None));
            }
            events.extend(evs);
        }
        Ok(events)
    }

    /// Decode `part` and check it decodes as serde did, every attrs bytes kept
    /// being byte for byte what writing its event's attrs gives. Values are
    /// compared encoded: NaN is not equal to itself.
    fn check(part: &[u8]) -> Result<Batch, FrameError> {
        let parts = [part.to_vec()];
        let got = Batch::decode(&parts);
        let encoded = |r: Result<&Vec<Event>, &FrameError>| r.map(encode).map_err(Clone::clone);
        assert_eq!(encoded(got.as_ref().map(|b| &b.events)), encoded(serde_decode(&parts).as_ref()), "{part:x?}");
        if let Ok(b) = &got {
            for (i, ev) in b.events.iter().enumerate() {
                if let Some(raw) = b.raw_attrs(i) {
                    assert_eq!(raw, encode(&ev.attrs), "{part:x?}");
                    let mut written = Vec::new();
                    crate::msgpack::write_value(&mut written, &ev.attrs);
                    assert_eq!(raw, written);
                }
            }
        }
        got
    }

    /// Attributes of every msgpack form: each length class, ints and floats, nesting.
    fn rich_attrs() -> Value {
        let line = |k: i64| map(vec![("sku", s(&format!("sku-{k}"))), ("qty", Value::Int(k)), ("price", Value::F64(3.25 * k as f64))]);
        map(vec![
            ("total", Value::F64(129.5)),
            ("currency", s("EUR")),
            ("lines", Value::Array((1..=5).map(line).collect())),
            ("ints", Value::Array([0, 127, 128, 65_536, -1, -33, -40_000, i64::MIN, i64::MAX].map(Value::Int).to_vec())),
            ("big", Value::UInt(u64::MAX)),
            ("flags", Value::Array(vec![Value::Bool(true), Value::Bool(false), Value::Nil])),
            ("note", s(&"é".repeat(40))),
            ("long", s(&"x".repeat(300))),
            ("huge", s(&"y".repeat(70_000))),
            ("bin", Value::Bin(vec![1, 2, 3])),
            ("empty", map(vec![])),
            ("wide", Value::Map((0..20).map(|k| (format!("k{k}").into(), Value::Int(k))).collect())),
            ("long_list", Value::Array((0..20).map(Value::Int).collect())),
        ])
    }

    /// The parts `split_frame` writes for events of every kind, over two shards.
    fn split_parts() -> Vec<Vec<u8>> {
        let events = vec![
            map(vec![("id", s("p1")), ("contact", s("alice")), ("type", s("Purchase")), ("ts", Value::Int(5)), ("source", s("pos")), ("attrs", rich_attrs())]),
            map(vec![("id", s("v1")), ("contact", s("bob")), ("type", s("view"))]),
            map(vec![("id", s("p2")), ("contact", s("carol")), ("type", s("$profile")), ("attrs", map(vec![("set", map(vec![("age", Value::Int(3))])), ("unset", Value::Array(vec![s("x")]))]))]),
            map(vec![("id", s("p3")), ("contact", s("dave")), ("type", s("purchase")), ("attrs", rich_attrs())]),
        ];
        let frame = encode(&map(vec![("op", s("events")), ("events", Value::Array(events))]));
        let split = split_frame(&Catalog::empty(), &frame, 2, 1_000).unwrap();
        assert!(split.rejected.is_empty() && split.batches.len() == 2, "{split:?}");
        split.batches.into_iter().map(|b| b.1).collect()
    }

    #[test]
    fn history_rows_copy_the_attrs_split_frame_wrote() {
        let parts = split_parts();
        let b = Batch::decode(&parts).unwrap();
        assert_eq!(Ok(&b.events), serde_decode(&parts).as_ref());
        assert_eq!(b.len(), 4);
        for (i, ev) in b.events.iter().enumerate() {
            let raw = b.raw_attrs(i).expect("split_frame's parts are read by hand");
            let (mut copied, mut written) = (Vec::new(), Vec::new());
            HistoryRow::new(ev, &[]).write(&mut copied, Some(raw));
            HistoryRow::new(ev, &[]).write(&mut written, None);
            assert_eq!(copied, written, "event {}", ev.id);
        }
        let timers = Batch::timers(&[crate::keys::timer_key(5, "alice", 1)]).unwrap();
        assert_eq!(timers.raw_attrs(0), None);
    }

    #[test]
    fn other_forms_decode_as_serde_did() {
        let ev = |fields: Vec<(&str, Value)>| encode(&Value::Array(vec![map(fields)]));
        let full = || vec![("id", s("e1")), ("contact", s("c1")), ("type", s("view")), ("ts", Value::Int(7)), ("attrs", map(vec![("a", Value::Int(1))])), ("source", Value::Nil)];
        let reordered: Vec<_> = full().into_iter().rev().collect();
        let without_source: Vec<_> = full().into_iter().take(5).collect();
        let b = check(&ev(reordered)).unwrap();
        assert!(b.raw_attrs(0).is_some());
        assert!(check(&ev(without_source)).unwrap().raw_attrs(0).is_some());
        // Values are read by serde, as they were: a string as bin is still a string.
        let bin_id = ev(full().into_iter().map(|(k, v)| if k == "id" { (k, Value::Bin(b"e1".to_vec())) } else { (k, v) }).collect());
        assert_eq!(check(&bin_id).unwrap().events[0].id, "e1");
        // Forms serde accepts that split_frame does not write: decoded, no attrs bytes.
        let events: Vec<Event> = decode_exact(&ev(full())).unwrap();
        for accepted in [
            ev([full(), vec![("extra", Value::Int(1))]].concat()),
            encode_compact(&events),
        ] {
            let b = check(&accepted).unwrap();
            assert_eq!((b.len(), b.raw_attrs(0)), (1, None));
        }
        let mut trailing = ev(full());
        trailing.push(0xc0);
        for rejected in [
            ev([full(), vec![("id", s("e2"))]].concat()),
            ev(full().into_iter().filter(|(k, _)| *k != "ts").collect()),
            ev(full().into_iter().map(|(k, v)| if k == "attrs" { (k, Value::Int(1)) } else { (k, v) }).collect()),
            ev(full().into_iter().map(|(k, v)| if k == "ts" { (k, s("now")) } else { (k, v) }).collect()),
            encode(&map(vec![])),
            trailing,
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
            vec![0xc1],
            vec![],
        ] {
            assert!(check(&rejected).is_err());
        }
        assert!(check(&encode(&Value::Array(vec![]))).unwrap().is_empty());
        // Keys as field indices, whatever serde makes of them.
        let int_keys = [&[0x91, 0x85, 0x00, 0xa2, b'e', b'1', 0x01, 0xa2, b'c', b'1', 0x02, 0xa1, b'v', 0x03, 0x07, 0x04, 0x80][..]].concat();
        assert!(check(&int_keys).map_or(true, |b| b.raw_attrs(0).is_none()));
    }

    /// Attrs in forms the writers do not use (an int or a length in a larger form
    /// than it needs, a float 32) decode as serde decodes them, but their bytes are
    /// not kept: copied, they would not be what writing the attrs gives. The same
    /// values in the writers' forms are kept.
    #[test]
    fn attrs_bytes_are_kept_only_in_the_writers_forms() {
        let event = |attrs: &[u8]| {
            let head = encode(&map(vec![("id", s("e1")), ("contact", s("c1")), ("type", s("view")), ("ts", Value::Int(7))]));
            // The map grows by one entry: "attrs".
            [&[0x91, head[0] + 1][..], &head[1..], &encode(&s("attrs")), attrs].concat()
        };
        let a = |v: &[u8]| [&[0x81, 0xa1, b'a'][..], v].concat();
        let loose: Vec<Vec<u8>> = vec![
            a(&[0xcc, 0x05]),
            a(&[0xcd, 0x00, 0xff]),
            a(&[0xce, 0x00, 0x00, 0xff, 0xff]),
            a(&[0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            a(&[0xd0, 0x05]),
            a(&[0xd0, 0xe0]),
            a(&[0xd1, 0xff, 0x80]),
            a(&[0xd2, 0xff, 0xff, 0x80, 0x00]),
            a(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0]),
            a(&[0xd3, 0, 0, 0, 0, 0, 0, 0, 1]),
            a(&[0xca, 0x3f, 0xc0, 0, 0]),
            a(&[0xd9, 0x01, b'x']),
            a(&[0xda, 0x00, 0x01, b'x']),
            a(&[0xc5, 0x00, 0x01, 0x07]),
            a(&[0xdc, 0x00, 0x01, 0x01]),
            a(&[0xde, 0x00, 0x01, 0xa1, b'k', 0x01]),
            [&[0xde, 0x00, 0x01, 0xa1, b'a'][..], &[0x01]].concat(),
            [&[0x81, 0xd9, 0x01, b'a'][..], &[0x01]].concat(),
            a(&[0x91, 0x81, 0xa1, b'k', 0xd0, 0x01]),
        ];
        for attrs in &loose {
            let b = check(&event(attrs)).unwrap();
            assert_eq!(b.raw_attrs(0), None, "{attrs:x?}");
        }
        let kept: Vec<Vec<u8>> = vec![
            a(&[0x05]),
            a(&[0xe0]),
            a(&[0xcc, 0x80]),
            a(&[0xcd, 0x01, 0x00]),
            a(&[0xce, 0x00, 0x01, 0x00, 0x00]),
            a(&[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            a(&[0xd0, 0xdf]),
            a(&[0xd1, 0xff, 0x7f]),
            a(&[0xd2, 0xff, 0xff, 0x7f, 0xff]),
            a(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]),
            a(&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
            a(&[0xc4, 0x01, 0x07]),
            a(&encode(&s(&"x".repeat(32)))),
            a(&encode(&Value::Array((0..16).map(Value::Int).collect()))),
        ];
        for attrs in &kept {
            let b = check(&event(attrs)).unwrap();
            assert_eq!(b.raw_attrs(0), Some(&attrs[..]), "{attrs:x?}");
        }
    }

    #[test]
    fn nesting_is_limited_as_serde_limits_it() {
        let nested = |depth: usize| (0..depth).fold(Value::Int(1), |v, _| Value::Array(vec![v]));
        let results: Vec<bool> = (50..70)
            .map(|d| {
                let fields = vec![("id", s("e1")), ("contact", s("c1")), ("type", s("view")), ("ts", Value::Int(7)), ("attrs", map(vec![("a", nested(d))]))];
                check(&encode(&Value::Array(vec![map(fields)]))).is_ok()
            })
            .collect();
        assert!(results.contains(&true) && results.contains(&false));
    }

    #[test]
    fn damaged_parts_decode_as_serde_did() {
        let lines = |n: i64| Value::Array((0..n).map(|k| map(vec![("sku", s("a")), ("qty", Value::Int(k)), ("price", Value::F64(1.5))])).collect());
        let events: Vec<Event> = (0..3)
            .map(|k| Event {
                id: format!("e{k}"),
                contact: "c1".into(),
                kind: "purchase".into(),
                ts: 7,
                attrs: map(vec![("store", s("MI")), ("lines", lines(k)), ("big", Value::UInt(u64::MAX))]),
                source: (k == 1).then(|| "pos".to_owned()),
            })
            .collect();
        let part = encode(&events);
        assert!(check(&part).unwrap().raw_attrs(2).is_some());
        for cut in 0..part.len() {
            assert!(check(&part[..cut]).is_err());
        }
        for m in crate::mutants::mutants(&part, 20_000) {
            let _ = check(&m); // asserts serde's answer
        }
    }
}
