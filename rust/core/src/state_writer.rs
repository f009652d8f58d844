//! The contact state written straight into msgpack.
//!
//! Every batch re-encodes the state of every contact it touches. Through serde
//! and rmp-serde a 719-byte state (`examples/state_encode.rs`) cost ~13.7 k
//! instructions, mostly per-element dispatch (the `Tuple` serializer's byte-array
//! check, marker conversions); written directly, ~6.1 k.
//!
//! The bytes are exactly what rmp-serde's compact serializer writes from the
//! `Serialize` derives, which stay for the named form (`State::encode_named`):
//! structs as arrays of all their fields in declaration order, tuples and fixed
//! arrays as arrays, `VecMap`s as maps, `None` as nil, `Some(x)` as `x`, integers
//! in their smallest form. No type in the state is an enum (other than `Value`,
//! written by `msgpack::write_value`), none skips a field. `State::write` checks
//! itself against serde in debug builds, so every test state pins it.

use crate::loyalty::member::{Grant, Lot, Member, Progress, Receipt};
use crate::msgpack::{write_array_len, write_bool, write_int, write_map_len, write_nil, write_str, write_uint, write_value};
use crate::state::{Journey, Run, State, Trigger};
use crate::value::Value;
use crate::vecmap::VecMap;

/// A value that appends its compact msgpack form: the state's parts, outbox
/// effects (`effect.rs`), ledger rows (`loyalty/book.rs`).
pub(crate) trait Pack {
    fn pack(&self, out: &mut Vec<u8>);
}

/// Append `value` by its direct writer. Debug builds check the bytes against
/// rmp-serde's from its `Serialize` impl, so every row a test writes pins the writer.
pub(crate) fn pack_checked<T: Pack + serde::Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    value.pack(out);
    debug_assert_eq!(out[start..], crate::value::encode_compact(value)[..], "the direct writer must write what serde writes");
}

/// A struct's fields as an array, in the order given (declaration order). Callers
/// destructure the struct first, so a new field fails to compile until written.
macro_rules! fields {
    ($out:ident; $($f:ident),+ $(,)?) => {{
        $crate::msgpack::write_array_len($out, [$(stringify!($f)),+].len());
        $($f.pack($out);)+
    }};
}
pub(crate) use fields;

// Rows borrow most of what they write: `&str`, `&Value`, `&Option<String>`.
impl<T: Pack + ?Sized> Pack for &T {
    fn pack(&self, out: &mut Vec<u8>) {
        (**self).pack(out);
    }
}

impl Pack for i64 {
    fn pack(&self, out: &mut Vec<u8>) {
        write_int(out, *self);
    }
}

impl Pack for u64 {
    fn pack(&self, out: &mut Vec<u8>) {
        write_uint(out, *self);
    }
}

impl Pack for u32 {
    fn pack(&self, out: &mut Vec<u8>) {
        write_uint(out, u64::from(*self));
    }
}

impl Pack for usize {
    fn pack(&self, out: &mut Vec<u8>) {
        write_uint(out, *self as u64);
    }
}

impl Pack for u8 {
    fn pack(&self, out: &mut Vec<u8>) {
        write_uint(out, u64::from(*self));
    }
}

impl Pack for bool {
    fn pack(&self, out: &mut Vec<u8>) {
        write_bool(out, *self);
    }
}

impl Pack for str {
    fn pack(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl Pack for String {
    fn pack(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl Pack for Value {
    fn pack(&self, out: &mut Vec<u8>) {
        write_value(out, self);
    }
}

impl<T: Pack> Pack for Option<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.pack(out),
            None => write_nil(out),
        }
    }
}

// rmp-serde writes `Vec<u8>` as bin only when told to (`BytesMode`); the state is
// written in the default mode, where any `Vec` is an array.
impl<T: Pack> Pack for Vec<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        write_array_len(out, self.len());
        for v in self {
            v.pack(out);
        }
    }
}

impl<T: Pack, const N: usize> Pack for [T; N] {
    fn pack(&self, out: &mut Vec<u8>) {
        write_array_len(out, N);
        for v in self {
            v.pack(out);
        }
    }
}

impl<A: Pack, B: Pack> Pack for (A, B) {
    fn pack(&self, out: &mut Vec<u8>) {
        let (a, b) = self;
        fields!(out; a, b);
    }
}

impl<A: Pack, B: Pack, C: Pack> Pack for (A, B, C) {
    fn pack(&self, out: &mut Vec<u8>) {
        let (a, b, c) = self;
        fields!(out; a, b, c);
    }
}

impl<K: Pack + Ord, V: Pack> Pack for VecMap<K, V> {
    fn pack(&self, out: &mut Vec<u8>) {
        write_map_len(out, self.len());
        for (k, v) in self.iter() {
            k.pack(out);
            v.pack(out);
        }
    }
}

