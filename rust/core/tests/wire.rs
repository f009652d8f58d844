mod common;

use cairn_core::value::decode_exact;
use cairn_core::{compile, shard_of, split_frame, Catalog, Event, Value};
use common::*;

fn frame(events: Vec<Value>) -> Vec<u8> {
    bytes(&map(vec![("op", s("events")), ("seq", i(17)), ("events", list(events))]))
}

fn ev(id: &str, contact: &str, ty: &str) -> Vec<(&'static str, Value)> {
    vec![("id", s(id)), ("contact", s(contact)), ("type", s(ty))]
}

fn typed_catalog(strict: bool) -> Catalog {
    compile(
        &bytes(&map(vec![
            ("strict_types", Value::Bool(strict)),
            ("profile_fields", map(vec![("age", s("number"))])),
            (
                "interaction_types",
                list(vec![map(vec![
                    ("name", s("Store_Visit")),
                    ("channel", s("store")),
                    ("source", s("api")),
                    ("attributes", map(vec![("amount", s("number")), ("at", s("date")), ("code", s("text"))])),
                ])]),
            ),
        ])),
        1,
    )
    .unwrap()
}

#[test]
fn routes_and_normalizes() {
    let cat = Catalog::empty();
    let mut e1 = ev("1", "alice", "PURCHASE");
    e1.push(("ts", i(5)));
    e1.push(("extra", s("ignored")));
    let e2 = ev("2", "bob", "view");
    let mut e3 = ev("3", "alice", "view");
    e3.push(("source", s("web")));
    let f = frame(vec![map(e1), map(e2), map(e3)]);
    let out = split_frame(&cat, &f, 4, 1000).unwrap();
    assert_eq!((out.op.as_str(), out.seq, out.total), ("events", Some(17), 3));
    assert!(out.rejected.is_empty());
    let shards: Vec<u32> = out.batches.iter().map(|b| b.0).collect();
    let mut sorted = shards.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(shards, sorted);
    let mut all = Vec::new();
    for (shard, b, n) in &out.batches {
        let evs: Vec<Event> = decode_exact(b).unwrap();
        assert_eq!(evs.len(), *n);
        for e in &evs {
            assert_eq!(shard_of(&e.contact, 4), *shard);
        }
        all.extend(evs);
    }
    let alice: Vec<&Event> = all.iter().filter(|e| e.contact == "alice").collect();
    assert_eq!(alice[0].kind, "purchase");
    assert_eq!(alice[0].ts, 5);
    assert_eq!(alice[1].ts, 1000);
    assert_eq!(alice[1].source.as_deref(), Some("web"));
    assert_eq!(alice[0].attrs, map(vec![]));
}

#[test]
fn each_rejection() {
    let cat = typed_catalog(false);
    let with = |extra: Vec<(&'static str, Value)>| {
        let mut e = ev("1", "c", "store_visit");
        for (k, v) in extra {
            if let Some(slot) = e.iter_mut().find(|(ek, _)| *ek == k) {
                slot.1 = v;
            } else {
                e.push((k, v));
            }
        }
        map(e)
    };
    let cases: Vec<(Value, &str)> = vec![
        (map(vec![("contact", s("c")), ("type", s("view"))]), "missing key 'id'"),
        (map(vec![("id", s("1")), ("type", s("view"))]), "missing key 'contact'"),
        (map(vec![("id", s("1")), ("contact", s("c"))]), "missing key 'type'"),
        (with(vec![("id", i(1))]), "key 'id' must be a string, got int"),
        (with(vec![("id", s(""))]), "key 'id' must be 1..128 bytes, got 0"),
        (with(vec![("id", s(&"x".repeat(129)))]), "key 'id' must be 1..128 bytes, got 129"),
        (with(vec![("contact", s(&"x".repeat(257)))]), "key 'contact' must be 1..256 bytes, got 257"),
        (with(vec![("contact", s("a\0b"))]), "key 'contact' must not contain a NUL byte"),
        (with(vec![("type", s(&"x".repeat(129)))]), "key 'type' must be 1..128 bytes, got 129"),
        (with(vec![("ts", s("now"))]), "key 'ts' must be an integer (ms since epoch), got str"),
        (with(vec![("ts", Value::F64(1.5))]), "key 'ts' must be an integer (ms since epoch), got float"),
        (with(vec![("attrs", list(vec![]))]), "key 'attrs' must be a map, got list"),
        (with(vec![("source", i(3))]), "key 'source' must be a string, got int"),
        (with(vec![("attrs", map(vec![("amount", s("12"))]))]), "attribute 'amount' of 'store_visit' must be number (int or float), got str"),
        (with(vec![("attrs", map(vec![("at", s("yesterday"))]))]), "attribute 'at' of 'store_visit' must be date (ISO string or int ms), got str"),
        (with(vec![("type", s("$profile")), ("attrs", map(vec![("set", i(1))]))]), "key 'attrs.set' of a $profile event must be a map, got int"),
        (with(vec![("type", s("$profile")), ("attrs", map(vec![("unset", list(vec![i(1)]))]))]), "key 'attrs.unset' of a $profile event must be a list of strings, got an item of type int"),
        (with(vec![("type", s("$profile")), ("attrs", map(vec![("sett", map(vec![]))]))]), "key 'attrs' of a $profile event may only hold 'set' and 'unset', got 'sett'"),
        (with(vec![("type", s("$profile")), ("attrs", map(vec![("set", map(vec![("age", s("x"))]))]))]), "profile field 'age' must be number (int or float), got str"),
        (i(5), "event must be a map, got int"),
    ];
    let n = cases.len();
    let (events, msgs): (Vec<Value>, Vec<&str>) = cases.into_iter().unzip();
    let out = split_frame(&cat, &frame(events), 2, 0).unwrap();
    assert_eq!(out.total, n);
    assert!(out.batches.is_empty());
    assert_eq!(out.rejected.len(), n);
    for (idx, (r, m)) in out.rejected.iter().zip(msgs).enumerate() {
        assert_eq!((r.0, r.1, r.2.as_str()), (idx, "invalid", m));
    }
}

