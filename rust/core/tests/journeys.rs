//! Journeys in the core alone: an in-memory shard (states, timers, history sequence)
//! drives `apply` as the store does, so waits, timers, goals, facts, segments and
//! versions are checked without LMDB or Python.

mod shard;

use cairn_core::definitions::compile_next;
use cairn_core::keys::parse_timer_key;
use cairn_core::state::State;
use cairn_core::value::encode;
use cairn_core::{Batch, Catalog};
use shard::*;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

const WAIT: &str = r#"{"programs": [{"name": "p", "trigger": {"event": "signup"}, "nodes": [
    {"id": "w", "type": "wait", "duration": "2d", "next": "a"},
    {"id": "a", "type": "action", "send": {"channel": "in_app", "text": "hi"}, "next": "e"},
    {"id": "e", "type": "end"}]}]}"#;

#[test]
fn a_wait_sets_a_timer_that_fires_once_through_apply() {
    let cat = catalog(WAIT);
    let mut shard = Shard::default();
    let r = shard.send(&cat, T0, "ann", "signup", serde_json::json!({}));
    assert_eq!(r.timers.len(), 1);
    assert_eq!(parse_timer_key(&r.timers[0]), Some((T0 + 2 * DAY, "ann", 1)));
    assert_eq!(shard.state("ann").runs[0].node, "w");
    assert_eq!(shard.fire(&cat, T0 + 2 * DAY - 1), 0);
    assert_eq!(shard.fire(&cat, T0 + 2 * DAY), 1);
    assert_eq!(shard.sent, vec![("in_app".into(), "ann".into(), "a".into(), "hi".into())]);
    assert!(shard.timers.is_empty() && shard.state("ann").runs.is_empty());
    assert_eq!(shard.steps("p"), pairs(&[("w", "wait"), ("w", "woke"), ("a", "sent"), ("e", "end")]));

    // The same timer event again (its row went with the step's commit; here forced
    // back) is a duplicate: no second message, and its timer row goes again.
    let key = parse_timer_key(&r.timers[0]).unwrap();
    let again = shard.apply(&cat, Batch::timers(&[cairn_core::keys::timer_key(key.0, key.1, key.2)]).unwrap(), T0 + 3 * DAY);
    assert_eq!((again.accepted, again.duplicates, again.effects), (0, 1, 0));
    assert_eq!(again.timer_deletes.len(), 1);
    assert_eq!(shard.sent.len(), 1);
}

#[test]
fn replay_is_deterministic() {
    let cat = catalog(WAIT);
    let run = || {
        let mut shard = Shard::default();
        shard.send(&cat, T0, "ann", "signup", serde_json::json!({"x": 1}));
        shard.send(&cat, T0 + HOUR, "bob", "signup", serde_json::json!({}));
        shard.fire(&cat, T0 + 3 * DAY);
        (shard.states, shard.stored_history)
    };
    assert_eq!(run(), run());
}

#[test]
fn wait_for_matches_the_trigger_attribute_and_times_out() {
    let cat = catalog(
        r#"{"programs": [{"name": "cart", "trigger": {"event": "cart_update"}, "entry": {"concurrent": true}, "nodes": [
        {"id": "w", "type": "wait_for", "event": "purchase", "same": "cart_id", "timeout": "1d", "occurred": "e", "not_occurred": "r"},
        {"id": "r", "type": "action", "send": {"channel": "push", "text": "cart {{ event.cart_id }}"}, "next": "e"},
        {"id": "e", "type": "end"}]}]}"#,
    );
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "cart_update", serde_json::json!({"cart_id": "c1"}));
    shard.send(&cat, T0, "ann", "cart_update", serde_json::json!({"cart_id": "c2"}));
    assert_eq!(shard.timers.len(), 2);
    let r = shard.send(&cat, T0 + HOUR, "ann", "purchase", serde_json::json!({"cart_id": "c2"}));
    assert_eq!(r.timer_deletes.len(), 1);
    assert_eq!(shard.state("ann").runs.len(), 1);
    shard.send(&cat, T0 + 2 * HOUR, "ann", "purchase", serde_json::json!({}));
    assert_eq!(shard.state("ann").runs.len(), 1, "a purchase without cart_id matches no cart");
    assert_eq!(shard.fire(&cat, T0 + DAY), 1);
    assert_eq!(shard.sent, vec![("push".into(), "ann".into(), "r".into(), "cart {{ event.cart_id }}".into())]);
}