impl Pack for State {
    fn pack(&self, out: &mut Vec<u8>) {
        let State { v, profile, events, ledger_seq, last_ts, loyalty, recent, spilled, runs, last_run, journeys, facts, sends } = self;
        fields!(out; v, profile, events, ledger_seq, last_ts, loyalty, recent, spilled, runs, last_run, journeys, facts, sends);
    }
}

impl Pack for Member {
    fn pack(&self, out: &mut Vec<u8>) {
        let Member {
            joined_ms, qualifying, non_qualifying, pending, tier, vip, birthday, lots, receipts, progress, rewards,
            wake_ms, active_ms, vip_noted,
        } = self;
        fields!(out;
            joined_ms, qualifying, non_qualifying, pending, tier, vip, birthday, lots, receipts, progress, rewards,
            wake_ms, active_ms, vip_noted,
        );
    }
}

impl Pack for Lot {
    fn pack(&self, out: &mut Vec<u8>) {
        let Lot { kind, points, earned_ms, available_ms, expires_ms, receipt } = self;
        fields!(out; kind, points, earned_ms, available_ms, expires_ms, receipt);
    }
}

impl Pack for Receipt {
    fn pack(&self, out: &mut Vec<u8>) {
        let Receipt { key, ts, cents, refunded_cents, earned, reversed } = self;
        fields!(out; key, ts, cents, refunded_cents, earned, reversed);
    }
}

impl Pack for Progress {
    fn pack(&self, out: &mut Vec<u8>) {
        let Progress { spent, quantity, transactions, carry, window, counted, period, uses, fired } = self;
        fields!(out; spent, quantity, transactions, carry, window, counted, period, uses, fired);
    }
}

impl Pack for Grant {
    fn pack(&self, out: &mut Vec<u8>) {
        let Grant { code, reward, rule, granted_ms, expires_ms, redeemed_ms, redeemed_at } = self;
        fields!(out; code, reward, rule, granted_ms, expires_ms, redeemed_ms, redeemed_at);
    }
}

impl Pack for Run {
    fn pack(&self, out: &mut Vec<u8>) {
        let Run { id, program, version, node, entered_ms, wake_ms, trigger } = self;
        fields!(out; id, program, version, node, entered_ms, wake_ms, trigger);
    }
}

impl Pack for Trigger {
    fn pack(&self, out: &mut Vec<u8>) {
        let Trigger { id, kind, ts, seq, attrs, source } = self;
        fields!(out; id, kind, ts, seq, attrs, source);
    }
}

