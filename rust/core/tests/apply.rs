mod common;

use cairn_core::state::State;
use cairn_core::effect::named_effect_in;
use cairn_core::event::named_history_with;
use cairn_core::value::decode_exact;
use cairn_core::{apply, compile, split_frame, Batch, BatchResult, Catalog, Value};
use common::*;

fn catalog() -> Catalog {
    let leaf = |k: &str, name: &str, op: &str, v: Option<Value>| {
        let mut e = vec![(k, s(name)), ("op", s(op))];
        if let Some(v) = v {
            e.push(("value", v));
        }
        map(e)
    };
    let doc = map(vec![
        ("profile_fields", map(vec![("email", s("text")), ("tag", s("text"))])),
        (
            "interaction_types",
            list(vec![map(vec![
                ("name", s("purchase")),
                ("channel", s("store")),
                ("source", s("api")),
                ("attributes", map(vec![("store_code", s("text")), ("amount", s("number"))])),
            ])]),
        ),
        (
            "programs",
            list(vec![
                map(vec![
                    ("name", s("milan_vip")),
                    ("trigger", map(vec![("event", s("Purchase")), ("filter", leaf("attr", "amount", "gte", Some(i(10))))])),
                    (
                        "nodes",
                        list(vec![
                            map(vec![
                                ("id", s("check")),
                                ("type", s("decision")),
                                ("when", map(vec![("all", list(vec![leaf("attr", "store_code", "equals", Some(s("MI"))), leaf("profile", "tag", "exists", None)]))])),
                                ("yes", s("mail")),
                                ("no", s("done")),
                            ]),
                            map(vec![
                                ("id", s("mail")),
                                ("type", s("action")),
                                ("send", map(vec![("channel", s("email")), ("text", s("Hi {{ event.store_code }}")), ("subject", s("Milan"))])),
                                ("next", s("sms")),
                            ]),
                            map(vec![
                                ("id", s("sms")),
                                ("type", s("action")),
                                ("send", map(vec![("channel", s("sms")), ("text", s("Hi"))])),
                                ("next", s("done")),
                            ]),
                            map(vec![("id", s("done")), ("type", s("end"))]),
                        ]),
                    ),
                ]),
                map(vec![
                    ("name", s("welcome")),
                    ("trigger", map(vec![("event", s("app_install"))])),
                    (
                        "nodes",
                        list(vec![
                            map(vec![("id", s("push")), ("type", s("action")), ("send", map(vec![("channel", s("push")), ("text", s("Welcome")), ("title", s("Hi"))])), ("next", s("end"))]),
                            map(vec![("id", s("end")), ("type", s("end"))]),
                        ]),
                    ),
                ]),
            ]),
        ),
        (
            "loyalty",
            list(vec![
                map(vec![
                    ("name", s("club")),
                    ("currency", s("EUR")),
                    (
                        "rules",
                        list(vec![map(vec![
                            ("name", s("big_basket")),
                            ("event", s("purchase")),
                            ("when", leaf("attr", "amount", ">", Some(i(100)))),
                            (
                                "effects",
                                list(vec![
                                    map(vec![("credit", map(vec![("points", i(50)), ("kind", s("non_qualifying"))]))]),
                                    map(vec![("credit", map(vec![("points", i(5)), ("kind", s("qualifying"))]))]),
                                ]),
                            ),
                        ])]),
                    ),
                ]),
                map(vec![
                    ("name", s("vip")),
                    ("join", s("subscribe")),
                    (
                        "rules",
                        list(vec![map(vec![
                            ("name", s("any_purchase")),
                            ("event", s("purchase")),
                            ("effects", list(vec![map(vec![("credit", map(vec![("points", i(1)), ("kind", s("qualifying"))]))])])),
                        ])]),
                    ),
                ]),
            ]),
        ),
    ]);
    compile(&bytes(&doc), 2).unwrap()
}

fn event(id: &str, contact: &str, ty: &str, ts: i64, attrs: Value) -> Value {
    map(vec![("id", s(id)), ("contact", s(contact)), ("type", s(ty)), ("ts", i(ts)), ("attrs", attrs)])
}

