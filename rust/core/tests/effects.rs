//! Outbox effects as delivery reads them, pinned against what the build before
//! slim effects wrote: `fixtures/effects_before.msgpack` holds, for the scenario
//! below, every outbox row that build stored (key, value) and the named map its
//! `named_effect` gave for it: an array of `[key, value, named]` (msgpack bin). It
//! was written by the `write_fixture` test of commit e336d96 (the build before,
//! with this scenario), which later commits removed: it is the "before", not to be
//! rewritten.

mod shard;

use cairn_core::effect::{named_effect, named_effect_in, StoredEffect};
use cairn_core::value::{decode_exact, encode_compact};
use cairn_core::{Catalog, Value};
use serde_json::json;
use shard::*;

/// Every kind of effect and template: an email whose subject reads loyalty, an
/// SMS and a push that do not (one names an attribute that merely starts with
/// "loyalty"), a webhook with a body and one without (its JSON carries the whole
/// context), an audience change, a message sent after a wait (the run's trigger
/// then comes from the state) and one sent when an awaited event wakes a run.
pub const DEFS: &str = r#"{
 "loyalty": [{"name": "club", "currency": "EUR", "rules": [
   {"name": "buy", "event": "purchase", "effects": [{"credit": {"points": 10, "kind": "qualifying"}}]}]}],
 "programs": [
  {"name": "mail", "transactional": true, "trigger": {"event": "purchase"}, "nodes": [
    {"id": "m", "type": "action", "send": {"channel": "email",
      "subject": "{{ profile.name }}, you have {{ loyalty.club.qualifying }} points",
      "text": "Thanks for {{ event.total }} at {{ event.store }}",
      "html": "<p>{{ event.lines[0].sku }} &amp; more</p>"}, "next": "e"},
    {"id": "e", "type": "end"}]},
  {"name": "text", "transactional": true, "trigger": {"event": "purchase"}, "nodes": [
    {"id": "s", "type": "action", "send": {"channel": "sms", "text": "Hi {{ profile.name }}: {{ event.store }}"}, "next": "p"},
    {"id": "p", "type": "action", "send": {"channel": "push", "title": "Loyal customer?",
      "text": "{{ event.total }} {{ event.loyalty_id }}"}, "next": "e"},
    {"id": "e", "type": "end"}]},
  {"name": "hook", "trigger": {"event": "purchase"}, "nodes": [
    {"id": "body", "type": "action", "webhook": {"url": "https://hooks.test/a",
      "body": "{\"total\": {{ event.total }}, \"name\": \"{{ profile.name }}\"}"}, "next": "plain"},
    {"id": "plain", "type": "action", "webhook": {"url": "https://hooks.test/b"}, "next": "aud"},
    {"id": "aud", "type": "action", "audience": {"add": "buyers"}, "next": "e"},
    {"id": "e", "type": "end"}]},
  {"name": "later", "trigger": {"event": "purchase"}, "nodes": [
    {"id": "w", "type": "wait", "duration": "1d", "next": "a"},
    {"id": "a", "type": "action", "send": {"channel": "in_app", "title": "{{ loyalty['club'].tier }}",
      "text": "{{ event.total }} {{ event.note }}"}, "next": "e"},
    {"id": "e", "type": "end"}]},
  {"name": "cart", "trigger": {"event": "cart_update"}, "nodes": [
    {"id": "w", "type": "wait_for", "event": "purchase", "same": "cart_id", "timeout": "1d",
     "occurred": "thanks", "not_occurred": "e"},
    {"id": "thanks", "type": "action", "send": {"channel": "web", "text": "cart {{ event.cart_id }}"}, "next": "e"},
    {"id": "e", "type": "end"}]}
 ]}"#;

/// Attributes of many msgpack forms: floats, negative and huge integers, nested
/// lines, strings of each length form, unicode.
fn rich() -> serde_json::Value {
    let lines: Vec<_> = (1..=3).map(|k| json!({"sku": format!("sku-{k}"), "qty": k, "price": 3.25 * k as f64})).collect();
    json!({"total": 129.5, "store": "MI", "cart_id": "k1", "note": "é".repeat(40), "big": u64::MAX,
           "neg": -40_000, "flags": [true, false, null], "long": "x".repeat(300), "lines": lines, "empty": {}})
}

