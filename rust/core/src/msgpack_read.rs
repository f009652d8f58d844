//! A direct msgpack reader for the hot path: batch parts, stored states
//! (`state_reader`) and wire frames (`wire::fast`).
//!
//! rmp-serde's reading deserializer copies every string into a buffer of its own
//! before a `Value` copies it again, and goes through serde's visitors for every
//! element: decoding a batch of 5-line receipts cost more than applying it. This
//! reader takes strings straight from the slice. It accepts only the forms the
//! engine's own writers produce and answers None for anything else (extension
//! types, non-string map keys, invalid UTF-8, nesting deeper than asked, lengths
//! longer than the input), so that a caller can hand those bytes to serde, which
//! decides as it always did. What it does read, it reads as `Value`'s serde
//! `Deserialize` would.

use crate::value::Value;

/// Most elements reserved up front for one array or map (lengths are untrusted).
pub(crate) const MAX_PREALLOC: usize = 1024;

/// Reads msgpack from `buf`, starting at `pos`. Copying one is how to look ahead.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pub pos: usize,
    /// Set once a string, integer, float, bin, array or map read by `str`, `int`,
    /// `uint` or `value` was not in the form `msgpack::write_value` (and
    /// rmp-serde) writes it: smallest int and length forms, floats as float 64.
    /// While it stays false, the bytes read are exactly those writing the values
    /// again would give. The reader never clears it.
    pub loose: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, loose: false }
    }

    /// Note whether length `n`, written after marker `m`, was in its smallest form.
    fn note_len(&mut self, m: u8, n: usize) {
        let min = match m {
            0xd9 => 32,
            0xc5 | 0xda => 256,
            0xdc | 0xde => 16,
            0xc6 | 0xdb | 0xdd | 0xdf => 65_536,
            _ => 0,
        };
        self.loose |= n < min;
    }

    /// Everything read?
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// How many bytes are left to read.
    pub fn rest(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes from `start` to where the reader is.
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }

    /// The next value's marker byte, not read.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(bytes)
    }

    fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn len_of(&mut self, marker: u8) -> Option<usize> {
        Some(match marker {
            0xc4 | 0xd9 => self.byte()? as usize,
            0xc5 | 0xda | 0xdc | 0xde => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// A container's length, refused when the input cannot hold that many elements.
    fn count(&mut self, marker: u8) -> Option<usize> {
        let n = self.len_of(marker)?;
        (n <= self.buf.len() - self.pos).then_some(n)
    }

    /// An array header's length.
    pub fn array_len(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x90..=0x9f => Some((m & 0x0f) as usize),
            m @ (0xdc | 0xdd) => self.count(m),
            _ => None,
        }
    }

    /// A map header's length.
    pub fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x80..=0x8f => Some((m & 0x0f) as usize),
            m @ (0xde | 0xdf) => self.count(m),
            _ => None,
        }
    }

    #[inline]
    fn str_body(&mut self, n: usize) -> Option<&'a str> {
        let bytes = self.take(n)?;
        if bytes.is_ascii() {
            // SAFETY: ASCII is valid UTF-8. Most strings of an event (keys, codes,
            // ids) are short and ASCII, where `from_utf8`'s set-up cost the most.
            return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        utf8(bytes)
    }

    /// A string (str forms only).
    pub fn str(&mut self) -> Option<&'a str> {
        match self.byte()? {
            m @ 0xa0..=0xbf => self.str_body((m & 0x1f) as usize),
            m @ (0xd9..=0xdb) => {
                let n = self.len_of(m)?;
                self.note_len(m, n);
                self.str_body(n)
            }
            _ => None,
        }
    }

    /// Is the next value nil? Reads it when it is.
    pub fn nil(&mut self) -> bool {
        let nil = self.buf.get(self.pos) == Some(&0xc0);
        self.pos += usize::from(nil);
        nil
    }

    /// A nil, or a string.
    pub fn opt_str(&mut self) -> Option<Option<&'a str>> {
        if self.nil() {
            return Some(None);
        }
        self.str().map(Some)
    }

    /// A bool (serde reads nothing else into one).
    pub fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0xc2 => Some(false),
            0xc3 => Some(true),
            _ => None,
        }
    }

    /// An integer (any int form) that fits an i64.
    pub fn int(&mut self) -> Option<i64> {
        let m = self.byte()?;
        i64::try_from(self.int_body(m)?).ok()
    }

    /// An integer (any int form) that fits a u64: what serde reads into an
    /// unsigned field (a negative value is its error).
    pub fn uint(&mut self) -> Option<u64> {
        let m = self.byte()?;
        u64::try_from(self.int_body(m)?).ok()
    }

    /// The integer after marker `m`, for the int forms only (an i128 holds both
    /// the i64 and the u64 ranges).
    fn int_body(&mut self, m: u8) -> Option<i128> {
        // In its smallest form, an unsigned one (0xcc..=0xcf) holds what the one
        // before cannot, a signed one (the writers' form for negative values only)
        // what is below the one before.
        Some(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => {
                let v = self.byte()?;
                self.loose |= v <= 0x7f;
                i128::from(v)
            }
            0xcd => {
                let v = u16::from_be_bytes(self.be()?);
                self.loose |= v <= 0xff;
                i128::from(v)
            }
            0xce => {
                let v = u32::from_be_bytes(self.be()?);
                self.loose |= v <= 0xffff;
                i128::from(v)
            }
            0xcf => {
                let v = u64::from_be_bytes(self.be()?);
                self.loose |= v <= 0xffff_ffff;
                i128::from(v)
            }
            0xd0 => {
                let v = self.byte()? as i8;
                self.loose |= v >= -32;
                i128::from(v)
            }
            0xd1 => {
                let v = i16::from_be_bytes(self.be()?);
                self.loose |= v >= -128;
                i128::from(v)
            }
            0xd2 => {
                let v = i32::from_be_bytes(self.be()?);
                self.loose |= v >= -32_768;
                i128::from(v)
            }
            0xd3 => {
                let v = i64::from_be_bytes(self.be()?);
                self.loose |= v >= i64::from(i32::MIN);
                i128::from(v)
            }
            _ => return None,
        })
    }

    /// One value, with at most `depth` levels of arrays and maps (a scalar is
    /// depth 0; 0 allows scalars only).
    pub fn value(&mut self, depth: usize) -> Option<Value> {
        let m = self.byte()?;
        Some(match m {
            0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff => {
                let i = self.int_body(m)?;
                // Not an i64: above i64::MAX, a u64.
                i64::try_from(i).map_or_else(|_| Value::UInt(i as u64), Value::Int)
            }
            0x80..=0x8f => self.map((m & 0x0f) as usize, depth)?,
            0x90..=0x9f => self.array((m & 0x0f) as usize, depth)?,
            0xa0..=0xbf => Value::Str(self.str_body((m & 0x1f) as usize)?.into()),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len_of(m)?;
                self.note_len(m, n);
                Value::Bin(self.take(n)?.to_vec())
            }
            0xca => {
                self.loose = true; // written back as a float 64
                Value::F64(f64::from(f32::from_be_bytes(self.be()?)))
            }
            0xcb => Value::F64(f64::from_be_bytes(self.be()?)),
            0xd9..=0xdb => {
                let n = self.len_of(m)?;
                self.note_len(m, n);
                Value::Str(self.str_body(n)?.into())
            }
            0xdc | 0xdd => {
                let n = self.count(m)?;
                self.note_len(m, n);
                self.array(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.count(m)?;
                self.note_len(m, n);
                self.map(n, depth)?
            }
            // 0xc1 (never used) and the extension types.
            _ => return None,
        })
    }

    /// Skip one value that `value(depth)` would read (None where it answers None),
    /// and tell whether its bytes are the ones `msgpack::write_value` (and
    /// rmp-serde) write for the value read: smallest int and length forms, floats
    /// as float 64. When they are, the bytes can be copied instead of read and
    /// written again.
    #[inline]
    pub fn skip(&mut self, depth: usize) -> Option<bool> {
        // The usual scalars of an event here, the rest (and nesting) in `skip_more`.
        match self.peek()? {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {
                self.pos += 1;
                Some(true)
            }
            m @ 0xa0..=0xbf => {
                self.pos += 1;
                self.str_body((m & 0x1f) as usize)?;
                Some(true)
            }
            _ => self.skip_more(depth),
        }
    }

    #[inline(never)]
    fn skip_more(&mut self, depth: usize) -> Option<bool> {
        let m = self.byte()?;
        Some(match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => true,
            0xcc..=0xd3 => smallest_int(m, self.int_body(m)?),
            0x80..=0x8f => self.skip_map((m & 0x0f) as usize, depth)?,
            0x90..=0x9f => self.skip_array((m & 0x0f) as usize, depth)?,
            0xa0..=0xbf => {
                self.str_body((m & 0x1f) as usize)?;
                true
            }
            0xc4..=0xc6 => {
                let n = self.len_of(m)?;
                self.take(n)?;
                smallest_len(m, n)
            }
            // A float 32 reads as an f64, written back as a float 64.
            0xca => {
                self.take(4)?;
                false
            }
            0xcb => {
                self.take(8)?;
                true
            }
            0xd9..=0xdb => {
                let n = self.len_of(m)?;
                self.str_body(n)?;
                smallest_len(m, n)
            }
            0xdc | 0xdd => {
                let n = self.count(m)?;
                self.skip_array(n, depth)? & smallest_len(m, n)
            }
            0xde | 0xdf => {
                let n = self.count(m)?;
                self.skip_map(n, depth)? & smallest_len(m, n)
            }
            _ => return None,
        })
    }

    fn skip_array(&mut self, n: usize, depth: usize) -> Option<bool> {
        let depth = depth.checked_sub(1)?;
        let mut smallest = true;
        for _ in 0..n {
            smallest &= self.skip(depth)?;
        }
        Some(smallest)
    }

    fn skip_map(&mut self, n: usize, depth: usize) -> Option<bool> {
        let depth = depth.checked_sub(1)?;
        let mut smallest = true;
        for _ in 0..n {
            smallest &= self.key()?.1;
            smallest &= self.skip(depth)?;
        }
        Some(smallest)
    }

    /// A map key's bytes (str forms only), not checked to be UTF-8: for a key
    /// compared with known names, which are (the caller checks any other).
    pub fn key_bytes(&mut self) -> Option<&'a [u8]> {
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => (m & 0x1f) as usize,
            m @ (0xd9..=0xdb) => self.len_of(m)?,
            _ => return None,
        };
        self.take(n)
    }

    /// A map key (str forms only), and whether its form is the smallest for its
    /// length.
    #[inline]
    pub fn key(&mut self) -> Option<(&'a str, bool)> {
        match self.byte()? {
            m @ 0xa0..=0xbf => Some((self.str_body((m & 0x1f) as usize)?, true)),
            m @ (0xd9..=0xdb) => {
                let n = self.len_of(m)?;
                Some((self.str_body(n)?, smallest_len(m, n)))
            }
            _ => None,
        }
    }

    fn array(&mut self, n: usize, depth: usize) -> Option<Value> {
        let depth = depth.checked_sub(1)?;
        let mut items = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Some(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Option<Value> {
        let depth = depth.checked_sub(1)?;
        let mut entries = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            let k = self.str()?.into();
            entries.push((k, self.value(depth)?));
        }
        Some(Value::Map(entries))
    }
}