fn batch_of(cat: &Catalog, events: Vec<Value>) -> Batch {
    let f = bytes(&map(vec![("op", s("events")), ("events", list(events))]));
    let split = split_frame(cat, &f, 1, 1).unwrap();
    assert!(split.rejected.is_empty(), "{:?}", split.rejected);
    let parts: Vec<Vec<u8>> = split.batches.into_iter().map(|b| b.1).collect();
    Batch::decode(&parts).unwrap()
}

fn run(cat: &Catalog, events: Vec<Value>, states: &[(Vec<u8>, Vec<u8>)]) -> BatchResult {
    run_from(cat, events, states, 1)
}

/// Apply with the shard's history at `next_seq`.
fn run_from(cat: &Catalog, events: Vec<Value>, states: &[(Vec<u8>, Vec<u8>)], next_seq: u64) -> BatchResult {
    let b = batch_of(cat, events);
    apply(cat, &b, states, &[] as &[(Vec<u8>, Vec<u8>)], 777, next_seq).unwrap()
}

fn state_of(r: &BatchResult, contact: &str) -> State {
    let (_, v) = r.states.iter().find(|(k, _)| *k == contact.as_bytes()).unwrap();
    State::decode(contact, v).unwrap()
}

/// The `n`th history row of a result, as readers see it (named, decision traces
/// rendered with the catalog).
fn history_row(cat: &Catalog, r: &BatchResult, n: usize) -> Value {
    let (key, raw) = r.history.get(n);
    let seq = u64::from_be_bytes(key.try_into().unwrap());
    decode_exact(&named_history_with(raw, seq, Some(cat)).unwrap()).unwrap()
}

/// The `n`th effect of a result, as readers see it (named).
fn effect(cat: &Catalog, r: &BatchResult, n: usize) -> Value {
    decode_exact(&named_effect_in(cat, r.outbox.get(n).1).unwrap()).unwrap()
}

/// The program runs recorded in the `n`th history row of a result.
fn runs_of(cat: &Catalog, r: &cairn_core::apply::BatchResult, n: usize) -> Vec<Value> {
    let row = history_row(cat, r, n);
    match row.get("runs") {
        Some(Value::Array(runs)) => runs.clone(),
        other => panic!("history row without runs: {other:?}"),
    }
}

/// A run is encoded as `[program, version, run id, steps]`, a step as `[node, outcome, reason]`.
fn field(v: &Value, i: usize) -> &Value {
    match v {
        Value::Array(items) => &items[i],
        other => panic!("expected an array, got {other:?}"),
    }
}

fn steps(run: &Value) -> Vec<Value> {
    match field(run, 3) {
        Value::Array(s) => s.clone(),
        other => panic!("run without steps: {other:?}"),
    }
}

fn text(step: &Value, key: &str) -> String {
    let i = ["node", "outcome", "reason"].iter().position(|k| *k == key).unwrap();
    field(step, i).as_str().unwrap_or_default().to_owned()
}

fn profile(id: &str, contact: &str, set: Vec<(&str, Value)>) -> Value {
    event(id, contact, "$profile", 1, map(vec![("set", map(set))]))
}

fn purchase(id: &str, contact: &str, code: &str, amount: i64) -> Value {
    event(id, contact, "purchase", 10, map(vec![("store_code", s(code)), ("amount", i(amount))]))
}

