//! The contact state read straight from msgpack: the mirror of `state_writer`.
//!
//! Every batch decodes the stored state of every contact it touches. Through
//! rmp-serde and the derives a 719-byte state (`examples/state_encode.rs decode`)
//! cost ~21 k instructions: a visitor per element, a UTF-8 check per string; read
//! directly, ~14 k, of which ~4 k allocate its 53 strings and vectors.
//!
//! This reads only the compact form `State::write` produces: structs, tuples and
//! fixed arrays as arrays of exactly their fields, `VecMap`s as maps, `None` as
//! nil, strings as str, integers in any int form whose value fits the field (as
//! serde accepts them). Anything else (the named-map form, an older state with
//! fewer fields, bin strings, values nested deeper than `VALUE_DEPTH`, corrupt
//! bytes) reads as None, and `State::decode` hands the bytes to serde, which reads
//! or refuses them as it always did. What it does read equals what serde reads
//! from the same bytes: `State::decode` checks that in debug builds, so every test
//! state pins it. Like serde's decode, it ignores bytes after the state.

use crate::loyalty::member::{Grant, Lot, Member, Progress, Receipt};
use crate::msgpack_read::{Reader, MAX_PREALLOC};
use crate::state::{Journey, Run, State, Trigger};
use crate::value::{Value, MAX_DEPTH};
use crate::vecmap::VecMap;

/// Most levels of arrays and maps read inside a `Value`. Serde counts every
/// enclosing container against `MAX_DEPTH`, and at most 4 enclose a value of the
/// state (a trigger's attrs): below this, serde never refuses the depth; a deeper
/// value goes to serde, which decides.
const VALUE_DEPTH: usize = MAX_DEPTH - 8;

/// A part of the state read from its compact msgpack form; None when the bytes
/// are in any other form.
pub(crate) trait Unpack: Sized {
    fn unpack(r: &mut Reader<'_>) -> Option<Self>;
}

/// A struct from an array of exactly its fields, in the order given (declaration
/// order; a struct expression evaluates its fields in the order written). A new
/// field fails to compile until read. Any other length is not what `State::write`
/// writes: an older state's shorter array takes serde's defaults, through serde.
macro_rules! fields {
    ($r:ident; $T:ident { $($f:ident),+ $(,)? }) => {{
        if $r.array_len()? != [$(stringify!($f)),+].len() {
            return None;
        }
        Some($T { $($f: Unpack::unpack($r)?),+ })
    }};
}

impl Unpack for i64 {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.int()
    }
}

impl Unpack for u64 {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.uint()
    }
}

impl Unpack for u32 {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.uint()?.try_into().ok()
    }
}

impl Unpack for u8 {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.uint()?.try_into().ok()
    }
}

impl Unpack for bool {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.bool()
    }
}

impl Unpack for String {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.str().map(str::to_owned)
    }
}

impl Unpack for Value {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        r.value(VALUE_DEPTH)
    }
}

impl<T: Unpack> Unpack for Option<T> {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        if r.nil() {
            return Some(None);
        }
        T::unpack(r).map(Some)
    }
}

impl<T: Unpack> Unpack for Vec<T> {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        let n = r.array_len()?;
        let mut items = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            items.push(T::unpack(r)?);
        }
        Some(items)
    }
}

impl<T: Unpack + Copy + Default, const N: usize> Unpack for [T; N] {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        if r.array_len()? != N {
            return None;
        }
        let mut items = [T::default(); N];
        for item in &mut items {
            *item = T::unpack(r)?;
        }
        Some(items)
    }
}

impl<A: Unpack, B: Unpack> Unpack for (A, B) {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        if r.array_len()? != 2 {
            return None;
        }
        Some((A::unpack(r)?, B::unpack(r)?))
    }
}

impl<A: Unpack, B: Unpack, C: Unpack> Unpack for (A, B, C) {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        if r.array_len()? != 3 {
            return None;
        }
        Some((A::unpack(r)?, B::unpack(r)?, C::unpack(r)?))
    }
}

impl<K: Unpack + Ord, V: Unpack> Unpack for VecMap<K, V> {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        let n = r.map_len()?;
        let mut entries = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            entries.push((K::unpack(r)?, V::unpack(r)?));
        }
        Some(VecMap::from_read(entries))
    }
}

impl Unpack for State {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; State { v, profile, events, ledger_seq, last_ts, loyalty, recent, spilled, runs, last_run, journeys, facts, sends })
    }
}

impl Unpack for Member {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Member {
            joined_ms, qualifying, non_qualifying, pending, tier, vip, birthday, lots, receipts, progress, rewards,
            wake_ms, active_ms, vip_noted,
        })
    }
}

impl Unpack for Lot {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Lot { kind, points, earned_ms, available_ms, expires_ms, receipt })
    }
}