#[test]
fn history_counts_are_exact_within_their_window_and_bounded() {
    let cat = catalog(
        r#"{"programs": [{"name": "p", "trigger": {"event": "view"}, "nodes": [
        {"id": "d", "type": "decision", "when": {"event": "view", "same": "sku", "within": "7d", "count": {"op": "gt", "value": 2}}, "yes": "a", "no": "e"},
        {"id": "a", "type": "action", "send": {"channel": "web", "text": "t"}, "next": "e"},
        {"id": "e", "type": "end"}]}]}"#,
    );
    let mut shard = Shard::default();
    for k in 0..5 {
        shard.send(&cat, T0 + k * DAY, "ann", "view", serde_json::json!({"sku": "A"}));
    }
    // Views 3, 4, 5 have more than two views of A in 7 days.
    assert_eq!(shard.sent.len(), 3);
    let facts = &shard.state("ann").facts;
    let (_, by_value) = facts.iter().next().unwrap();
    assert_eq!(by_value.get("A").unwrap().len(), 3, "keeps count + 1 timestamps, no more");
    // Eight days later the old views fell out of the window.
    shard.send(&cat, T0 + 12 * DAY, "ann", "view", serde_json::json!({"sku": "A"}));
    assert_eq!(shard.sent.len(), 3);
    // Other products count apart.
    shard.send(&cat, T0 + 12 * DAY, "ann", "view", serde_json::json!({"sku": "B"}));
    assert_eq!(shard.state("ann").facts.values().next().unwrap().len(), 2);
}

#[test]
fn segments_combine_profile_and_history() {
    let cat = catalog(
        r#"{"segments": [{"name": "regulars", "when": {"all": [
            {"event": "store_visit", "where": {"attr": "store", "op": "equals", "value": "MI"}, "within": "30d", "count": {"op": "gte", "value": 2}},
            {"profile": "city", "op": "equals", "value": "Milano"}]}}],
        "programs": [{"name": "p", "trigger": {"event": "purchase"}, "nodes": [
            {"id": "d", "type": "decision", "when": {"segment": "Regulars"}, "yes": "a", "no": "e"},
            {"id": "a", "type": "action", "send": {"channel": "web", "text": "t"}, "next": "e"},
            {"id": "e", "type": "end"}]}]}"#,
    );
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "$profile", serde_json::json!({"set": {"city": "Milano"}}));
    shard.send(&cat, T0, "ann", "store_visit", serde_json::json!({"store": "MI"}));
    shard.send(&cat, T0 + DAY, "ann", "purchase", serde_json::json!({}));
    assert!(shard.sent.is_empty());
    shard.send(&cat, T0 + DAY, "ann", "store_visit", serde_json::json!({"store": "RM"}));
    shard.send(&cat, T0 + DAY, "ann", "store_visit", serde_json::json!({"store": "MI"}));
    shard.send(&cat, T0 + 2 * DAY, "ann", "purchase", serde_json::json!({}));
    assert_eq!(shard.sent.len(), 1);
    assert_eq!(shard.steps("p").last().unwrap(), &("e".to_owned(), "end".to_owned()));
}