#[test]
fn program_walk_sends_and_explains() {
    let cat = catalog();
    let r = run(
        &cat,
        vec![profile("p1", "c1", vec![("tag", s("vip")), ("email", s("a@b.c")), ("email_opt_in", Value::Bool(true))]), purchase("e1", "c1", "MI", 120)],
        &[],
    );
    assert_eq!((r.accepted, r.duplicates, r.effects), (2, 0, 1));
    assert_eq!(state_of(&r, "c1").events, 2);
    let runs = runs_of(&cat, &r, 1);
    let run = &runs[0];
    assert_eq!(field(run, 0), &s("milan_vip"));
    assert_eq!(field(run, 1), &i(2));
    let outcomes: Vec<(String, String)> = steps(run).iter().map(|st| (text(st, "node"), text(st, "outcome"))).collect();
    let want = [("check", "yes"), ("mail", "sent"), ("sms", "skipped"), ("done", "end")];
    assert_eq!(outcomes, want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
    assert_eq!(text(&steps(run)[0], "reason"), "attr store_code = 'MI' equals 'MI': true; profile tag = 'vip' exists: true => yes");
    assert_eq!(text(&steps(run)[2], "reason"), "no 'phone' in profile");
    let key = r.outbox.get(0).0;
    let eff = effect(&cat, &r, 0);
    // Key: the history sequence of the causing event (2: the profile event was 1),
    // then the effect's index within that event.
    assert_eq!(key, &[&2u64.to_be_bytes()[..], &0u32.to_be_bytes()[..]].concat()[..]);
    assert_eq!(eff.get("id").unwrap().as_str().unwrap().len(), 16);
    assert_eq!(eff.get("to"), Some(&s("a@b.c")));
    assert_eq!(eff.get("channel"), Some(&s("email")));
    assert_eq!(eff.get("message"), Some(&map(vec![("text", s("Hi {{ event.store_code }}")), ("subject", s("Milan"))])));
    let ctx = eff.get("context").unwrap();
    assert_eq!(ctx.get("event").unwrap().get("attrs").unwrap().get("store_code"), Some(&s("MI")));
    // The templates read no profile field: the effect carries none of them.
    assert_eq!(ctx.get("profile"), Some(&map(vec![])));
}

#[test]
fn effect_context_carries_the_profile_fields_templates_read() {
    let doc = map(vec![(
        "programs",
        list(vec![map(vec![
            ("name", s("p")),
            ("trigger", map(vec![("event", s("signup"))])),
            (
                "nodes",
                list(vec![
                    map(vec![
                        ("id", s("a")),
                        ("type", s("action")),
                        ("send", map(vec![("channel", s("in_app")), ("text", s("Hi {{ profile.first_name }} {{ profile['city'] }}"))])),
                        ("next", s("e")),
                    ]),
                    map(vec![("id", s("e")), ("type", s("end"))]),
                ]),
            ),
        ])]),
    )]);
    let cat = cairn_core::compile(&bytes(&doc), 1).unwrap();
    let set = vec![("first_name", s("Ann")), ("city", s("Milano")), ("email", s("a@b.c")), ("tag", s("vip"))];
    let r = run(&cat, vec![profile("p1", "c1", set), event("s1", "c1", "signup", 5, map(vec![]))], &[]);
    let eff = effect(&cat, &r, 0);
    let want = map(vec![("city", s("Milano")), ("first_name", s("Ann"))]);
    assert_eq!(eff.get("context").unwrap().get("profile"), Some(&want));
}

#[test]
fn decision_no_branch_and_filter() {
    let cat = catalog();
    let r = run(&cat, vec![purchase("e1", "c1", "RM", 50), purchase("e2", "c1", "MI", 5)], &[]);
    // The second purchase is filtered out (amount < 10): no run in its history row.
    assert!(runs_of(&cat, &r, 1).is_empty());
    let run = &runs_of(&cat, &r, 0)[0];
    assert_eq!(text(&steps(run)[0], "reason"), "attr store_code = 'RM' equals 'MI': false => no");
    assert_eq!(text(&steps(run)[1], "outcome"), "end");
    assert_eq!(r.effects, 0);
}

#[test]
fn push_falls_back_to_contact() {
    let cat = catalog();
    let r = run(&cat, vec![event("i", "c9", "app_install", 1, map(vec![]))], &[]);
    let eff = effect(&cat, &r, 0);
    assert_eq!(eff.get("to"), Some(&s("c9")));
    assert_eq!(eff.get("message").unwrap().get("title"), Some(&s("Hi")));
    let r = run(&cat, vec![profile("p", "c9", vec![("push_token", s("tok"))]), event("i", "c9", "app_install", 1, map(vec![]))], &[]);
    let eff = effect(&cat, &r, 0);
    assert_eq!(eff.get("to"), Some(&s("tok")));
}

#[test]
fn dedup_against_store_and_within_batch() {
    let cat = catalog();
    let b = batch_of(&cat, vec![purchase("e1", "c1", "MI", 120), purchase("e1", "c1", "MI", 120), purchase("e2", "c1", "MI", 120), purchase("e1", "c2", "MI", 120)]);
    assert_eq!(b.state_keys(), vec![b"c1".to_vec(), b"c2".to_vec()]);
    let r = apply(&cat, &b, &[] as &[(Vec<u8>, Vec<u8>)], &[] as &[(Vec<u8>, Vec<u8>)], 0, 40).unwrap();
    assert_eq!((r.accepted, r.duplicates), (3, 1), "the in-batch repeat of c1/e1");
    assert_eq!(r.parts, vec![(3, 1)]);
    assert_eq!(r.history.len(), 3);
    assert_eq!(r.history.get(1).0, &41u64.to_be_bytes()[..], "duplicates take no sequence");
    assert_eq!(r.next_seq, 43);
    assert!(r.seen.is_empty(), "recent ids live in the state while they fit");
    let st = state_of(&r, "c1");
    assert_eq!((st.events, st.recent.clone(), st.spilled), (2, vec![("e1".to_owned(), 40), ("e2".to_owned(), 41)], 0));

    // A resend of everything, against the stored states: all duplicates.
    let again = apply(&cat, &b, &r.states.to_vec(), &[] as &[(Vec<u8>, Vec<u8>)], 0, 43).unwrap();
    assert_eq!((again.accepted, again.duplicates, again.next_seq), (0, 4, 43));
    assert!(again.states.is_empty() && again.history.is_empty(), "duplicates change nothing");
}

#[test]
fn old_ids_spill_to_seen_and_are_still_duplicates() {
    let cat = catalog();
    let n = cairn_core::state::RECENT_IDS + 3;
    let evs = |range: std::ops::Range<usize>| range.map(|i| purchase(&format!("e{i}"), "c1", "RM", 1)).collect::<Vec<_>>();
    let first = run(&cat, evs(0..n), &[]);
    // The 3 oldest ids no longer fit in the state: written to the seen table.
    let spilled = first.seen.to_vec();
    assert_eq!(spilled.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), vec![b"c1\0e0".to_vec(), b"c1\0e1".to_vec(), b"c1\0e2".to_vec()]);
    assert_eq!(spilled[0].1, 1u64.to_be_bytes().to_vec(), "value: the history sequence");
    let stored = first.states.to_vec();
    assert_eq!(state_of(&first, "c1").spilled, 3);

    // A resend of e1 and a new event: e1 must be looked up in the seen table.
    let b = batch_of(&cat, vec![purchase("e1", "c1", "RM", 1), purchase("new", "c1", "RM", 1)]);
    let mut held = cairn_core::HeldStates::new(0);
    held.load(&b, &stored).unwrap();
    assert_eq!(cairn_core::apply::seen_lookups(&b, &held), vec![b"c1\0e1".to_vec(), b"c1\0new".to_vec()]);
    let r = cairn_core::apply::apply_held(&cat, &b, &mut held, &spilled, 0, first.next_seq);
    assert_eq!((r.accepted, r.duplicates), (1, 1));
    // Without the seen row, e1 would have been applied twice: the lookup matters.
    let wrong = apply(&cat, &b, &stored, &[] as &[(Vec<u8>, Vec<u8>)], 0, first.next_seq).unwrap();
    assert_eq!(wrong.accepted, 2);
}

