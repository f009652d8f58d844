//! Decision reasons are stored as traces (`cairn_core::trace`) and rendered when
//! read: the rendered text must be exactly what the evaluation with a text trace
//! (`Cond::eval(ctx, Some(&mut String))`, the reasons stored before) writes.

mod shard;

use cairn_core::definitions::{Ctx, NodeKind};
use cairn_core::event::{named_history, named_history_with};
use cairn_core::state::{Reason, RunRecord, Step};
use cairn_core::trace::{self, At};
use cairn_core::value::{decode_exact, encode, Text};
use cairn_core::vecmap::VecMap;
use cairn_core::{Catalog, Value};
use serde_json::json;
use shard::*;

const DEFS: &str = r#"{
  "profile_fields": {"tier": "text"},
  "segments": [
    {"name": "regulars", "when": {"event": "purchase", "within": "30d", "count": {"op": "gte", "value": 2}}},
    {"name": "vips", "when": {"any": [{"profile": "vip", "op": "is_true"}, {"segment": "regulars"}]}}
  ],
  "programs": [
    {"name": "journey", "trigger": {"event": "purchase"}, "entry": {"concurrent": true}, "nodes": [
      {"id": "d1", "type": "decision", "when": {"all": [
          {"attr": "amount", "op": "gte", "value": 100},
          {"attr": "store", "op": "in", "value": ["MI", "RM"]},
          {"profile": "tier", "op": "equals", "value": "gold"}]}, "yes": "s1", "no": "s1"},
      {"id": "s1", "type": "splitter", "branches": [
          {"when": {"event": "view", "same": "product_id", "within": "7d", "count": {"op": "gt", "value": 1}}, "next": "w"},
          {"when": {"not": {"segment": "vips"}}, "next": "w"},
          {"when": {"any": [{"attr": "paid_at", "op": "within_last", "value": "1h"}, {"profile": "birthday", "op": "within_last", "value": "30d"}]}, "next": "w"},
          {"when": {"all": [{"profile": "interests", "op": "contains", "value": "running"}, {"profile": "age", "op": "between", "value": [18, 40]}]}, "next": "w"}],
        "else": "w"},
      {"id": "w", "type": "wait", "duration": "1h", "next": "d2"},
      {"id": "d2", "type": "decision", "when": {"any": [
          {"attr": "amount", "op": "lt", "value": 50},
          {"attr": "sku", "op": "starts_with", "value": "SHOE-"},
          {"attr": "coupon", "op": "not_exists"},
          {"attr": "tags", "op": "contains", "value": "sale"}]}, "yes": "u", "no": "wf"},
      {"id": "u", "type": "action", "update_profile": {"set": {"tier": "silver"}}, "next": "d3"},
      {"id": "d3", "type": "decision", "when": {"profile": "tier", "op": "==", "value": "silver"}, "yes": "wf", "no": "wf"},
      {"id": "wf", "type": "wait_for", "event": "review", "timeout": "1d", "occurred": "s2", "not_occurred": "s2"},
      {"id": "s2", "type": "splitter", "branches": [
          {"when": {"attr": "amount", "op": "gt", "value": 1000}, "next": "e"},
          {"when": {"attr": "paid_at", "op": "before", "value": "2026-11-23"}, "next": "e"},
          {"when": {"event": "purchase", "same": "store", "count": {"op": "between", "value": [2, 3]}}, "next": "e"}],
        "else": "e"},
      {"id": "e", "type": "end"}]},
    {"name": "reviews", "trigger": {"event": "review"}, "nodes": [
      {"id": "stars", "type": "decision", "when": {"all": [
          {"attr": "stars", "op": "gte", "value": 4},
          {"not": {"attr": "text", "op": "exists"}},
          {"segment": "vips"}]}, "yes": "e", "no": "e"},
      {"id": "e", "type": "end"}]},
    {"name": "wide", "trigger": {"event": "purchase"}, "nodes": [
      {"id": "many", "type": "decision", "when": {"all": [
          {"profile": "f01", "op": "not_exists"}, {"profile": "f02", "op": "not_exists"},
          {"profile": "f03", "op": "not_exists"}, {"profile": "f04", "op": "not_exists"},
          {"profile": "f05", "op": "not_exists"}, {"profile": "f06", "op": "not_exists"},
          {"profile": "f07", "op": "not_exists"}, {"profile": "f08", "op": "not_exists"},
          {"profile": "f09", "op": "not_exists"}, {"profile": "f10", "op": "not_exists"},
          {"profile": "f11", "op": "not_exists"}, {"profile": "f12", "op": "not_exists"},
          {"profile": "f13", "op": "not_exists"}, {"profile": "f14", "op": "not_exists"},
          {"profile": "f15", "op": "not_exists"}, {"profile": "f16", "op": "not_exists"},
          {"attr": "amount", "op": "exists"}]}, "yes": "e", "no": "e"},
      {"id": "e", "type": "end"}]}
  ]
}"#;

