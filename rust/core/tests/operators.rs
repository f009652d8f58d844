//! Every operator, evaluated directly on compiled conditions.

mod common;

use std::collections::HashMap;

use cairn_core::vecmap::VecMap;

use cairn_core::definitions::condition::{compile, Scope, NO_FACTS};
use cairn_core::definitions::facts::FactTable;
use cairn_core::definitions::model::CondDoc;
use cairn_core::definitions::Ctx;
use cairn_core::value::{decode_exact, Text};
use cairn_core::Value;
use common::*;

const DAY: i64 = 86_400_000;

fn check(op: &str, value: Option<Value>, attr: Option<Value>) -> (bool, String) {
    let mut e = vec![("attr", s("x")), ("op", s(op))];
    if let Some(v) = value {
        e.push(("value", v));
    }
    let doc: CondDoc = decode_exact(&bytes(&map(e))).unwrap();
    let profile = HashMap::new();
    let mut errs = Vec::new();
    let c = compile(&doc, "c", &Scope { event: Some("t"), attrs: None, profile: &profile, segments: &[], facts: &FactTable::default(), types: &[], strict: false }, &mut errs).expect("compiles");
    let attrs: Vec<(Text, Value)> = attr.into_iter().map(|v| ("x".into(), v)).collect();
    let p = VecMap::new();
    let mut trace = String::new();
    let r = c.eval(&Ctx { attrs: &attrs, profile: &p, ts: 10 * DAY, facts: &NO_FACTS }, Some(&mut trace));
    (r, trace)
}

fn t(op: &str, value: Option<Value>, attr: Value) -> bool {
    check(op, value, Some(attr)).0
}

#[test]
fn text_ops() {
    assert!(t("equals", Some(s("MI")), s("MI")));
    assert!(!t("equals", Some(s("MI")), s("mi")));
    assert!(t("not_equals", Some(s("MI")), s("RM")));
    assert!(!t("not_equals", Some(s("MI")), i(3)), "wrong type is false");
    assert!(t("contains", Some(s("il")), s("Milan")));
    assert!(t("contains", Some(s("a")), list(vec![s("a"), s("b")])));
    assert!(!t("contains", Some(s("z")), i(1)));
    assert!(t("starts_with", Some(s("Mi")), s("Milan")));
    assert!(!t("starts_with", Some(s("Mi")), i(1)));
    assert!(t("in", Some(list(vec![s("MI"), s("RM")])), s("RM")));
    assert!(!t("in", Some(list(vec![s("MI")])), s("TO")));
}

#[test]
fn number_ops() {
    assert!(t("equals", Some(i(3)), Value::F64(3.0)));
    assert!(t("=", Some(i(3)), i(3)));
    assert!(t("!=", Some(i(3)), i(4)));
    assert!(t("lt", Some(i(3)), i(2)) && !t("<", Some(i(3)), i(3)));
    assert!(t("lte", Some(i(3)), i(3)) && t("<=", Some(i(3)), i(2)));
    assert!(t("gt", Some(i(3)), i(4)) && !t(">", Some(i(3)), i(3)));
    assert!(t("gte", Some(i(3)), i(3)) && t(">=", Some(Value::F64(2.5)), i(3)));
    assert!(t("between", Some(list(vec![i(1), i(3)])), i(1)));
    assert!(t("between", Some(list(vec![i(1), i(3)])), i(3)));
    assert!(!t("between", Some(list(vec![i(1), i(3)])), Value::F64(3.1)));
    assert!(!t("gt", Some(i(3)), s("10")), "a string is not a number");
}

#[test]
fn date_ops() {
    assert!(t("before", Some(s("2026-11-23")), s("2026-11-22T23:59:59Z")));
    assert!(!t("before", Some(s("2026-11-23")), s("2026-11-23")));
    assert!(t("after", Some(s("2026-11-23")), i(1_795_392_000_001)));
    assert!(!t("after", Some(s("2026-11-23")), s("garbage")));
    assert!(t("within_last", Some(s("7d")), i(4 * DAY)));
    assert!(t("within_last", Some(s("7d")), i(3 * DAY)));
    assert!(!t("within_last", Some(s("7d")), i(3 * DAY - 1)));
    assert!(!t("within_last", Some(s("7d")), i(11 * DAY)), "future is not within the last");
    assert!(t("within_last", Some(s("1h")), s("1970-01-10T23:30:00Z")));
}

#[test]
fn bool_and_existence_ops() {
    assert!(t("is_true", None, Value::Bool(true)));
    assert!(!t("is_true", None, s("true")));
    assert!(t("is_false", None, Value::Bool(false)));
    assert!(t("exists", None, i(0)));
    assert!(!t("exists", None, Value::Nil), "nil counts as missing");
    assert!(!check("exists", None, None).0);
    assert!(check("not_exists", None, None).0);
    assert!(!t("not_exists", None, i(1)));
}

#[test]
fn missing_attr_is_false_and_explained() {
    let (r, trace) = check("equals", Some(s("a")), None);
    assert!(!r);
    assert_eq!(trace, "attr x missing equals 'a': false");
    let (_, trace) = check("gt", Some(i(1)), Some(s("z")));
    assert_eq!(trace, "attr x = 'z' gt 1: false (wrong type)");
}

#[test]
fn groups() {
    let doc = |v: Value| -> CondDoc { decode_exact(&bytes(&v)).unwrap() };
    let leaf = |op: &str, v: i64| map(vec![("attr", s("x")), ("op", s(op)), ("value", i(v))]);
    let profile = HashMap::new();
    let attrs = vec![("x".into(), i(5))];
    let p = VecMap::new();
    let eval = |d: CondDoc| {
        let mut errs = Vec::new();
        let c = compile(&d, "c", &Scope { event: Some("t"), attrs: None, profile: &profile, segments: &[], facts: &FactTable::default(), types: &[], strict: false }, &mut errs).unwrap();
        let mut tr = String::new();
        let r = c.eval(&Ctx { attrs: &attrs, profile: &p, ts: 0, facts: &NO_FACTS }, Some(&mut tr));
        (r, tr)
    };
    assert!(eval(doc(map(vec![("all", list(vec![leaf("gt", 1), leaf("lt", 9)]))]))).0);
    assert!(!eval(doc(map(vec![("all", list(vec![leaf("gt", 1), leaf("gt", 9)]))]))).0);
    assert!(eval(doc(map(vec![("any", list(vec![leaf("gt", 9), leaf("lt", 9)]))]))).0);
    let (r, tr) = eval(doc(map(vec![("not", leaf("gt", 9))])));
    assert!(r);
    assert_eq!(tr, "attr x = 5 gt 9: false; not => true");
}