#[test]
fn an_id_spilled_within_the_batch_is_still_a_duplicate() {
    let cat = catalog();
    let n = cairn_core::state::RECENT_IDS + 2;
    let mut evs: Vec<Value> = (0..n).map(|i| purchase(&format!("e{i}"), "c1", "RM", 1)).collect();
    evs.push(purchase("e0", "c1", "RM", 1));
    let r = run(&cat, evs, &[]);
    assert_eq!((r.accepted, r.duplicates), (n, 1));
}

#[test]
fn parts_are_counted_in_order() {
    let cat = catalog();
    let p1 = batch_of(&cat, vec![purchase("e1", "c1", "MI", 1)]);
    let enc = |b: &Batch| bytes(&Value::Array(b.events.iter().map(|e| decode_exact(&cairn_core::value::encode(e)).unwrap()).collect()));
    let a = enc(&p1);
    let b = Batch::decode(&[a.clone(), a.clone(), bytes(&list(vec![]))]).unwrap();
    assert_eq!(b.len(), 2);
    let r = apply(&cat, &b, &[] as &[(Vec<u8>, Vec<u8>)], &[] as &[(Vec<u8>, Vec<u8>)], 0, 1).unwrap();
    assert_eq!(r.parts, vec![(1, 0), (0, 1), (0, 0)]);
    assert!(Batch::decode(&[b"\x91\x01".to_vec()]).is_err());
}

