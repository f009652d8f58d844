//! A msgpack value with a hand-written serde visitor (no untagged enums).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Cap on pre-allocation from untrusted length prefixes.
const MAX_PREALLOC: usize = 1024;

/// Deepest nesting of lists and maps accepted when decoding (bounds stack use).
pub const MAX_DEPTH: usize = 64;

/// A string inside a value: up to 24 bytes are held inline, without an allocation
/// (attribute names and most texts of an event: codes, ids, categories). Decoding a
/// 5-line receipt allocated ~50 strings before.
pub type Text = compact_str::CompactString;

/// A decoded msgpack value. Map keys must be strings; maps keep their order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    /// Only for unsigned integers above `i64::MAX`.
    UInt(u64),
    F64(f64),
    Str(Text),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Text, Value)>),
}

impl Value {
    /// Name of the msgpack type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::F64(_) => "float",
            Value::Str(_) => "str",
            Value::Bin(_) => "bin",
            Value::Array(_) => "list",
            Value::Map(_) => "map",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Numeric view of ints and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::F64(f) => Some(*f),
            _ => None,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::UInt(_) | Value::F64(_))
    }

    /// Look a key up in a map value (linear: attribute maps are small).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => map_get(entries, key),
            _ => None,
        }
    }
}

/// Look a key up in map entries.
pub fn map_get<'a>(entries: &'a [(Text, Value)], key: &str) -> Option<&'a Value> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Readable rendering used in explain traces: strings quoted with single quotes.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::F64(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Bin(b) => write!(f, "<{} bytes>", b.len()),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::F64(x) => s.serialize_f64(*x),
            Value::Str(x) => s.serialize_str(x),
            Value::Bin(b) => s.serialize_bytes(b),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a msgpack value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }
    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(Value::F64(v as f64))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.into()))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value, E> {
        Ok(Value::Str(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v.into()))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bin(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bin(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _d: D) -> Result<Value, D::Error> {
        // msgpack extension types surface here; they are not part of the protocol.
        Err(de::Error::custom("msgpack extension types are not supported"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(k) = map.next_key::<KeyString>()? {
            let v = map.next_value::<Value>()?;
            entries.push((k.0, v));
        }
        Ok(Value::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// A map key: must be a string.
struct KeyString(Text);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyString;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string map key")
    }
    fn visit_str<E>(self, v: &str) -> Result<KeyString, E> {
        Ok(KeyString(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<KeyString, E> {
        Ok(KeyString(v.into()))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<KeyString, E> {
        String::from_utf8(v.to_vec())
            .map(|k| KeyString(k.into()))
            .map_err(|_| E::custom("map keys must be strings"))
    }
}

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyString, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

/// Decode exactly one msgpack value from `bytes` (no trailing bytes allowed).
pub fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    de.set_max_depth(MAX_DEPTH);
    let v = T::deserialize(&mut de).map_err(|e| e.to_string())?;
    let used = de.position() as usize;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes after the value", bytes.len() - used));
    }
    Ok(v)
}

/// Encode a value as msgpack with named maps for structs.
/// Decode one of the engine's own values (a stored state) in place: strings are
/// read from the slice, not copied through a buffer first. No trailing-bytes check:
/// for untrusted input use `decode_exact`.
pub fn decode_owned_fast<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de).map_err(|e| e.to_string())
}

/// msgpack with structs as arrays of their fields in declaration order (no field
/// names): for states, read and written for every contact of every batch.
pub fn encode_compact<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    v.serialize(&mut rmp_serde::Serializer::new(&mut buf)).expect("encoding to a Vec cannot fail");
    buf
}

pub fn encode<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Most rows are a few hundred bytes: start there instead of growing from 0.
    let mut buf = Vec::with_capacity(256);
    v.serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
        .expect("encoding to a Vec cannot fail");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_kinds() {
        let v = Value::Map(vec![
            ("a".into(), Value::Int(-3)),
            ("b".into(), Value::UInt(u64::MAX)),
            ("c".into(), Value::F64(1.5)),
            ("d".into(), Value::Str("x".into())),
            ("e".into(), Value::Bin(vec![1, 2])),
            ("f".into(), Value::Array(vec![Value::Nil, Value::Bool(true)])),
        ]);
        let bytes = encode(&v);
        let back: Value = decode_exact(&bytes).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = encode(&Value::Int(1));
        bytes.push(0xc0);
        assert!(decode_exact::<Value>(&bytes).is_err());
    }

    #[test]
    fn non_string_keys_rejected() {
        // {1: 2}
        assert!(decode_exact::<Value>(&[0x81, 0x01, 0x02]).is_err());
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(Value::Str("MI".into()).to_string(), "'MI'");
        assert_eq!(Value::Array(vec![Value::Int(1), Value::F64(2.5)]).to_string(), "[1, 2.5]");
    }
}