/// The scenario: its catalog and the shard after it ran.
pub fn scenario() -> (Catalog, Shard) {
    let cat = catalog(DEFS);
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "$profile", json!({"set": {"name": "Ann", "email": "ann@example.com", "phone": "+39 333", "secret": "s"}}));
    shard.send(&cat, T0 + 1, "ann", "cart_update", json!({"cart_id": "k1", "n": 2}));
    shard.send(&cat, T0 + HOUR, "ann", "purchase", rich());
    shard.send(&cat, T0 + 2 * HOUR, "bob", "purchase", json!({"total": 5, "loyalty_id": "L-1"}));
    shard.send(&cat, T0 + 3 * HOUR, "ann", "purchase", json!({}));
    assert_eq!(shard.fire(&cat, T0 + 4 * HOUR + 2 * DAY), 2, "the waits of `later` (ann is in it once)");
    (cat, shard)
}

fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/effects_before.msgpack")
}

/// The fixture's rows: (key, stored value, named map).
pub fn before() -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let Value::Array(rows) = decode_exact::<Value>(&std::fs::read(fixture_path()).unwrap()).unwrap() else { panic!("not an array") };
    rows.into_iter()
        .map(|r| match r {
            Value::Array(mut f) if f.len() == 3 => {
                let mut bin = || match f.remove(0) {
                    Value::Bin(b) => b,
                    other => panic!("not bytes: {other:?}"),
                };
                (bin(), bin(), bin())
            }
            other => panic!("not a row: {other:?}"),
        })
        .collect()
}

#[test]
fn the_fixture_covers_every_kind_of_effect() {
    let rows = before();
    let named: Vec<Value> = rows.iter().map(|(_, _, n)| decode_exact(n).unwrap()).collect();
    let nodes: Vec<String> = named
        .iter()
        .map(|e| format!("{}/{}", e.get("program").and_then(Value::as_str).unwrap(), e.get("node").and_then(Value::as_str).unwrap()))
        .collect();
    for want in ["mail/m", "text/s", "text/p", "hook/body", "hook/plain", "hook/aud", "later/a", "cart/thanks"] {
        assert!(nodes.iter().any(|n| n == want), "{want} in {nodes:?}");
    }
    // Rows stored before read as they did.
    for (_, raw, n) in &rows {
        assert_eq!(&named_effect(raw).unwrap(), n);
    }
}

fn field_mut<'v>(v: &'v mut Value, key: &str) -> &'v mut Value {
    let Value::Map(entries) = v else { panic!("not a map: {v:?}") };
    &mut entries.iter_mut().find(|(k, _)| k.as_str() == key).unwrap_or_else(|| panic!("no {key}")).1
}

/// The nodes of `DEFS` whose templates read the loyalty balances (a webhook
/// without a body sends the whole context): their effects carry them.
const READ_LOYALTY: [&str; 3] = ["mail/m", "hook/plain", "later/a"];

/// Each effect of the scenario, written now, reads for delivery as the named map
/// the build before gave for the row it wrote: same keys, same ids, same message
/// and webhook templates, same event and profile, and the same loyalty balances
/// where a template reads them (elsewhere none: `{}`).
#[test]
fn effects_read_for_delivery_as_before() {
    let (cat, shard) = scenario();
    let rows = before();
    assert_eq!(shard.outbox.len(), rows.len());
    let mut without = 0;
    for ((key, raw), (old_key, old_raw, old_named)) in shard.outbox.iter().zip(&rows) {
        assert_eq!(key, old_key);
        let named = named_effect_in(&cat, raw).unwrap();
        let (now, mut then): (Value, Value) = (decode_exact(&named).unwrap(), decode_exact(old_named).unwrap());
        let node = format!("{}/{}", then.get("program").unwrap().as_str().unwrap(), then.get("node").unwrap().as_str().unwrap());
        if READ_LOYALTY.contains(&node.as_str()) {
            assert_eq!(&named, old_named, "{node}: byte for byte");
        } else {
            let loyalty = field_mut(field_mut(&mut then, "context"), "loyalty");
            assert_ne!(*loyalty, Value::Map(vec![]), "{node}: the contact has balances");
            *loyalty = Value::Map(vec![]);
            without += 1;
        }
        assert_eq!(now, then, "{node}");
        let audience = then.get("kind").unwrap().as_str() == Some("audience");
        assert!(raw.len() < old_raw.len() || audience && raw.len() == old_raw.len(), "{} < {}", raw.len(), old_raw.len());
    }
    assert!(without > 0 && without < rows.len());
}