#[test]
fn state_carries_across_batches() {
    let cat = catalog();
    let r1 = run(&cat, vec![profile("p", "c1", vec![("tag", s("x"))]), purchase("e1", "c1", "MI", 150)], &[]);
    let r2 = run_from(&cat, vec![purchase("e2", "c1", "MI", 150)], &r1.states.to_vec(), r1.next_seq);
    let st = state_of(&r2, "c1");
    assert_eq!((st.events, r1.next_seq, r2.next_seq), (3, 3, 4));
    assert_eq!(st.profile.get("tag"), Some(&s("x")));
    assert_eq!(st.loyalty["club"].non_qualifying, 100);
    assert_eq!(runs_of(&cat, &r2, 0).len(), 1, "the run is in the history row of the event that caused it");
    assert_eq!(r2.history.get(0).0, &3u64.to_be_bytes()[..]);
    assert_eq!(r2.ledger.get(0).0, &[&3u64.to_be_bytes()[..], &0u32.to_be_bytes()[..]].concat()[..]);
    let bad = vec![(b"c1".to_vec(), b"\x01".to_vec())];
    let b = batch_of(&cat, vec![purchase("e3", "c1", "MI", 1)]);
    assert!(apply(&cat, &b, &bad, &[] as &[(Vec<u8>, Vec<u8>)], 0, 1).is_err());
}

#[test]
fn loyalty_crediting_currency_and_subscribe() {
    let cat = catalog();
    let usd = event("u", "c1", "purchase", 10, map(vec![("amount", i(500)), ("currency", s("USD"))]));
    let r = run(&cat, vec![purchase("small", "c1", "MI", 50), purchase("big", "c1", "MI", 120), usd], &[]);
    let st = state_of(&r, "c1");
    assert_eq!(st.loyalty.len(), 1, "vip needs a subscription");
    assert_eq!(st.loyalty["club"].non_qualifying, 50);
    assert_eq!(st.loyalty["club"].qualifying, 5);
    assert_eq!(st.loyalty["club"].joined_ms, 10);
    let per_event: Vec<Vec<Value>> =
        r.ledger.iter().map(|(_, v)| decode_exact(&cairn_core::loyalty::book::named_ledger(v).unwrap()).unwrap()).collect();
    let shape: Vec<Vec<&str>> =
        per_event.iter().map(|row| row.iter().map(|e| e.get("entry").and_then(Value::as_str).unwrap()).collect()).collect();
    assert_eq!(shape, [vec!["earn", "earn", "join"], vec!["refused"]], "one row per event with entries");
    let rows: Vec<Value> = per_event.into_iter().flatten().collect();
    assert_eq!(rows[0].get("delta"), Some(&i(50)));
    assert_eq!(rows[0].get("balance"), Some(&i(50)));
    assert_eq!(rows[0].get("kind"), Some(&s("non_qualifying")));
    assert_eq!(rows[0].get("rule"), Some(&s("big_basket")));
    assert_eq!(rows[0].get("version"), Some(&i(2)));
    assert_eq!(rows[0].get("reason"), Some(&s("rule big_basket: attr amount = 120 > 100: true")));
    assert_eq!(rows[3].get("delta"), Some(&i(0)));
    assert!(rows[3].get("reason").unwrap().as_str().unwrap().contains("currency 'USD' differs"));

    let sub = event("s", "c2", "loyalty_subscribe", 3, map(vec![("program", s("VIP"))]));
    let r = run(&cat, vec![sub, purchase("p", "c2", "RM", 5)], &[]);
    let st = state_of(&r, "c2");
    assert_eq!(st.loyalty["vip"].qualifying, 1);
    assert_eq!(st.loyalty["vip"].joined_ms, 3);
    // A subscription without a program joins the subscribe programs only.
    let sub_any = event("s", "c3", "loyalty_subscribe", 3, map(vec![]));
    let st = state_of(&run(&cat, vec![sub_any], &[]), "c3");
    assert_eq!(st.loyalty.keys().collect::<Vec<_>>(), ["vip"]);
}

