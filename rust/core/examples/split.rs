//! Cost of `split_frame` on a 500-event purchase frame shaped like the load
//! generator's (`python/cairn/loadgen.py`), split over 2 shards.
//!
//!     cargo build --release -p cairn-core --examples
//!     valgrind --tool=callgrind --toggle-collect='split::timed_split_frame' target/release/examples/split 2000
//!
//! The callgrind total divided by 2000 x 500 is instructions per event. Further
//! arguments: `plain` uses an empty catalog instead of one declaring purchase's
//! attribute types (then no attribute is type-checked); `serde` runs the reference
//! path (`split_frame_serde`) instead of `split_frame`. (Name the function exactly:
//! `--toggle-collect` toggles at each function it matches, so a pattern matching
//! both this wrapper and a `split_frame_*` it calls counts nothing.)

use std::hint::black_box;
use std::time::Instant;

use cairn_core::value::{encode, Value};
use cairn_core::wire::split_frame_serde;
use cairn_core::{compile, split_frame, Catalog, FrameError, FrameSplit};

const EVENTS: usize = 500;
const STORES: [&str; 4] = ["MI", "RM", "TO", "NA"];

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn m(e: Vec<(&str, Value)>) -> Value {
    Value::Map(e.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Definitions declaring purchase's attributes, as a shop that types them would.
fn typed_catalog() -> Catalog {
    let attributes = m(vec![("total_amount", s("number")), ("store_code", s("text")), ("currency", s("text"))]);
    let purchase = m(vec![("name", s("purchase")), ("channel", s("store")), ("source", s("api")), ("attributes", attributes)]);
    compile(&encode(&m(vec![("interaction_types", Value::Array(vec![purchase]))])), 1).expect("definitions compile")
}

/// The frame the load generator sends: `{"op", "seq", "events"}` of purchases.
fn frame(run: &str) -> Vec<u8> {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            m(vec![
                ("id", s(&format!("b{run}-{i}"))),
                ("contact", s(&format!("c{}", i % 100_000))),
                ("type", s("purchase")),
                ("ts", Value::Int(1_700_000_000_000 + i as i64)),
                ("attrs", m(vec![("total_amount", Value::Int(((i * 37) % 250) as i64)), ("store_code", s(STORES[i % 4])), ("currency", s("EUR"))])),
            ])
        })
        .collect();
    encode(&m(vec![("op", s("events")), ("seq", Value::Int(1)), ("events", Value::Array(events))]))
}

/// One split, its accepted events counted. Not inlined, so that callgrind's
/// `--toggle-collect='*split_frame*'` counts exactly this (`split_frame` itself is
/// inlined here under LTO).
#[inline(never)]
fn timed_split_frame(split: Split, cat: &Catalog, frame: &[u8]) -> usize {
    let split = split(cat, frame, 2, 1_700_000_000_000).expect("a valid frame");
    split.batches.iter().map(|b| b.2).sum()
}

type Split = fn(&Catalog, &[u8], u32, i64) -> Result<FrameSplit, FrameError>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().map_or(2_000, |r| r.parse().expect("rounds is a count"));
    let cat = if args.iter().any(|a| a == "plain") { Catalog::empty() } else { typed_catalog() };
    let split: Split = if args.iter().any(|a| a == "serde") { split_frame_serde } else { split_frame };
    let frame = frame("18f3a2b4c5d6");
    let t = Instant::now();
    let mut accepted = 0;
    for _ in 0..rounds {
        accepted += timed_split_frame(split, &cat, black_box(&frame));
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(accepted, rounds * EVENTS);
    println!("split_frame: {:.0} ns/event ({rounds} rounds of {EVENTS} events)", secs * 1e9 / (rounds * EVENTS) as f64);
}