impl Pack for Journey {
    fn pack(&self, out: &mut Vec<u8>) {
        let Journey { entries, last_entry_ms, conversions } = self;
        fields!(out; entries, last_entry_ms, conversions);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::value::encode_compact;

    /// Integers at every msgpack size boundary, both sides, negatives included.
    pub(crate) const INTS: [i64; 22] = [
        0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX as i64, u32::MAX as i64 + 1, i64::MAX,
        -1, -32, -33, -128, -129, -32_768, -32_769, i32::MIN as i64, i32::MIN as i64 - 1, i64::MIN, -5,
    ];
    pub(crate) const UINTS: [u64; 12] = [0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX as u64, u32::MAX as u64 + 1, i64::MAX as u64 + 1, u64::MAX];

    /// Strings of every str form: fixstr, str 8 (>31 bytes), str 16 (>255), str 32.
    pub(crate) fn strings() -> Vec<String> {
        vec![String::new(), "é".into(), "a".repeat(31), "b".repeat(32), "c".repeat(255), "d".repeat(256), "e".repeat(65_536)]
    }

    pub(crate) fn attrs() -> Value {
        let mut v = vec![Value::Nil, Value::Bool(true), Value::Bool(false), Value::F64(1.5), Value::F64(-0.0), Value::F64(f64::MAX), Value::F64(f64::NEG_INFINITY)];
        v.extend(INTS.iter().map(|i| Value::Int(*i)));
        v.push(Value::UInt(u64::MAX));
        v.push(Value::Bin(vec![0, 200, 255]));
        v.extend(strings().into_iter().map(|s| Value::Str(s.into())));
        let nested = Value::Map(vec![("list".into(), Value::Array(v.clone())), ("empty".into(), Value::Map(vec![]))]);
        Value::Map(vec![("all".into(), Value::Array(v)), ("nested".into(), nested), ("n".into(), Value::Int(-40))])
    }

    fn grant(code: &str, expires_ms: i64, redeemed_ms: i64, redeemed_at: &str) -> Grant {
        let (reward, rule) = ("coffee".into(), "spend-200".into());
        Grant { code: code.into(), reward, rule, granted_ms: 1_700_000_000_000, expires_ms, redeemed_ms, redeemed_at: redeemed_at.into() }
    }

    pub(crate) fn member() -> Member {
        let mut m = Member {
            joined_ms: -1,
            qualifying: 1_250,
            non_qualifying: i64::MIN,
            pending: [40, -33],
            tier: "gold".into(),
            vip: true,
            birthday: "1990-04-12".into(),
            wake_ms: i64::MAX,
            vip_noted: true,
            ..Member::default()
        };
        for (i, (n, s)) in INTS.iter().zip(strings().into_iter().cycle()).enumerate() {
            m.lots.push(Lot { kind: (i % 2) as u8, points: *n, earned_ms: -n.saturating_abs(), available_ms: *n, expires_ms: 0, receipt: s });
        }
        m.lots.push(Lot { kind: u8::MAX, points: 1, earned_ms: 2, available_ms: 3, expires_ms: 4, receipt: "R".into() });
        for (k, n) in UINTS.iter().zip(INTS) {
            m.receipts.push(Receipt { key: *k, ts: n, cents: n / 2, refunded_cents: -n / 3, earned: [n, 1], reversed: [0, n] });
        }
        let window = vec![(1, -2, 300), (i64::MIN, i64::MAX, 0)];
        let spend = Progress { spent: 38_997, quantity: 300, transactions: 3, carry: -129, window, counted: INTS.to_vec(), period: 65_536, uses: u32::MAX, fired: 2026 };
        m.progress.insert("spend-200".into(), spend);
        m.progress.insert("weekly".into(), Progress::default());
        m.rewards = vec![grant("ACTIVE", 0, 0, ""), grant("REDEEMED", 0, 1_700_100_000_000, "store MI"), grant("EXPIRED", 1_700_050_000_000, 0, "")];
        m.active_ms.insert("purchase".into(), 1_700_000_000_000);
        m.active_ms.insert("visit".into(), 0);
        m
    }

    fn run(id: u64, source: Option<String>, attrs: Value) -> Run {
        let trigger = Trigger { id: format!("evt-{id}"), kind: "cart".into(), ts: -1, seq: u64::MAX, attrs, source };
        Run { id, program: "abandoned-cart".into(), version: 3, node: "w".repeat(40), entered_ms: 1_700_000_000_000, wake_ms: i64::MIN, trigger }
    }

    /// Every field and every nested variant populated, with lengths past the fix
    /// forms: arrays and maps of 16+ and 65,536 entries, strings of every form.
    pub(crate) fn full_state() -> State {
        let mut st = State { events: u64::MAX, ledger_seq: 1, last_ts: i64::MAX, spilled: 128, last_run: 65_536, ..State::default() };
        let fields = [attrs(), Value::Nil, Value::Str("x".repeat(300).into()), Value::Int(-33)].into_iter().chain((0..16).map(Value::Int));
        for (i, v) in fields.enumerate() {
            st.profile.insert(format!("field-{i:02}"), v);
        }
        st.loyalty.insert("club".into(), member());
        st.loyalty.insert("empty".into(), Member::default());
        for (i, u) in UINTS.iter().enumerate() {
            st.recent.push((format!("evt-{i}-{}", "x".repeat(i * 25)), *u));
        }
        st.runs.push(run(1, Some("s".repeat(300)), attrs()));
        st.runs.push(run(u64::MAX, None, Value::Array(vec![])));
        st.journeys.insert("abandoned-cart".into(), Journey { entries: 4, last_entry_ms: -1, conversions: u64::MAX });
        st.journeys.insert("welcome".into(), Journey::default());
        for (k, u) in UINTS.iter().enumerate() {
            let by_value = st.facts.entry_or_default(*u);
            for s in strings().into_iter().take(k + 1) {
                by_value.insert(s, INTS[..k].to_vec());
            }
        }
        let big = st.facts.entry_or_default(7);
        for i in 0..65_536 {
            big.insert(format!("v{i:05}"), vec![i]);
        }
        st.sends.insert("email".into(), (0..65_536).collect());
        st.sends.insert("sms".into(), INTS.to_vec());
        st.sends.insert("web".into(), vec![]);
        st
    }

    /// The writer alone: `State::encode` and `EventRows::push_packed` would also
    /// run the debug check.
    pub(crate) fn written<T: Pack>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        v.pack(&mut out);
        out
    }

    #[test]
    fn writes_what_rmp_serde_writes() {
        let st = full_state();
        let bytes = written(&st);
        assert_eq!(bytes, encode_compact(&st));
        assert_eq!(State::decode("c", &bytes).unwrap(), st);
        assert_eq!(st.encode(), bytes);
        let empty = State::default();
        assert_eq!(written(&empty), encode_compact(&empty));
        // Not a version this build reads, but still written the same.
        let odd = State { v: u32::MAX, ..State::default() };
        assert_eq!(written(&odd), encode_compact(&odd));
    }

    #[test]
    fn writes_the_fixed_forms_of_a_small_state() {
        let mut st = State::default();
        st.recent.push(("e1".into(), 5));
        // [v, {}, events, ledger_seq, last_ts, {}, [["e1", 5]], spilled, [], last_run, {}, {}, {}]
        let want = [0x9d, 0x01, 0x80, 0x00, 0x01, 0x00, 0x80, 0x91, 0x92, 0xa2, b'e', b'1', 0x05, 0x00, 0x90, 0x00, 0x80, 0x80, 0x80];
        assert_eq!(written(&st), want);
    }
}