#[test]
fn deterministic_bytes() {
    let cat = catalog();
    let evs = || vec![profile("p1", "c1", vec![("tag", s("vip")), ("email", s("a@b.c"))]), purchase("e1", "c1", "MI", 120), purchase("e1", "c2", "MI", 120)];
    assert_eq!(run(&cat, evs(), &[]), run(&cat, evs(), &[]));
}

#[test]
fn profile_update_applies_before_programs() {
    let cat = catalog();
    let r = run(&cat, vec![profile("p", "c1", vec![("tag", s("a"))]), event("u", "c1", "$profile", 1, map(vec![("unset", list(vec![s("tag")]))]))], &[]);
    assert!(state_of(&r, "c1").profile.is_empty());
}

/// Held states (a shard keeps decoded states between batches) give exactly the
/// rows that states read back from storage give, whether the held copies survive
/// or are evicted between batches.
#[test]
fn held_states_write_what_stored_states_write() {
    let cat = catalog();
    let contacts = ["c1", "c2", "c3", "c4", "c5"];
    let batches: Vec<Vec<Value>> = (0..6)
        .map(|round| {
            (0..8)
                .map(|k| {
                    let c = contacts[(round * 3 + k) % contacts.len()];
                    // Every third event repeats an id of the previous round: duplicates too.
                    let id = if k % 3 == 0 && round > 0 { format!("e{}-{k}", round - 1) } else { format!("e{round}-{k}") };
                    purchase(&id, c, if k % 2 == 0 { "MI" } else { "RM" }, 60 + 20 * k as i64)
                })
                .collect()
        })
        .collect();
    let mut stored: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
    let mut plenty = cairn_core::HeldStates::new(100);
    let mut scarce = cairn_core::HeldStates::new(2);
    let mut seq = 1;
    for events in batches {
        let b = batch_of(&cat, events);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = b.state_keys().into_iter().filter_map(|k| stored.get(&k).map(|v| (k, v.clone()))).collect();
        let cold = apply(&cat, &b, &rows, &[] as &[(Vec<u8>, Vec<u8>)], 777, seq).unwrap();
        for held in [&mut plenty, &mut scarce] {
            let missing: Vec<(Vec<u8>, Vec<u8>)> = held.missing(&b).into_iter().filter_map(|k| stored.get(&k).map(|v| (k, v.clone()))).collect();
            held.load(&b, &missing).unwrap();
            let mut warm = cairn_core::apply::apply_held(&cat, &b, held, &[] as &[(Vec<u8>, Vec<u8>)], 777, seq);
            // States bound for the state log come in no set order: the same rows.
            let mut logged = warm.states.to_vec();
            logged.sort();
            assert_eq!(logged, cold.states.to_vec(), "capacity {}", held.capacity());
            warm.states = cold.states.clone();
            assert_eq!(warm, cold, "capacity {}", held.capacity());
        }
        assert!(scarce.len() <= contacts.len() && plenty.len() == contacts.len());
        seq = cold.next_seq;
        stored.extend(cold.states.to_vec());
    }
}

/// The batch's attribute catalog notes every (type, attribute, inferred type) its
/// events carry, also when events of one type change shape within the batch.
#[test]
fn attribute_catalog_notes_every_shape_of_a_type() {
    let cat = catalog();
    let visit = |id: &str, attrs: Vec<(&str, Value)>| event(id, "c1", "visit", 10, map(attrs));
    let r = run(
        &cat,
        vec![
            visit("v1", vec![("page", s("home")), ("n", i(1))]),
            visit("v2", vec![("page", s("cart")), ("n", i(2))]),
            visit("v3", vec![("page", s("2026-11-23T10:00:00Z")), ("n", i(3))]),
            visit("v4", vec![("page", s("home")), ("n", i(4)), ("ok", Value::Bool(true))]),
            visit("v5", vec![("n", s("five"))]),
            purchase("p1", "c1", "MI", 3),
        ],
        &[],
    );
    let notes: Vec<String> = r.attributes.iter().map(|k| String::from_utf8(k.clone()).unwrap().replace('\0', "|")).collect();
    assert_eq!(
        notes,
        [
            "purchase||", "purchase|amount|number", "purchase|store_code|text",
            "visit||", "visit|n|number", "visit|n|text", "visit|ok|bool", "visit|page|date", "visit|page|text",
        ]
    );
}
