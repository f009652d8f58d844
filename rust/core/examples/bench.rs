//! Rough throughput of split_frame + apply with 100 programs and 100 rules loaded.
//! `cargo run --release -p cairn-core --example bench` (`ROUNDS=n` to change the
//! 20 rounds of each measurement).

use std::time::Instant;

use cairn_core::value::{encode, Value};
use cairn_core::{apply, compile, split_frame, Batch, BatchResult, Catalog};

fn s(x: &str) -> Value {
    Value::Str(x.into())
}
fn m(e: Vec<(&str, Value)>) -> Value {
    Value::Map(e.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Seconds per round of decoding `parts` and applying them to empty states, and
/// the last result.
fn decode_apply(cat: &Catalog, parts: &[Vec<u8>], rounds: u32) -> (f64, BatchResult) {
    let t = Instant::now();
    let mut res = None;
    for _ in 0..rounds {
        let b = Batch::decode(parts).unwrap();
        res = Some(apply(cat, &b, &[] as &[(Vec<u8>, Vec<u8>)], &[] as &[(Vec<u8>, Vec<u8>)], 0, 1).unwrap());
    }
    (t.elapsed().as_secs_f64() / rounds as f64, res.expect("at least one round"))
}

fn main() {
    let mut programs = Vec::new();
    let mut rules = Vec::new();
    for i in 0..100 {
        let ev = format!("type{}", i % 20);
        programs.push(m(vec![
            ("name", s(&format!("p{i}"))),
            ("trigger", m(vec![("event", s(&ev))])),
            (
                "nodes",
                Value::Array(vec![
                    m(vec![
                        ("id", s("d")),
                        ("type", s("decision")),
                        ("when", m(vec![("attr", s("amount")), ("op", s(">")), ("value", Value::Int(1000))])),
                        ("yes", s("a")),
                        ("no", s("e")),
                    ]),
                    m(vec![("id", s("a")), ("type", s("action")), ("send", m(vec![("channel", s("web")), ("text", s("hi"))])), ("next", s("e"))]),
                    m(vec![("id", s("e")), ("type", s("end"))]),
                ]),
            ),
        ]));
        rules.push(m(vec![
            ("name", s(&format!("r{i}"))),
            ("event", s(&format!("type{}", 20 + i % 20))),
            ("when", m(vec![("attr", s("amount")), ("op", s(">")), ("value", Value::Int(50))])),
            ("effects", Value::Array(vec![m(vec![("credit", m(vec![("points", Value::Int(1)), ("kind", s("qualifying"))]))])])),
        ]));
    }
    let doc = m(vec![("programs", Value::Array(programs)), ("loyalty", Value::Array(vec![m(vec![("name", s("club")), ("rules", Value::Array(rules))])]))]);
    let cat = compile(&encode(&doc), 1).unwrap();
    let n = 10_000;
    let events: Vec<Value> = (0..n)
        .map(|i| {
            m(vec![
                ("id", s(&format!("e{i}"))),
                ("contact", s(&format!("c{}", i % 2000))),
                ("type", s(&format!("type{}", 40 + i % 20))),
                ("ts", Value::Int(1_700_000_000_000 + i as i64)),
                ("attrs", m(vec![("amount", Value::Int((i % 100) as i64)), ("sku", s("ABC-123"))])),
            ])
        })
        .collect();
    let frame = encode(&m(vec![("op", s("events")), ("seq", Value::Int(1)), ("events", Value::Array(events))]));
    // ROUNDS=1 for callgrind (each scenario then decodes and applies one batch).
    let rounds: u32 = std::env::var("ROUNDS").map_or(20, |r| r.parse().expect("ROUNDS is a count"));
    let t = Instant::now();
    let mut parts = Vec::new();
    for _ in 0..rounds {
        parts = split_frame(&cat, &frame, 1, 0).unwrap().batches.into_iter().map(|b| b.1).collect();
    }
    let split = t.elapsed().as_secs_f64() / rounds as f64;
    let (ap, r) = decode_apply(&cat, &parts, rounds);
    println!("split_frame: {:.0} events/s", n as f64 / split);
    println!("decode+apply (events of untriggered types): {:.0} events/s (ledger {}, effects {})", n as f64 / ap, r.ledger.len(), r.effects);
    // Now with matching types: every event triggers 5 programs and 5 rules.
    let events: Vec<Value> = (0..n)
        .map(|i| {
            m(vec![
                ("id", s(&format!("e{i}"))),
                ("contact", s(&format!("c{}", i % 2000))),
                ("type", s(&format!("type{}", i % 40))),
                ("attrs", m(vec![("amount", Value::Int((i % 100) as i64))])),
            ])
        })
        .collect();
    let frame = encode(&m(vec![("op", s("events")), ("events", Value::Array(events))]));
    let parts: Vec<Vec<u8>> = split_frame(&cat, &frame, 1, 0).unwrap().batches.into_iter().map(|b| b.1).collect();
    let (ap, r) = decode_apply(&cat, &parts, rounds);
    println!("decode+apply (each event: 5 programs + 5 rules): {:.0} events/s (ledger {}, effects {})", n as f64 / ap, r.ledger.len(), r.effects);
    // Purchases with 5 receipt lines (the loyalty benchmark's shape) of untriggered
    // types: mostly the cost of carrying the attributes into the history row.
    let events: Vec<Value> = (0..n).map(|i| receipt(i, &format!("type{}", 40 + i % 20))).collect();
    let frame = encode(&m(vec![("op", s("events")), ("events", Value::Array(events))]));
    let parts: Vec<Vec<u8>> = split_frame(&cat, &frame, 1, 0).unwrap().batches.into_iter().map(|b| b.1).collect();
    let (ap, r) = decode_apply(&cat, &parts, rounds);
    println!("decode+apply (5-line receipts, untriggered types): {:.0} events/s (history {} B/event)", n as f64 / ap, r.history.iter().map(|(_, v)| v.len()).sum::<usize>() / n);
}

/// A purchase with 5 receipt lines, shaped like the loyalty benchmark's
/// (`benchdefs.purchase_lines`: the same fields, similar values).
fn receipt(i: usize, kind: &str) -> Value {
    let lines: Vec<Value> = (0..5)
        .map(|k| {
            m(vec![
                ("product", s(&format!("sku-{}", (i * 7 + k) % 500))),
                ("category", s(["food", "drinks", "home", "beauty", "toys"][(i + k) % 5])),
                ("brand", s(&format!("brand-{}", (i * 3 + k * 11) % 40))),
                ("quantity", Value::Int((1 + (i + k) % 3) as i64)),
                ("total_line_amount", Value::Int((5 + (i * 13 + k * 7) % 60) as i64)),
            ])
        })
        .collect();
    m(vec![
        ("id", s(&format!("r{i}"))),
        ("contact", s(&format!("c{}", i % 2000))),
        ("type", s(kind)),
        ("attrs", m(vec![("total_amount", Value::Int(100)), ("currency", s("EUR")), ("store_code", s(&format!("S{:02}", i % 20))), ("receipt_id", s(&format!("r{i}"))), ("lines", Value::Array(lines))])),
    ])
}