#[test]
fn unchanged_programs_keep_their_version_and_old_ones_stay_for_runs() {
    let v1 = r#"{"programs": [
        {"name": "a", "trigger": {"event": "x"}, "nodes": [{"id": "e", "type": "end"}]},
        {"name": "b", "trigger": {"event": "x"}, "nodes": [{"id": "w", "type": "wait", "duration": "1d", "next": "e"}, {"id": "e", "type": "end"}]}]}"#;
    let c1 = compile_next(&doc(v1), 1, None).unwrap();
    let v2 = v1.replace("\"1d\"", "\"2d\"");
    let c2 = compile_next(&doc(&v2), 2, Some(&c1)).unwrap();
    assert_eq!(c2.programs.iter().map(|p| (p.name.as_str(), p.version)).collect::<Vec<_>>(), vec![("a", 1), ("b", 2)]);
    assert_eq!(c2.retired.iter().map(|p| (p.name.as_str(), p.version)).collect::<Vec<_>>(), vec![("b", 1)]);
    // A run that entered b v1 keeps walking v1 under catalog v2.
    let mut shard = Shard::default();
    shard.send(&c1, T0, "ann", "x", serde_json::json!({}));
    assert_eq!(shard.state("ann").runs[0].version, 1);
    assert_eq!(shard.fire(&c2, T0 + DAY), 1);
    assert!(shard.state("ann").runs.is_empty());
    // Removing b keeps b v1 and b v2 retired.
    let c3 = compile_next(&doc(r#"{"programs": []}"#), 3, Some(&c2)).unwrap();
    assert_eq!(c3.retired.len(), 3);
}

#[test]
fn a_program_changes_version_when_a_segment_it_uses_changes() {
    let defs = |visits: i64, cap: i64| {
        format!(
            r#"{{"segments": [{{"name": "regulars", "when": {{"event": "visit", "count": {{"op": "gte", "value": {visits}}}}}}}],
            "arbitration": {{"caps": [{{"channel": "push", "max": {cap}, "per": "1d"}}]}},
            "programs": [
                {{"name": "uses", "trigger": {{"event": "x"}}, "nodes": [{{"id": "d", "type": "decision", "when": {{"segment": "Regulars"}}, "yes": "e", "no": "e"}}, {{"id": "e", "type": "end"}}]}},
                {{"name": "plain", "trigger": {{"event": "x"}}, "nodes": [{{"id": "e", "type": "end"}}]}}]}}"#
        )
    };
    let c1 = compile_next(&doc(&defs(2, 1)), 1, None).unwrap();
    let versions = |c: &Catalog| c.programs.iter().map(|p| (p.name.clone(), p.version)).collect::<Vec<_>>();
    let c2 = compile_next(&doc(&defs(3, 1)), 2, Some(&c1)).unwrap();
    assert_eq!(versions(&c2), vec![("uses".to_owned(), 2), ("plain".to_owned(), 1)]);
    // Arbitration limits every program's messages: all of them change.
    let c3 = compile_next(&doc(&defs(3, 2)), 3, Some(&c2)).unwrap();
    assert_eq!(versions(&c3), vec![("uses".to_owned(), 3), ("plain".to_owned(), 3)]);
}

#[test]
fn wait_until_a_time_of_day_in_the_contacts_zone() {
    let cat = catalog(
        r#"{"programs": [{"name": "p", "trigger": {"event": "x"}, "time_zone": "Europe/Rome", "nodes": [
        {"id": "w", "type": "wait", "until": {"time": "08:00", "time_zone": "contact"}, "next": "e"},
        {"id": "e", "type": "end"}]}]}"#,
    );
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ny", "$profile", serde_json::json!({"set": {"time_zone": "America/New_York"}}));
    shard.send(&cat, T0, "ny", "x", serde_json::json!({}));
    shard.send(&cat, T0, "rome", "x", serde_json::json!({}));
    // 09:00 UTC: 04:00 in New York -> 08:00 New York = 13:00 UTC today; 10:00 in Rome
    // -> 08:00 Rome tomorrow = 07:00 UTC.
    assert_eq!(shard.state("ny").runs[0].wake_ms, T0 + 4 * HOUR);
    assert_eq!(shard.state("rome").runs[0].wake_ms, T0 + DAY - 2 * HOUR);
}