#[cold]
fn utf8(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Is `i`, read after int marker `m`, written in the form `msgpack::write_int`
/// (or `write_uint` above `i64::MAX`) writes it in?
fn smallest_int(m: u8, i: i128) -> bool {
    match m {
        0xcc => i > 0x7f,
        0xcd => i > 0xff,
        0xce => i > 0xffff,
        0xcf => i > 0xffff_ffff,
        0xd0 => i < -32,
        0xd1 => i < -0x80,
        0xd2 => i < -0x8000,
        0xd3 => i < -0x8000_0000,
        _ => true,
    }
}

/// Is length `n`, read after marker `m` (str, bin, array, map forms with a length
/// field), written in the smallest form for it?
fn smallest_len(m: u8, n: usize) -> bool {
    match m {
        0xd9 => n > 31,
        0xdc | 0xde => n > 15,
        0xc5 | 0xda => n > 0xff,
        0xc6 | 0xdb | 0xdd | 0xdf => n > 0xffff,
        // bin 8: bin has no smaller form.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{decode_exact, encode};

    fn read(bytes: &[u8]) -> Option<Value> {
        let mut r = Reader::new(bytes);
        let v = r.value(16)?;
        r.at_end().then_some(v)
    }

    #[test]
    fn reads_what_serde_reads() {
        let long = "é".repeat(200);
        let values = vec![
            Value::Nil,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(127),
            Value::Int(128),
            Value::Int(65_536),
            Value::Int(i64::MAX),
            Value::Int(-1),
            Value::Int(-33),
            Value::Int(-40_000),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::F64(1.5),
            Value::Str(Default::default()),
            Value::Str(long.as_str().into()),
            Value::Str("x".repeat(70_000).into()),
            Value::Bin(vec![1, 2, 3]),
            Value::Array((0..20).map(Value::Int).collect()),
            Value::Map(vec![("lines".into(), Value::Array(vec![Value::Map(vec![(long.into(), Value::F64(-0.25))])]))]),
            Value::Map((0..17).map(|i| (format!("k{i}").into(), Value::Int(i))).collect()),
        ];
        for v in values {
            let bytes = encode(&v);
            assert_eq!(read(&bytes), Some(decode_exact::<Value>(&bytes).unwrap()), "{v:?}");
        }
        // A float 32, which the engine never writes, still reads as serde reads it.
        assert_eq!(read(&[0xca, 0x3f, 0xc0, 0, 0]), Some(Value::F64(1.5)));
    }

    /// `skip` takes what `value` reads, as far, and calls smallest exactly the
    /// bytes `write_value` writes for the value read.
    #[test]
    fn skips_what_it_reads() {
        let v = Value::Map(vec![
            ("ints".into(), Value::Array([0, 127, 128, 255, 256, 65_535, 65_536, -1, -32, -33, -128, -129, i64::MIN, i64::MAX].map(Value::Int).to_vec())),
            ("big".into(), Value::UInt(u64::MAX)),
            ("s".into(), Value::Str("x".repeat(40).into())),
            ("f".into(), Value::F64(1.5)),
            ("b".into(), Value::Bin(vec![1, 2])),
            ("m".into(), Value::Map((0..16).map(|i| (format!("k{i}").into(), Value::Nil)).collect())),
            ("l".into(), Value::Array(vec![Value::Bool(true), Value::Array(vec![Value::Array(vec![])])])),
        ]);
        let bytes = encode(&v);
        // Wider forms, written by hand: each is a value `write_value` writes smaller.
        let wider: [&[u8]; 12] = [
            &[0xcc, 5], &[0xcd, 0, 200], &[0xd1, 1, 0], &[0xd0, 5], &[0xd0, 0xf0], &[0xca, 0x3f, 0xc0, 0, 0],
            &[0xd9, 1, b'a'], &[0xda, 0, 1, b'a'], &[0xc5, 0, 1, 9], &[0xdc, 0, 1, 0xc0], &[0xde, 0, 0], &[0x81, 0xd9, 1, b'k', 0xc0],
        ];
        let inputs = crate::mutants::mutants(&bytes, 20_000).chain(wider.iter().map(|w| w.to_vec())).chain([bytes.clone()]);
        let (mut smallest, mut wide) = (0, 0);
        for input in inputs {
            let (mut a, mut b) = (Reader::new(&input), Reader::new(&input));
            let (read, skipped) = (a.value(4), b.skip(4));
            assert_eq!(read.is_some(), skipped.is_some(), "{input:02x?}");
            let (Some(read), Some(skipped)) = (read, skipped) else { continue };
            assert_eq!(a.pos, b.pos);
            let mut written = Vec::new();
            crate::msgpack::write_value(&mut written, &read);
            assert_eq!(skipped, written == input[..b.pos], "{input:02x?}");
            if skipped { smallest += 1 } else { wide += 1 }
        }
        assert!(smallest > 100 && wide > 100, "{smallest} {wide}");
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        for bytes in [
            &[0xc1][..],                        // never used
            &[0xd4, 1, 2],                      // fixext 1
            &[0x81, 0x01, 0x02],                // an int map key
            &[0xa2, 0xff, 0xfe],                // invalid utf-8
            &[0xdc, 0xff, 0xff],                // a length past the input
            &[0x92, 0x01],                      // truncated
        ] {
            assert_eq!(read(bytes), None, "{bytes:?}");
        }
        // Depth: [[1]] needs 2 levels.
        let nested = encode(&Value::Array(vec![Value::Array(vec![Value::Int(1)])]));
        assert!(Reader::new(&nested).value(2).is_some());
        assert!(Reader::new(&nested).value(1).is_none());
    }
}