/// Decisions of every kind, on entry and after a timer or an awaited event.
fn scenario(cat: &Catalog) -> Shard {
    let mut sh = Shard::default();
    let iso = |ms: i64| cairn_core::dates::format_iso(ms);
    sh.send(cat, T0 - 2 * DAY, "ann", "view", json!({"product_id": "p1"}));
    sh.send(cat, T0 - DAY, "ann", "view", json!({"product_id": "p1"}));
    sh.send(cat, T0 - DAY, "ann", "$profile", json!({"set": {"tier": "gold", "interests": ["running", "yoga"], "age": 33, "birthday": "2026-11-01"}}));
    sh.send(cat, T0, "ann", "purchase", json!({"amount": 148, "store": "MI", "product_id": "p1", "paid_at": iso(T0 - HOUR / 2), "sku": "SHOE-1", "tags": ["sale"]}));
    sh.send(cat, T0, "ann", "purchase", json!({"amount": "abc", "store": "RM", "paid_at": 5, "coupon": null}));
    sh.send(cat, T0, "ann", "purchase", json!({"amount": 30.5, "store": "MI", "product_id": "p2", "tags": "on sale", "coupon": "C", "paid_at": iso(T0 - HOUR / 6)}));
    sh.send(cat, T0, "bob", "purchase", json!({}));
    sh.send(cat, T0, "bob", "$profile", json!({"set": {"vip": "yes", "f03": 1, "birthday": 12}}));
    sh.send(cat, T0, "bob", "purchase", json!({"amount": 2000, "store": "MI", "paid_at": "2026-01-01", "coupon": "X", "sku": 7}));
    sh.send(cat, T0, "cyd", "$profile", json!({"set": {"vip": true, "interests": "running", "age": 33}}));
    sh.send(cat, T0, "cyd", "purchase", json!({"amount": 10, "store": "MI", "coupon": "Z"}));
    sh.fire(cat, T0 + HOUR);
    sh.send(cat, T0 + 2 * HOUR, "ann", "review", json!({"stars": 5, "amount": 999, "store": "XX", "paid_at": 1}));
    sh.send(cat, T0 + 2 * HOUR, "bob", "review", json!({"stars": 3, "text": "meh"}));
    sh.send(cat, T0 + 2 * HOUR, "cyd", "review", json!({"stars": 4}));
    sh.fire(cat, T0 + 2 * DAY);
    sh
}

/// (row id, program, node, outcome, reason) of every step, as readers see them.
fn steps(sh: &Shard) -> Vec<(String, String, String, String, String)> {
    let mut out = Vec::new();
    for row in &sh.history {
        let id = row.get("id").and_then(Value::as_str).unwrap().to_owned();
        let Some(Value::Array(runs)) = row.get("runs") else { panic!("{row:?}") };
        for run in runs {
            let Value::Array(r) = run else { panic!() };
            let Value::Array(st) = &r[3] else { panic!() };
            for s in st {
                let Value::Array(s) = s else { panic!() };
                let text = |i: usize| s[i].as_str().unwrap_or_else(|| panic!("not text: {s:?}")).to_owned();
                out.push((id.clone(), r[0].as_str().unwrap().to_owned(), text(0), text(1), text(2)));
            }
        }
    }
    out
}

fn is_decision(outcome: &str) -> bool {
    matches!(outcome, "yes" | "no" | "branch" | "else")
}

fn text_catalog() -> Catalog {
    let mut cat = catalog(DEFS);
    cat.text_reasons = true;
    cat
}

