//! Cost of encoding (or, with `decode`, decoding) one representative contact state
//! (a loyalty member with a few lots, receipts and rule progress entries, 10 recent
//! ids, a waiting run), as a batch does for every contact it touches.
//!
//!     cargo build --release -p cairn-core --example state_encode
//!     valgrind --tool=callgrind target/release/examples/state_encode 100000
//!     valgrind --tool=callgrind target/release/examples/state_encode 100000 decode
//!
//! The callgrind total divided by the count is instructions per state (plus the
//! set-up, a few thousand instructions in all: take the difference of two counts).

use std::hint::black_box;
use std::time::Instant;

use cairn_core::loyalty::member::{Grant, Lot, Member, Progress, Receipt};
use cairn_core::state::{Journey, Run, State, Trigger};
use cairn_core::Value;

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn member() -> Member {
    let mut m = Member { joined_ms: 1_700_000_000_000, qualifying: 1_250, non_qualifying: 40, tier: "gold".into(), birthday: "04-12".into(), ..Member::default() };
    for i in 0..3i64 {
        let at = 1_700_000_000_000 + i * 86_400_000;
        m.lots.push(Lot { kind: (i % 2) as u8, points: 100 + i, earned_ms: at, available_ms: 0, expires_ms: at + 31_536_000_000, receipt: format!("R-{i}") });
        m.receipts.push(Receipt { key: 0x9e37_79b9_7f4a_7c15 ^ i as u64, ts: at, cents: 12_999, refunded_cents: 0, earned: [130, 0], reversed: [0, 0] });
    }
    m.progress.insert("spend-200".into(), Progress { spent: 38_997, transactions: 3, carry: 1_997, ..Progress::default() });
    m.progress.insert("weekly".into(), Progress { counted: vec![1_700_000_000_000, 1_700_086_400_000], period: 1_699_920_000_000, uses: 2, ..Progress::default() });
    m.rewards.push(Grant { code: "K7Q2-MX9P".into(), reward: "coffee".into(), rule: "spend-200".into(), granted_ms: 1_700_100_000_000, expires_ms: 0, redeemed_ms: 0, redeemed_at: String::new() });
    m
}

fn state() -> State {
    let mut st = State { events: 42, last_ts: 1_700_200_000_000, last_run: 7, ..State::default() };
    st.profile.insert("email".into(), s("ada@example.com"));
    st.profile.insert("first_name".into(), s("Ada"));
    st.profile.insert("time_zone".into(), s("Europe/Rome"));
    st.loyalty.insert("club".into(), member());
    for i in 0..10u64 {
        st.remember(&format!("evt-{:06}", 1000 + i), 5_000 + i);
    }
    let attrs = Value::Map(vec![("amount".into(), Value::Int(4_200)), ("sku".into(), s("ABC-123")), ("gift".into(), Value::Bool(false))]);
    let trigger = Trigger { id: "evt-001009".into(), kind: "cart".into(), ts: 1_700_200_000_000, seq: 5_009, attrs, source: None };
    st.runs.push(Run { id: 7, program: "abandoned-cart".into(), version: 3, node: "wait-1h".into(), entered_ms: 1_700_200_000_000, wake_ms: 1_700_203_600_000, trigger });
    st.journeys.insert("abandoned-cart".into(), Journey { entries: 4, last_entry_ms: 1_700_200_000_000, conversions: 1 });
    st.facts.entry_or_default(0x51f0_e1c3).insert(String::new(), vec![1_700_000_000_000, 1_700_200_000_000]);
    st.sends.insert("email".into(), vec![1_700_100_000_000]);
    st
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().expect("a count"));
    let decode = match args.next().as_deref() {
        None => false,
        Some("decode") => true,
        Some(other) => panic!("unknown mode {other:?} (expected `decode`)"),
    };
    let st = state();
    let stored = st.encode();
    let t = Instant::now();
    for _ in 0..n {
        if decode {
            black_box(State::decode("c", black_box(&stored)).expect("a valid state"));
        } else {
            black_box(black_box(&st).encode());
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    let what = if decode { "decode" } else { "encode" };
    println!("{} B per state, {ns:.0} ns per {what} ({n} {what}s)", stored.len());
}