#[test]
fn email_needs_opt_in_and_a_valid_address_unless_transactional() {
    let program = |transactional: bool| {
        format!(
            r#"{{"programs": [{{"name": "p", "transactional": {transactional}, "trigger": {{"event": "x"}}, "nodes": [
            {{"id": "m", "type": "action", "send": {{"channel": "email", "text": "t"}}, "next": "e"}}, {{"id": "e", "type": "end"}}]}}]}}"#
        )
    };
    for (transactional, profile, sent) in [
        (false, serde_json::json!({"email": "a@b.it"}), false),
        (false, serde_json::json!({"email": "a@b.it", "email_opt_in": true}), true),
        (false, serde_json::json!({"email": "not-an-address", "email_opt_in": true}), false),
        (true, serde_json::json!({"email": "a@b.it"}), true),
    ] {
        let cat = catalog(&program(transactional));
        let mut shard = Shard::default();
        shard.send(&cat, T0, "c", "$profile", serde_json::json!({ "set": profile }));
        shard.send(&cat, T0, "c", "x", serde_json::json!({}));
        assert_eq!(shard.sent.len(), usize::from(sent), "{transactional} {profile}");
    }
}

#[test]
fn update_profile_sets_and_removes_fields() {
    let cat = catalog(
        r#"{"programs": [{"name": "p", "trigger": {"event": "x"}, "nodes": [
        {"id": "u", "type": "action", "update_profile": {"set": {"tier": "gold", "old": null}, "unset": ["gone"]}, "next": "e"},
        {"id": "e", "type": "end"}]}]}"#,
    );
    let mut shard = Shard::default();
    shard.send(&cat, T0, "ann", "$profile", serde_json::json!({"set": {"old": 1, "gone": 2, "kept": 3}}));
    shard.send(&cat, T0, "ann", "x", serde_json::json!({}));
    let profile = shard.state("ann").profile;
    assert_eq!(profile.keys().collect::<Vec<_>>(), vec!["kept", "tier"]);
    assert_eq!(shard.steps("p")[0], ("u".to_owned(), "updated".to_owned()));
}

