//! Rows for one LMDB table, packed in one buffer.
//!
//! A batch produces several rows per event (state, seen, history, ledger, outbox);
//! one growing buffer per table instead of two `Vec`s per row keeps the hot path
//! free of per-row allocations.

use serde::Serialize;

use crate::state_writer::{pack_checked, Pack};

/// (key, value) rows stored back to back in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    buf: Vec<u8>,
    /// Per row: (start of key, end of key = start of value, end of value).
    spans: Vec<(usize, usize, usize)>,
}

impl Rows {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        Rows { buf: Vec::with_capacity(bytes), spans: Vec::with_capacity(rows) }
    }

    /// Append a row whose key is `key` parts concatenated and whose value is `value`
    /// encoded as a msgpack named map.
    pub fn push<T: Serialize + ?Sized>(&mut self, key: &[&[u8]], value: &T) {
        let start = self.buf.len();
        for part in key {
            self.buf.extend_from_slice(part);
        }
        let key_end = self.buf.len();
        value
            .serialize(&mut rmp_serde::Serializer::new(&mut self.buf).with_struct_map())
            .expect("encoding to a Vec cannot fail");
        self.spans.push((start, key_end, self.buf.len()));
    }

    /// Append a row whose value `write` appends to the buffer itself.
    pub fn push_with(&mut self, key: &[&[u8]], write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        for part in key {
            self.buf.extend_from_slice(part);
        }
        let key_end = self.buf.len();
        write(&mut self.buf);
        self.spans.push((start, key_end, self.buf.len()));
    }

    /// Append a row with a raw value.
    pub fn push_raw(&mut self, key: &[&[u8]], value: &[u8]) {
        let start = self.buf.len();
        for part in key {
            self.buf.extend_from_slice(part);
        }
        let key_end = self.buf.len();
        self.buf.extend_from_slice(value);
        self.spans.push((start, key_end, self.buf.len()));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// All the rows as one value (a batch's entry in the state log: one LMDB put
    /// instead of one per row): per row the key's and the value's lengths (4 bytes
    /// BE each), then the key and the value. `Rows::unpack` reads it back.
    pub fn packed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len() + 8 * self.len());
        for (k, v) in self.iter() {
            // u32: a row is a state or an event's record, far below 4 GB.
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        out
    }

    /// The rows `packed` wrote, or what is wrong with `packed`.
    pub fn unpack(mut packed: &[u8]) -> Result<Rows, String> {
        let mut rows = Rows::with_capacity(0, packed.len());
        while !packed.is_empty() {
            let at = rows.len();
            let [k0, k1, k2, k3, v0, v1, v2, v3, rest @ ..] = packed else {
                return Err(format!("row {at}: {} bytes left, not the 8 of two lengths", packed.len()));
            };
            let (k, v) = (u32::from_be_bytes([*k0, *k1, *k2, *k3]) as usize, u32::from_be_bytes([*v0, *v1, *v2, *v3]) as usize);
            if rest.len() < k + v {
                return Err(format!("row {at}: {} bytes left for a {k}-byte key and a {v}-byte value", rest.len()));
            }
            rows.push_raw(&[&rest[..k]], &rest[k..k + v]);
            packed = &rest[k + v..];
        }
        Ok(rows)
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Row `i` as (key, value).
    pub fn get(&self, i: usize) -> (&[u8], &[u8]) {
        let (a, b, c) = self.spans[i];
        (&self.buf[a..b], &self.buf[b..c])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|&(a, b, c)| (&self.buf[a..b], &self.buf[b..c]))
    }

    /// Owned copies, for tests and tools.
    pub fn to_vec(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }
}

/// Where one event's rows of an append-only table go: keys are the event's history
/// sequence (8 bytes BE) then the row's index within the event (4 bytes BE), so
/// they only grow and the table is written append-only, in creation order. Used by
/// the outbox and the loyalty ledger; the event's sequence links both back to it.
pub struct EventRows<'r> {
    pub rows: &'r mut Rows,
    pub seq: u64,
    /// Length of `rows` when the event started.
    pub first: usize,
}

impl EventRows<'_> {
    /// The key of the event's next row.
    fn next_key(&self) -> [u8; 12] {
        // u32: more rows than that from one event cannot be defined.
        let index = (self.rows.len() - self.first) as u32;
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&self.seq.to_be_bytes());
        key[8..].copy_from_slice(&index.to_be_bytes());
        key
    }

    /// Append the event's next row, `value` encoded as a msgpack named map (`Rows::push`).
    pub fn push<T: Serialize + ?Sized>(&mut self, value: &T) {
        let key = self.next_key();
        self.rows.push(&[&key], value);
    }

    /// Append the event's next row, `value` written compactly (structs as arrays)
    /// by its direct writer (`pack_checked`).
    pub(crate) fn push_packed<T: Pack + Serialize>(&mut self, value: &T) {
        let key = self.next_key();
        self.rows.push_with(&[&key], |out| pack_checked(value, out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let mut r = Rows::default();
        r.push_raw(&[b"a", b"\0", b"1"], b"xyz");
        r.push(&[b"k"], &7u8);
        assert_eq!(r.len(), 2);
        assert_eq!(r.get(0), (&b"a\x001"[..], &b"xyz"[..]));
        assert_eq!(r.get(1), (&b"k"[..], &[7u8][..]));
        assert_eq!(r.to_vec()[1], (b"k".to_vec(), vec![7u8]));
        let packed = r.packed();
        assert_eq!(&packed[..11], b"\0\0\0\x03\0\0\0\x03a\x001", "lengths, then the key");
        assert_eq!(Rows::unpack(&packed).unwrap(), r);
        assert_eq!(Rows::unpack(&[]).unwrap().len(), 0);
        assert!(Rows::unpack(&packed[..packed.len() - 1]).unwrap_err().contains("row 1: 1 bytes left for a 1-byte key and a 1-byte value"));
        assert!(Rows::unpack(&packed[..5]).unwrap_err().contains("row 0: 5 bytes left"));
    }

    #[test]
    fn event_rows_are_keyed_by_sequence_then_index() {
        let mut r = Rows::default();
        r.push_raw(&[b"earlier"], b"");
        let mut at = EventRows { first: r.len(), rows: &mut r, seq: 9 };
        at.push(&1u8);
        at.push_packed(&2u8);
        assert_eq!(r.get(1).0, &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0][..]);
        assert_eq!(r.get(2).0, &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1][..]);
    }
}
