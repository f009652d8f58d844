#![allow(dead_code)]
//! Helpers to build msgpack documents in tests.

use cairn_core::value::{encode, Value};

pub fn s(x: &str) -> Value {
    Value::Str(x.into())
}

pub fn i(x: i64) -> Value {
    Value::Int(x)
}

pub fn list(items: Vec<Value>) -> Value {
    Value::Array(items)
}

pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

pub fn bytes(v: &Value) -> Vec<u8> {
    encode(v)
}