#[test]
fn new_counted_histories_are_backfilled_from_stored_history() {
    let none = catalog(r#"{}"#);
    let mut shard = Shard::default();
    shard.send(&none, T0, "ann", "visit", serde_json::json!({"store": "MI"}));
    shard.send(&none, T0 + HOUR, "ann", "visit", serde_json::json!({"store": "RM"}));
    shard.send(&none, T0 + HOUR, "bob", "visit", serde_json::json!({"store": "MI"}));
    let counting = compile_next(
        &doc(r#"{"segments": [{"name": "mi", "when": {"event": "visit", "where": {"attr": "store", "op": "equals", "value": "MI"}, "within": "30d"}}]}"#),
        2,
        Some(&none),
    )
    .unwrap();
    let keys: Vec<u64> = counting.facts.iter().map(|f| f.key).collect();
    let states: Vec<(Vec<u8>, Vec<u8>)> = shard.states.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // Rows as stored now, and as named maps (how rows were stored before): both count.
    let named: Vec<Vec<u8>> = shard.history.iter().map(encode).collect();
    assert_eq!(cairn_core::facts::backfill(&counting, &keys, &named, &states), cairn_core::facts::backfill(&counting, &keys, &shard.stored_history, &states));
    let history = shard.stored_history;
    assert_eq!(cairn_core::facts::backfill_contacts(&counting, &keys, &history), vec![b"ann".to_vec(), b"bob".to_vec()]);
    assert_eq!(cairn_core::facts::backfill_contacts(&counting, &keys, &named), vec![b"ann".to_vec(), b"bob".to_vec()]);
    let rows = cairn_core::facts::backfill(&counting, &keys, &history, &states).unwrap();
    let stored = rows.to_vec();
    let members = cairn_core::inspect::segment_members(&counting, 0, &stored, T0 + DAY).unwrap();
    assert_eq!(members, vec![&b"ann"[..], &b"bob"[..]]);
    let ann = State::decode("ann", rows.get(0).1).unwrap();
    assert_eq!(ann.facts.get(&keys[0]).unwrap().get(""), Some(&vec![T0]), "only the MI visit counts");
}

#[test]
fn invalid_programs_are_rejected_with_their_paths() {
    let one = |nodes: &str| errors(&format!(r#"{{"programs": [{{"name": "p", "trigger": {{"event": "x"}}, "nodes": {nodes}}}]}}"#));
    let cases: &[(&str, &str)] = &[
        (
            r#"[{"id": "a", "type": "action", "send": {"channel": "web", "text": "t"}, "next": "b"}, {"id": "b", "type": "decision", "when": {"attr": "k", "op": "exists"}, "yes": "a", "no": "e"}, {"id": "e", "type": "end"}]"#,
            "programs[0].nodes: cycle a -> b -> a has no wait or wait_for node",
        ),
        (r#"[{"id": "s", "type": "splitter", "branches": [{"when": {"attr": "k", "op": "exists"}, "next": "e"}]}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0]: a splitter node needs 'else'"),
        (r#"[{"id": "w", "type": "wait_for", "event": "buy", "occurred": "e", "not_occurred": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0]: a wait_for node needs 'timeout'"),
        (r#"[{"id": "w", "type": "wait", "next": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0]: a wait node needs exactly one of 'duration'"),
        (r#"[{"id": "r", "type": "random", "branches": [{"weight": 0, "next": "e"}]}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0].branches[0].weight: a random branch needs a positive 'weight'"),
        (r#"[{"id": "a", "type": "action", "send": {"channel": "web", "text": "t"}, "webhook": {"url": "http://x"}, "next": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0]: an action node needs exactly one of: send, audience, update_profile, webhook"),
        (r#"[{"id": "a", "type": "action", "send": {"channel": "ads", "text": "t"}, "next": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0].send.channel: the ads channel takes audiences"),
        (r#"[{"id": "d", "type": "decision", "when": {"segment": "vips"}, "yes": "e", "no": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0].when.segment: unknown segment 'vips'"),
        (r#"[{"id": "d", "type": "decision", "when": {"event": "view", "count": {"op": "contains", "value": 1}}, "yes": "e", "no": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0].when.count.op: unknown count operator 'contains'"),
        (r#"[{"id": "d", "type": "decision", "when": {"attr": "k", "op": "exists", "within": "7d"}, "yes": "e", "no": "e"}, {"id": "e", "type": "end"}]"#, "programs[0].nodes[0].when.within: 'within' belongs to an event (history) condition"),
    ];
    for (nodes, want) in cases {
        let got = one(nodes);
        assert!(got.iter().any(|e| e.starts_with(want)), "want {want:?}, got {got:?}");
    }
    let e = errors(r#"{"strict_types": true, "segments": [{"name": "s", "when": {"event": "vist"}}]}"#);
    assert!(e[0].starts_with("segments[0].when.event: unknown event type 'vist' (strict_types is on"), "{e:?}");
    let e = errors(r#"{"segments": [{"name": "s", "when": {"attr": "k", "op": "exists"}}]}"#);
    assert!(e[0].starts_with("segments[0].when.attr: there is no event here"), "{e:?}");
    let e = errors(r#"{"programs": [{"name": "p", "time_zone": "Mars/Olympus", "trigger": {"event": "x"}, "nodes": [{"id": "e", "type": "end"}]}]}"#);
    assert!(e[0].starts_with("programs[0].time_zone: unknown time zone 'Mars/Olympus'"), "{e:?}");
    // A cycle through a wait is a legal loop.
    assert!(one(r#"[{"id": "w", "type": "wait", "duration": "1d", "next": "a"}, {"id": "a", "type": "action", "send": {"channel": "web", "text": "t"}, "next": "w"}]"#).is_empty());
}