#[test]
fn reasons_rendered_from_traces_are_the_text_decisions_wrote() {
    let (cat, text_cat) = (catalog(DEFS), text_catalog());
    let (traced, texted) = (scenario(&cat), scenario(&text_cat));
    // Everything but the reasons' stored form is the same.
    assert_eq!(traced.states, texted.states);
    assert_eq!(traced.sent, texted.sent);
    let (got, want) = (steps(&traced), steps(&texted));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_eq!(traced.history, texted.history);

    // Not vacuous: many decisions of every kind, stored as traces in one form and
    // as text in the other.
    let decisions: Vec<_> = want.iter().filter(|s| is_decision(&s.3)).collect();
    assert!(decisions.len() >= 30, "{}", decisions.len());
    let all = decisions.iter().map(|s| s.4.as_str()).collect::<Vec<_>>().join("\n");
    for part in [
        "=> yes", "=> no", "=> branch 1", "=> branch 2", "=> branch 3", "=> branch 4", "=> else",
        " missing ", "(wrong type)", "(trigger has no product_id)", "within_last 1h: true", "within_last 1h: false",
        "within_last 30d: true", "in segment vips => true", "in segment vips => false", "in segment regulars => true",
        "; not => true", "; not => false", " | ", "attr amount = 148 ", "attr amount = 'abc' ", "attr amount = 30.5 ",
        "profile tier = 'silver' == 'silver': true", "event view same product_id within 7d count = 2 gt 1: true",
        "event purchase same store count = 2 between [2, 3]: true", "attr stars = 5 gte 4: true",
        "profile f16 missing not_exists: true; attr amount = 148 exists: true => yes",
        "profile f03 = 1 not_exists: false => no",
    ] {
        assert!(all.contains(part), "no decision reads {part:?}:\n{all}");
    }
    let stored_reasons = |sh: &Shard| -> Vec<Value> {
        sh.stored_history
            .iter()
            .flat_map(|raw| {
                let Value::Array(f) = decode_exact::<Value>(raw).unwrap() else { panic!() };
                let Value::Array(runs) = &f[6] else { panic!() };
                runs.iter()
                    .flat_map(|r| match r {
                        Value::Array(r) => match &r[3] {
                            Value::Array(st) => st.clone(),
                            _ => panic!(),
                        },
                        _ => panic!(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (traces, texts) = (stored_reasons(&traced), stored_reasons(&texted));
    let mut seen_modes = [false; 2];
    for (t, x) in traces.iter().zip(&texts) {
        let (Value::Array(t), Value::Array(x)) = (t, x) else { panic!() };
        if is_decision(t[1].as_str().unwrap()) {
            let Value::Array(tr) = &t[2] else { panic!("a decision's reason is a trace: {t:?}") };
            seen_modes[tr[0].as_f64().unwrap() as usize] = true;
            assert!(matches!(x[2], Value::Str(_)));
        } else {
            assert_eq!(t, x);
        }
    }
    assert_eq!(seen_modes, [true, true]);
    let size = |sh: &Shard| sh.stored_history.iter().map(Vec::len).sum::<usize>();
    assert!(size(&traced) * 2 < size(&texted), "{} vs {}", size(&traced), size(&texted));
}

#[test]
fn resumed_runs_store_the_trigger_attributes_they_read() {
    let cat = catalog(DEFS);
    let sh = scenario(&cat);
    // ann's first run, woken by the review: s2 read the trigger's amount and paid_at
    // (mode 1, values stored), not the review's 999 and 1.
    let review = sh.stored_history.iter().map(|r| decode_exact::<Value>(r).unwrap()).find(|r| {
        let Value::Array(f) = r else { panic!() };
        f[1].as_str() == Some("ann") && f[2].as_str() == Some("review")
    });
    let Value::Array(f) = review.unwrap() else { panic!() };
    let Value::Array(runs) = &f[6] else { panic!() };
    let Value::Array(first) = &runs[0] else { panic!() };
    assert_eq!((first[0].as_str(), &first[2]), (Some("journey"), &Value::Int(1)));
    let Value::Array(st) = &first[3] else { panic!() };
    let Value::Array(s2) = &st[1] else { panic!() };
    assert_eq!(s2[0].as_str(), Some("s2"));
    let paid = Value::Str(cairn_core::dates::format_iso(T0 - HOUR / 2).into());
    // amount 148 (gt 1000: false), paid_at (before: false), the count of purchases
    // in the trigger's store (two in MI).
    assert_eq!(s2[2], Value::Array(vec![Value::Int(1), Value::Int(148), paid, Value::Int(2)]));
    // The review's own program decided on the review (mode 0): only the segment's
    // profile value and count are stored.
    let own = runs.iter().find(|r| matches!(r, Value::Array(f) if f[0].as_str() == Some("reviews")));
    let Some(Value::Array(own)) = own else { panic!() };
    let Value::Array(st) = &own[3] else { panic!() };
    let Value::Array(stars) = &st[0] else { panic!() };
    assert_eq!(stars[2], Value::Array(vec![Value::Int(0), Value::Nil, Value::Int(2)]));
}

/// A catalog of one program per condition, each a decision node.
fn conditions(conds: &[serde_json::Value]) -> Catalog {
    let programs: Vec<_> = conds
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"name": format!("c{i}"), "trigger": {"event": "purchase"}, "nodes": [
                {"id": "d", "type": "decision", "when": c, "yes": "s", "no": "s"},
                {"id": "s", "type": "splitter", "branches": [{"when": c, "next": "e"}, {"when": {"not": c}, "next": "e"}, {"when": c, "next": "e"}], "else": "e"},
                {"id": "e", "type": "end"}]})
        })
        .collect();
    let doc = json!({
        "segments": [{"name": "fans", "when": {"any": [{"profile": "tier", "op": "in", "value": ["gold", 3]}, {"event": "view", "within": "2d"}]}}],
        "programs": programs,
    });
    catalog(&doc.to_string())
}

#[test]
fn every_condition_on_every_value_renders_as_its_text_trace() {
    let conds = vec![
        json!({"attr": "x", "op": "equals", "value": 3}),
        json!({"attr": "x", "op": "!=", "value": "a"}),
        json!({"attr": "x", "op": "contains", "value": "a"}),
        json!({"attr": "x", "op": "starts_with", "value": "a"}),
        json!({"attr": "x", "op": "in", "value": ["a", 3, true]}),
        json!({"attr": "x", "op": "<", "value": 3}),
        json!({"attr": "x", "op": "between", "value": [1, 3.5]}),
        json!({"attr": "x", "op": "before", "value": "2026-11-23"}),
        json!({"attr": "x", "op": "after", "value": "2026-11-23T10:00:00Z"}),
        json!({"attr": "x", "op": "within_last", "value": "1d"}),
        json!({"attr": "x", "op": "is_true"}),
        json!({"attr": "x", "op": "is_false"}),
        json!({"attr": "x", "op": "exists"}),
        json!({"attr": "x", "op": "not_exists"}),
        json!({"profile": "tier", "op": "equals", "value": "gold"}),
        json!({"profile": "tier", "op": "within_last", "value": "7d"}),
        json!({"profile": "tier", "op": "contains", "value": 3}),
        json!({"event": "view", "count": {"op": "gte", "value": 2}}),
        json!({"event": "view", "same": "x", "within": "1d", "count": {"op": "equals", "value": 1}}),
        json!({"event": "view", "where": {"attr": "x", "op": "exists"}, "count": {"op": "lt", "value": 1}}),
        json!({"segment": "fans"}),
        json!({"not": {"segment": "fans"}}),
        json!({"all": [{"attr": "x", "op": "exists"}, {"profile": "tier", "op": "exists"}, {"not": {"attr": "y", "op": "gt", "value": 0}}]}),
        json!({"any": [{"attr": "x", "op": "not_exists"}, {"all": [{"profile": "tier", "op": "not_exists"}, {"attr": "y", "op": "exists"}]}, {"segment": "fans"}]}),
        json!({"not": {"not": {"any": [{"attr": "y", "op": "within_last", "value": "1h"}, {"event": "view", "same": "y", "count": {"op": "gt", "value": 0}}]}}}),
    ];
    let cat = conditions(&conds);
    // Counted views: x = 'a' twice (one within the day), y = 3 once.
    let mut sh = Shard::default();
    sh.send(&cat, T0 - 3 * DAY, "ann", "view", json!({"x": "a"}));
    sh.send(&cat, T0 - HOUR, "ann", "view", json!({"x": "a", "y": 3}));
    let state = sh.state("ann");
    let iso = cairn_core::dates::format_iso;
    let values = [
        json!(null), json!(3), json!(3.0), json!(-1), json!(2.5), json!("a"), json!("abc"), json!("b"), json!(true), json!(false),
        json!(["a", 3]), json!({"k": 1}), json!(iso(T0 - HOUR)), json!(iso(T0 + HOUR)), json!("2026-11-01"), json!(T0 - 2 * HOUR),
        json!("not a date"), json!(u64::MAX),
    ];
    let attrs_of = |x: &serde_json::Value, y: &serde_json::Value| -> Value {
        let mut m = serde_json::Map::new();
        if !x.is_null() || y.is_null() {
            m.insert("x".into(), x.clone());
        }
        if !y.is_null() {
            m.insert("y".into(), y.clone());
        }
        decode_exact(&encode(&serde_json::from_value::<Value>(serde_json::Value::Object(m)).unwrap())).unwrap()
    };
    // Attributes that are not the ones decided on: a trace that stored its values
    // must not read them.
    let other = attrs_of(&json!("other"), &json!(-7));
    let Value::Map(other) = other else { panic!() };
    let mut checked = 0;
    for x in &values {
        for y in [json!(null), json!(3), json!(iso(T0 - HOUR / 2))] {
            let attrs = attrs_of(x, &y);
            let Value::Map(attrs) = &attrs else { panic!() };
            for tier in [None, Some(x.clone())] {
                let mut profile = VecMap::default();
                if let Some(t) = &tier {
                    profile.insert("tier".to_owned(), serde_json::from_value::<Value>(t.clone()).unwrap());
                }
                let ctx = Ctx { attrs, profile: &profile, ts: T0, facts: &state.facts };
                for (i, _) in conds.iter().enumerate() {
                    checked += check_program(&cat, &format!("c{i}"), &ctx, attrs, &other);
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}

/// Compare, on `ctx`, the text of program `name`'s decision and splitter with
/// their traces rendered, in both modes; the number of comparisons.
fn check_program(cat: &Catalog, name: &str, ctx: &Ctx<'_>, attrs: &[(Text, Value)], other: &[(Text, Value)]) -> usize {
    let p = cat.program(name, 1).unwrap();
    let mut n = 0;
    for node in &p.nodes {
        let (text, outcome, traces) = match &node.kind {
            NodeKind::Decision { when, .. } => {
                let (r, text) = trace::decision_text(when, ctx);
                let traces = [false, true].map(|stored| {
                    let (r2, bytes) = trace::decision(when, ctx, stored);
                    assert_eq!(r, r2);
                    bytes
                });
                (text, if r { "yes" } else { "no" }, traces)
            }
            NodeKind::Splitter { branches, .. } => {
                let (hit, text) = trace::splitter_text(branches, ctx);
                let traces = [false, true].map(|stored| {
                    let (hit2, bytes) = trace::splitter(branches, ctx, stored);
                    assert_eq!(hit, hit2);
                    bytes
                });
                (text, if hit.is_some() { "branch" } else { "else" }, traces)
            }
            _ => continue,
        };
        for (stored, bytes) in traces.iter().enumerate() {
            let Value::Array(tr) = decode_exact::<Value>(bytes).unwrap() else { panic!() };
            assert_eq!(tr[0], Value::Int(stored as i64));
            // Mode 0 reads the row's attributes, mode 1 its own values only.
            let row_attrs = if stored == 1 { other } else { attrs };
            let at = At { program: name, version: 1, node: &node.id, outcome, attrs: row_attrs };
            assert_eq!(trace::render(Some(cat), &at, &tr), text, "{name}.{} mode {stored} on {:?}", node.id, ctx.attrs);
            n += 1;
        }
    }
    n
}

#[test]
fn text_reasons_of_earlier_rows_read_unchanged() {
    let (cat, text_cat) = (catalog(DEFS), text_catalog());
    let texted = scenario(&text_cat);
    for (seq, raw) in texted.stored_history.iter().enumerate() {
        let seq = seq as u64 + 1;
        let plain = named_history(raw, seq).unwrap();
        assert_eq!(named_history_with(raw, seq, Some(&cat)).unwrap(), plain);
        // Rows stored as named maps (before rows were compact) too.
        assert_eq!(named_history_with(&plain, seq, Some(&cat)).unwrap(), plain);
        assert_eq!(named_history(&plain, seq).unwrap(), plain);
    }
    // A row mixing both forms (earlier steps as text, later ones as traces) reads whole.
    let traced = scenario(&cat);
    assert_eq!(steps(&traced), steps(&texted));
}

/// A purchase row of program `journey` with one decision step whose reason is `reason`.
fn row_with(reason: Value, node: &str, outcome: &'static str) -> Vec<u8> {
    let ev = cairn_core::event::Event {
        id: "e1".into(),
        contact: "ann".into(),
        kind: "purchase".into(),
        ts: T0,
        attrs: Value::Map(vec![("amount".into(), Value::Int(148))]),
        source: None,
    };
    let runs = [RunRecord { program: "journey", version: 1, run: 1, steps: vec![Step { node, outcome, reason: Reason::Trace(encode(&reason)) }] }];
    let mut out = Vec::new();
    cairn_core::event::HistoryRow::new(&ev, &runs).write(&mut out, None);
    out
}

fn reason_of(named: &[u8]) -> String {
    let row: Value = decode_exact(named).unwrap();
    let Some(Value::Array(runs)) = row.get("runs") else { panic!() };
    let Value::Array(r) = &runs[0] else { panic!() };
    let Value::Array(st) = &r[3] else { panic!() };
    let Value::Array(s) = &st[0] else { panic!() };
    s[2].as_str().unwrap().to_owned()
}

#[test]
fn traces_that_cannot_be_rendered_read_as_a_fallback_text() {
    let (cat, empty) = (catalog(DEFS), Catalog::empty());
    // d1: all [attr amount gte 100 (row: 148), attr store in (row: missing)] => no.
    let ok = row_with(Value::Array(vec![Value::Int(0)]), "d1", "no");
    assert_eq!(reason_of(&named_history_with(&ok, 1, Some(&cat)).unwrap()), "attr amount = 148 gte 100: true; attr store missing in ['MI', 'RM']: false => no");
    let cases: Vec<(Vec<u8>, Option<&Catalog>, &str)> = vec![
        (ok.clone(), None, "decision trace [0]: read without the definitions"),
        (ok.clone(), Some(&empty), "decision trace [0]: program 'journey' version 1 is not in the definitions"),
        (row_with(Value::Array(vec![Value::Int(0)]), "d1", "yes"), Some(&cat), "decision trace [0]: does not fit node 'd1' of program 'journey' version 1"),
        (row_with(Value::Array(vec![Value::Int(0), Value::Int(5)]), "d1", "no"), Some(&cat), "decision trace [0, 5]: does not fit node 'd1' of program 'journey' version 1"),
        (row_with(Value::Array(vec![Value::Int(1)]), "d1", "no"), Some(&cat), "decision trace [1]: does not fit node 'd1' of program 'journey' version 1"),
        (row_with(Value::Array(vec![Value::Int(2)]), "d1", "no"), Some(&cat), "decision trace [2]: does not fit node 'd1' of program 'journey' version 1"),
        (row_with(Value::Array(vec![]), "d1", "no"), Some(&cat), "decision trace []: does not fit node 'd1' of program 'journey' version 1"),
        (row_with(Value::Array(vec![Value::Int(0)]), "w", "no"), Some(&cat), "decision trace [0]: does not fit node 'w' of program 'journey' version 1"),
        (row_with(Value::Array(vec![Value::Int(0)]), "gone", "no"), Some(&cat), "decision trace [0]: does not fit node 'gone' of program 'journey' version 1"),
        (row_with(Value::Array(vec![Value::Int(0), Value::Str("x".into())]), "s2", "else"), Some(&cat), "decision trace [0, 'x']: does not fit node 's2' of program 'journey' version 1"),
    ];
    for (raw, c, want) in cases {
        assert_eq!(reason_of(&named_history_with(&raw, 1, c).unwrap()), want);
    }
}

#[test]
fn an_older_program_version_renders_its_own_condition() {
    let v1 = catalog(DEFS);
    let mut sh = Shard::default();
    sh.send(&v1, T0, "ann", "purchase", json!({"amount": 148, "store": "MI"}));
    // Version 2 changes d1's threshold: the v1 run's row still reads with v1's.
    let changed = DEFS.replace(r#"{"attr": "amount", "op": "gte", "value": 100}"#, r#"{"attr": "amount", "op": "gte", "value": 500}"#);
    let v2 = cairn_core::definitions::compile_next(&doc(&changed), 2, Some(&v1)).unwrap();
    sh.send(&v2, T0, "bob", "purchase", json!({"amount": 148, "store": "MI"}));
    let reasons: Vec<String> = sh
        .stored_history
        .iter()
        .enumerate()
        .map(|(i, raw)| reason_of(&named_history_with(raw, i as u64 + 1, Some(&v2)).unwrap()))
        .collect();
    assert_eq!(reasons, [
        "attr amount = 148 gte 100: true; attr store = 'MI' in ['MI', 'RM']: true; profile tier missing equals 'gold': false => no",
        "attr amount = 148 gte 500: false => no",
    ]);
}
