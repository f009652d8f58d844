//! A direct msgpack writer for the hot path: `Value`s, history rows, states.
//!
//! Serde with rmp-serde spends ~150 instructions per element of an event's
//! attributes (a 5-line receipt is ~70 elements); writing the same bytes straight
//! into the row buffer costs a fraction of that. The output is byte for byte what
//! rmp-serde writes (smallest int and length forms, f64 always as float 64),
//! which a test pins.

use crate::value::Value;

fn len(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, m16: u8, m32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(m16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Append a string: fixstr, str 8, 16 or 32 by length.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= u8::MAX as usize {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else {
        len(out, n, 0, 0, 0xda, 0xdb);
    }
    out.extend_from_slice(s.as_bytes());
}

/// Append an unsigned integer in its smallest form.
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= u8::MAX as u64 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u16::MAX as u64 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u32::MAX as u64 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Append a signed integer in its smallest form (unsigned forms when not negative,
/// as rmp-serde writes them).
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Append an array header for `n` elements.
pub fn write_array_len(out: &mut Vec<u8>, n: usize) {
    len(out, n, 0x90, 15, 0xdc, 0xdd);
}

/// Append a map header for `n` entries.
pub fn write_map_len(out: &mut Vec<u8>, n: usize) {
    len(out, n, 0x80, 15, 0xde, 0xdf);
}

/// Append nil (also what rmp-serde writes for `None` and `()`).
pub fn write_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// Append `true` or `false`.
pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xc3 } else { 0xc2 });
}

/// Append a float, always as float 64 (rmp-serde never shortens one).
pub fn write_f64(out: &mut Vec<u8>, f: f64) {
    out.push(0xcb);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

/// Append `v` as msgpack.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Nil => write_nil(out),
        Value::Bool(b) => write_bool(out, *b),
        Value::Int(i) => write_int(out, *i),
        Value::UInt(u) => write_uint(out, *u),
        Value::F64(f) => write_f64(out, *f),
        Value::Str(s) => write_str(out, s),
        Value::Bin(b) => {
            if b.len() <= u8::MAX as usize {
                out.extend_from_slice(&[0xc4, b.len() as u8]);
            } else {
                len(out, b.len(), 0, 0, 0xc5, 0xc6);
            }
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_array_len(out, items.len());
            for item in items {
                write_value(out, item);
            }
        }
        Value::Map(entries) => {
            write_map_len(out, entries.len());
            for (k, item) in entries {
                write_str(out, k);
                write_value(out, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::encode_compact;

    #[test]
    fn writes_what_rmp_serde_writes() {
        let long = "x".repeat(300);
        let mut values = vec![
            Value::Nil,
            Value::Bool(true),
            Value::Bool(false),
            Value::F64(1.5),
            Value::Str("short".into()),
            Value::Str("y".repeat(40).into()),
            Value::Str(long.clone().into()),
            Value::Str("z".repeat(70_000).into()),
            Value::Bin(vec![1, 2, 3]),
            Value::Bin(vec![7; 300]),
            Value::UInt(u64::MAX),
            Value::Array((0..20).map(Value::Int).collect()),
            Value::Map((0..20).map(|i| (format!("k{i}").into(), Value::Int(-i))).collect()),
        ];
        for i in [0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX as i64, u32::MAX as i64 + 1, i64::MAX, -1, -32, -33, -128, -129, -32_768, -32_769, i32::MIN as i64, i32::MIN as i64 - 1, i64::MIN] {
            values.push(Value::Int(i));
        }
        values.push(Value::Map(vec![("lines".into(), Value::Array(values.clone())), ("s".into(), Value::Str(long.into()))]));
        for v in &values {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(out, encode_compact(v), "{v:?}");
        }
    }
}