/// Each row written now is, byte for byte, the row the build before wrote with
/// only what this build leaves out taken out: the templates (`[]` for the
/// message's and the webhook's), and the balances where no template reads them
/// (`{}`). The trigger's attrs in particular are the same bytes, whether copied
/// from the batch (a run that enters on the event applied) or written again (a
/// run resumed by a timer or an awaited event, whose trigger is in the state).
#[test]
fn rows_are_the_rows_before_less_what_is_left_out() {
    let (_, shard) = scenario();
    for ((_, raw), (_, old_raw, _)) in shard.outbox.iter().zip(before()) {
        let Value::Array(mut old) = decode_exact::<Value>(&old_raw).unwrap() else { panic!("not an array") };
        assert_eq!(encode_compact(&Value::Array(old.clone())), old_raw, "the rows before were in the writers' forms");
        let node = format!("{}/{}", old[4].as_str().unwrap(), old[7].as_str().unwrap());
        for payload in [9, 11] {
            if old[payload] != Value::Nil {
                old[payload] = Value::Array(vec![]);
            }
        }
        if !READ_LOYALTY.contains(&node.as_str()) {
            let Value::Array(context) = &mut old[12] else { panic!("no context") };
            context[2] = Value::Map(vec![]);
        }
        assert!(raw == &encode_compact(&Value::Array(old)), "{node}");
    }
}

/// Rows written now name their node's templates instead of carrying them; rows
/// written before (templates inline) read as they did, with or without the
/// definitions.
#[test]
fn templates_are_read_from_the_definitions() {
    let (cat, shard) = scenario();
    for (_, raw) in &shard.outbox {
        let e = StoredEffect::decode(raw).unwrap();
        let kind = e.kind().unwrap();
        assert_eq!(e.by_node(), kind != "audience", "{kind}");
        // No template text in the row (a webhook's url is still its address, `to`).
        for t in ["{{", "Loyal customer?"] {
            assert!(!raw.windows(t.len()).any(|w| w == t.as_bytes()), "{t:?} in a {kind} row");
        }
        if e.by_node() {
            assert!(named_effect(raw).unwrap_err().contains("Catalog.named_effect"));
        }
    }
    for (_, old_raw, old_named) in before() {
        assert_eq!(named_effect_in(&cat, &old_raw).unwrap(), old_named);
        assert_eq!(named_effect(&old_raw).unwrap(), old_named);
    }
    // A catalog without the program (or the node) cannot fill the templates in.
    let (_, raw) = shard.outbox.iter().find(|(_, v)| StoredEffect::decode(v).unwrap().node == "m").unwrap();
    assert!(named_effect_in(&Catalog::empty(), raw).unwrap_err().contains("program 'mail' version 1 is not in the definitions"));
    let mut e = StoredEffect::decode(raw).unwrap();
    e.node = "e".into();
    assert!(e.resolve(&cat).unwrap_err().contains("no action node 'e'"));
}

/// A later version of a program with other templates: effects written under the
/// first read its templates, effects written under the second read the new ones.
#[test]
fn each_effect_reads_the_templates_of_its_version() {
    let v1 = catalog(r#"{"programs": [{"name": "p", "trigger": {"event": "signup"}, "nodes": [
        {"id": "a", "type": "action", "send": {"channel": "in_app", "text": "one"}, "next": "e"}, {"id": "e", "type": "end"}]}]}"#);
    let v2 = cairn_core::definitions::compile_next(
        &doc(r#"{"programs": [{"name": "p", "trigger": {"event": "signup"}, "nodes": [
        {"id": "a", "type": "action", "send": {"channel": "in_app", "text": "two", "title": "t"}, "next": "e"}, {"id": "e", "type": "end"}]}]}"#),
        2,
        Some(&v1),
    )
    .unwrap();
    let mut shard = Shard::default();
    shard.send(&v1, T0, "ann", "signup", json!({}));
    shard.send(&v2, T0, "bob", "signup", json!({}));
    let texts: Vec<Value> = shard
        .outbox
        .iter()
        .map(|(_, raw)| decode_exact::<Value>(&named_effect_in(&v2, raw).unwrap()).unwrap().get("message").unwrap().clone())
        .collect();
    let message = |entries: Vec<(&str, &str)>| Value::Map(entries.into_iter().map(|(k, v)| (k.into(), Value::Str(v.into()))).collect());
    assert_eq!(texts, vec![message(vec![("text", "one")]), message(vec![("text", "two"), ("title", "t")])]);
}