impl Unpack for Receipt {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Receipt { key, ts, cents, refunded_cents, earned, reversed })
    }
}

impl Unpack for Progress {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Progress { spent, quantity, transactions, carry, window, counted, period, uses, fired })
    }
}

impl Unpack for Grant {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Grant { code, reward, rule, granted_ms, expires_ms, redeemed_ms, redeemed_at })
    }
}

impl Unpack for Run {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Run { id, program, version, node, entered_ms, wake_ms, trigger })
    }
}

impl Unpack for Trigger {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Trigger { id, kind, ts, seq, attrs, source })
    }
}

impl Unpack for Journey {
    fn unpack(r: &mut Reader<'_>) -> Option<Self> {
        fields!(r; Journey { entries, last_entry_ms, conversions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::{write_array_len, write_map_len, write_str, write_uint};
    use crate::state::STATE_VERSION;
    use crate::state_writer::tests::full_state;
    use crate::state_writer::Pack;
    use crate::value::{decode_owned_fast, encode_compact};

    /// The reader alone, all bytes read.
    fn fast(bytes: &[u8]) -> Option<State> {
        State::unpack(&mut Reader::new(bytes))
    }

    fn serde(bytes: &[u8]) -> Result<State, String> {
        decode_owned_fast(bytes)
    }

    /// `State::decode` answers as serde alone did: the same state (compared as
    /// bytes: a flipped byte can make a NaN), or the same error.
    fn same_as_serde(bytes: &[u8]) {
        match (State::decode("c", bytes), serde(bytes)) {
            (Ok(a), Ok(b)) => assert_eq!(encode_compact(&a), encode_compact(&b)),
            (Err(a), Err(b)) => assert_eq!(a.message, format!("cannot decode: {b}")),
            (Err(a), Ok(b)) => assert!(b.v != STATE_VERSION && a.message.contains("version"), "{}", a.message),
            (Ok(_), Err(b)) => panic!("decoded what serde refuses: {b}"),
        }
    }

    /// Every struct of the state once, small enough to mutate byte by byte.
    fn small_state() -> State {
        let mut st = State { events: 9, last_ts: 1_700_000_000_000, spilled: 1, last_run: 3, ..State::default() };
        let attrs = Value::Map(vec![("amount".into(), Value::F64(42.5)), ("tags".into(), Value::Array(vec![Value::Str("é".into()), Value::Nil]))]);
        st.profile.insert("email".into(), Value::Str("ada@example.com".into()));
        st.profile.insert("score".into(), Value::Int(-300));
        let mut m = Member { joined_ms: 5, qualifying: 130, pending: [0, 7], tier: "gold".into(), vip: true, ..Member::default() };
        m.lots.push(Lot { kind: 1, points: 7, earned_ms: 6, available_ms: 9, expires_ms: 0, receipt: "R-1".into() });
        m.receipts.push(Receipt { key: u64::MAX, ts: 6, cents: 12_999, refunded_cents: 0, earned: [130, 7], reversed: [0, 0] });
        m.progress.insert("spend".into(), Progress { spent: 12_999, window: vec![(6, 12_999, 1)], counted: vec![6], uses: 1, ..Progress::default() });
        m.rewards.push(Grant { code: "K7Q2".into(), reward: "coffee".into(), rule: "spend".into(), granted_ms: 6, expires_ms: 0, redeemed_ms: 0, redeemed_at: String::new() });
        m.active_ms.insert("purchase".into(), 6);
        st.loyalty.insert("club".into(), m);
        st.remember("evt-1", 1);
        st.remember("evt-2", 300);
        let trigger = Trigger { id: "evt-2".into(), kind: "cart".into(), ts: 6, seq: 300, attrs, source: Some("web".into()) };
        st.runs.push(Run { id: 3, program: "cart".into(), version: 2, node: "wait".into(), entered_ms: 6, wake_ms: 7, trigger });
        st.journeys.insert("cart".into(), Journey { entries: 1, last_entry_ms: 6, conversions: 0 });
        st.facts.entry_or_default(70_000).insert("MI".into(), vec![-1, 6]);
        st.sends.insert("email".into(), vec![6]);
        st
    }

    #[test]
    fn reads_what_serde_reads() {
        for st in [full_state(), small_state(), State::default()] {
            let bytes = st.encode();
            let read = fast(&bytes).expect("the compact form reads directly");
            assert_eq!(read, st);
            assert_eq!(Ok(read), serde(&bytes));
        }
    }

    #[test]
    fn reads_any_int_form_that_fits_as_serde_does() {
        // [v: i8 1, {}, events: u64 5, ledger_seq: i64 1, last_ts: u32 7, ...]
        let mut bytes = vec![0x9d, 0xd0, 0x01, 0x80, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1, 0xce, 0, 0, 0, 7];
        bytes.extend_from_slice(&[0x80, 0x90, 0x00, 0x90, 0x00, 0x80, 0x80, 0x80]);
        let read = fast(&bytes).expect("int forms that fit read directly");
        assert_eq!((read.events, read.ledger_seq, read.last_ts), (5, 1, 7));
        assert_eq!(Ok(read), serde(&bytes));
        // A negative count: serde's error.
        bytes[4..13].copy_from_slice(&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(fast(&bytes), None);
        same_as_serde(&bytes);
    }

    #[test]
    fn reads_unsorted_maps_as_serde_does() {
        // Profile {b: 1, a: 2, b: 3}: sorted, the last b wins.
        let mut bytes = vec![0x9d, 0x01, 0x83, 0xa1, b'b', 0x01, 0xa1, b'a', 0x02, 0xa1, b'b', 0x03];
        bytes.extend_from_slice(&[0x00, 0x01, 0x00, 0x80, 0x90, 0x00, 0x90, 0x00, 0x80, 0x80, 0x80]);
        let read = fast(&bytes).expect("an unsorted map reads directly");
        assert_eq!(read.profile.iter().map(|(k, v)| (k.as_str(), v.clone())).collect::<Vec<_>>(), [("a", Value::Int(2)), ("b", Value::Int(3))]);
        assert_eq!(Ok(read), serde(&bytes));
    }

    #[test]
    fn other_forms_go_to_serde() {
        let st = small_state();
        // The named map, for readers outside the core.
        let named = st.encode_named();
        assert_eq!(fast(&named), None);
        assert_eq!(State::decode("c", &named).unwrap(), st);
        // A state of an older build: 3 fields, the rest default (ledger_seq to 1).
        let mut old = Vec::new();
        write_array_len(&mut old, 3);
        write_uint(&mut old, 1);
        st.profile.pack(&mut old);
        write_uint(&mut old, 9);
        assert_eq!(fast(&old), None);
        let want = State { profile: st.profile.clone(), events: 9, ..State::default() };
        assert_eq!(State::decode("c", &old).unwrap(), want);
        // A member of an older build (3 fields) inside a current state.
        let mut bytes = Vec::new();
        write_array_len(&mut bytes, 13);
        write_uint(&mut bytes, 1);
        for f in [0x80, 0, 1, 0] {
            bytes.push(f);
        }
        write_map_len(&mut bytes, 1);
        write_str(&mut bytes, "club");
        bytes.extend_from_slice(&[0x93, 0x05, 0x06, 0x07]);
        bytes.extend_from_slice(&[0x90, 0x00, 0x90, 0x00, 0x80, 0x80, 0x80]);
        assert_eq!(fast(&bytes), None);
        let member = Member { joined_ms: 5, qualifying: 6, non_qualifying: 7, ..Member::default() };
        assert_eq!(State::decode("c", &bytes).unwrap().loyalty.get("club"), Some(&member));
        // A string as bin, which serde also reads.
        let mut bin = State::default().encode();
        bin[7] = 0x91;
        bin.splice(8..8, [0x92, 0xc4, 2, b'e', b'1', 5]);
        assert_eq!(fast(&bin), None);
        assert_eq!(State::decode("c", &bin).unwrap().recent, [("e1".to_owned(), 5)]);
        // One field too many: serde's error.
        let mut long = State::default().encode();
        long[0] = 0x9e;
        long.push(0x00);
        assert_eq!(fast(&long), None);
        same_as_serde(&long);
    }

    #[test]
    fn trailing_bytes_are_ignored_as_serde_ignores_them() {
        let st = small_state();
        let mut bytes = st.encode();
        bytes.extend_from_slice(&[0xc1, 0xff]);
        assert_eq!(fast(&bytes).as_ref(), Some(&st));
        same_as_serde(&bytes);
    }

    #[test]
    fn deep_values_read_as_serde_reads_them() {
        let nested = |depth: usize| (0..depth).fold(Value::Int(1), |v, _| Value::Array(vec![v]));
        for depth in VALUE_DEPTH - 2..=MAX_DEPTH {
            let mut st = small_state();
            st.profile.insert("deep".into(), nested(depth));
            st.runs[0].trigger.attrs = nested(depth);
            let bytes = encode_compact(&st);
            assert_eq!(fast(&bytes).is_some(), depth <= VALUE_DEPTH, "{depth}");
            same_as_serde(&bytes);
        }
    }

    #[test]
    fn truncated_states_answer_as_serde_does() {
        let bytes = small_state().encode();
        for n in 0..bytes.len() {
            assert_eq!(fast(&bytes[..n]), None, "{n}");
            same_as_serde(&bytes[..n]);
        }
    }

    #[test]
    fn corrupt_states_answer_as_serde_does() {
        let bytes = small_state().encode();
        for b in crate::mutants::mutants(&bytes, 5_000) {
            same_as_serde(&b);
        }
    }
}