#[test]
fn typed_attrs_accept_valid_values() {
    let cat = typed_catalog(false);
    let mut e = ev("1", "c", "STORE_VISIT");
    e.push(("attrs", map(vec![("amount", Value::F64(2.5)), ("at", i(5)), ("code", s("MI")), ("other", list(vec![]))])));
    let mut p = ev("2", "c", "$profile");
    p.push(("attrs", map(vec![("set", map(vec![("age", i(3)), ("x", Value::Nil)])), ("unset", list(vec![s("y")]))])));
    let out = split_frame(&cat, &frame(vec![map(e), map(p)]), 1, 0).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.batches[0].2, 2);
}

#[test]
fn strict_types_rejects_unknown() {
    let f = frame(vec![map(ev("1", "c", "gym")), map(ev("2", "c", "purchase")), map(ev("3", "c", "Store_Visit"))]);
    let out = split_frame(&typed_catalog(true), &f, 1, 0).unwrap();
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 0);
    assert_eq!(out.rejected[0].1, "unknown_type");
    let out = split_frame(&typed_catalog(false), &f, 1, 0).unwrap();
    assert!(out.rejected.is_empty());
}

#[test]
fn frame_level_errors() {
    let cat = Catalog::empty();
    let e = split_frame(&cat, b"", 1, 0).unwrap_err();
    assert_eq!(e.code, "bad_frame");
    let e = split_frame(&cat, &bytes(&list(vec![])), 1, 0).unwrap_err();
    assert_eq!(e.code, "bad_frame");
    let mut two = bytes(&map(vec![("op", s("events"))]));
    two.extend(bytes(&map(vec![])));
    assert_eq!(split_frame(&cat, &two, 1, 0).unwrap_err().code, "bad_frame");
    let e = split_frame(&cat, &bytes(&map(vec![("op", i(1))])), 1, 0).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("bad_frame", "key 'op' must be a string, got int"));
    let e = split_frame(&cat, &bytes(&map(vec![])), 1, 0).unwrap_err();
    assert_eq!(e.code, "bad_frame");
    let e = split_frame(&cat, &bytes(&map(vec![("op", s("events")), ("seq", i(9)), ("events", map(vec![]))])), 1, 0).unwrap_err();
    assert_eq!((e.code, e.seq), ("invalid", Some(9)));
    let e = split_frame(&cat, &bytes(&map(vec![("op", s("events")), ("seq", s("x"))])), 1, 0).unwrap_err();
    assert_eq!(e.code, "invalid");
    let out = split_frame(&cat, &bytes(&map(vec![("op", s("hello")), ("seq", Value::Nil)])), 1, 0).unwrap();
    assert_eq!((out.op.as_str(), out.seq, out.total), ("hello", None, 0));
    let out = split_frame(&cat, &bytes(&map(vec![("op", s("events")), ("events", list(vec![]))])), 1, 0).unwrap();
    assert_eq!((out.total, out.batches.len()), (0, 0));
}

/// Small deterministic PRNG (xorshift) so the fuzz test needs no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn never_panics_on_random_or_truncated_input() {
    let cat = typed_catalog(true);
    let mut good_ev = ev("1", "c", "store_visit");
    good_ev.push(("attrs", map(vec![("amount", i(3)), ("nested", list(vec![map(vec![("a", Value::Bin(vec![1]))])]))])));
    let good = frame(vec![map(good_ev), map(ev("2", "d", "$profile"))]);
    for cut in 0..good.len() {
        let _ = split_frame(&cat, &good[..cut], 3, 0);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = (rng.next() % 64) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.next().is_multiple_of(2) && !buf.is_empty() {
            buf[0] = 0x80 | (buf[0] & 0x0f); // start with a fixmap more often
        }
        let _ = split_frame(&cat, &buf, 3, 0);
        // Mutate a valid frame.
        let mut m = good.clone();
        let pos = (rng.next() as usize) % m.len();
        m[pos] = rng.next() as u8;
        let _ = split_frame(&cat, &m, 3, 0);
        let _ = cairn_core::Batch::decode(&[&m[..]]);
    }
    // Huge declared lengths with no data.
    for b in [&[0xdf, 0xff, 0xff, 0xff, 0xff][..], &[0xdd, 0xff, 0xff, 0xff, 0xff], &[0xdb, 0xff, 0xff, 0xff, 0xff]] {
        assert!(split_frame(&cat, b, 3, 0).is_err());
    }
    // Deep nesting.
    let deep: Vec<u8> = std::iter::repeat_n(0x91u8, 100_000).collect();
    assert!(split_frame(&cat, &deep, 3, 0).is_err());
}
