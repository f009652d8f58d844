mod common;

use cairn_core::compile;
use cairn_core::Value;
use common::*;

fn doc_with_program(nodes: Vec<cairn_core::Value>) -> Vec<u8> {
    doc_with_program_on("purchase", nodes)
}

/// A document declaring `purchase` with its attributes, and one program on `event`.
fn doc_with_program_on(event: &str, nodes: Vec<cairn_core::Value>) -> Vec<u8> {
    bytes(&map(vec![
        ("profile_fields", map(vec![("tag", s("text")), ("age", s("number"))])),
        (
            "interaction_types",
            list(vec![map(vec![
                ("name", s("purchase")),
                ("channel", s("store")),
                ("source", s("api")),
                ("attributes", map(vec![("store_code", s("text")), ("amount", s("number")), ("vip", s("bool")), ("at", s("date"))])),
            ])]),
        ),
        ("programs", list(vec![map(vec![("name", s("p")), ("trigger", map(vec![("event", s(event))])), ("nodes", list(nodes))])])),
    ]))
}

fn decision(when: cairn_core::Value) -> Vec<cairn_core::Value> {
    vec![
        map(vec![("id", s("d")), ("type", s("decision")), ("when", when), ("yes", s("e")), ("no", s("e"))]),
        map(vec![("id", s("e")), ("type", s("end"))]),
    ]
}

fn leaf(attr: &str, op: &str, value: Option<cairn_core::Value>) -> cairn_core::Value {
    let mut e = vec![("attr", s(attr)), ("op", s(op))];
    if let Some(v) = value {
        e.push(("value", v));
    }
    map(e)
}

fn errors(doc: &[u8]) -> Vec<(String, String)> {
    compile(doc, 1).expect_err("should not compile").errors
}

#[test]
fn empty_and_nil_documents_compile() {
    assert!(compile(&bytes(&map(vec![])), 1).is_ok());
    assert!(compile(&bytes(&cairn_core::Value::Nil), 1).unwrap().programs.is_empty());
    let e = errors(&bytes(&list(vec![])));
    assert!(e[0].1.contains("must be a mapping"));
    let e = errors(b"\xc1");
    assert!(e[0].1.contains("not one msgpack value"));
}

#[test]
fn unknown_key_has_a_path() {
    let doc = doc_with_program(vec![map(vec![("id", s("e")), ("type", s("end")), ("nxet", s("x"))])]);
    let e = errors(&doc);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, "programs[0].nodes[0].nxet");
    assert!(e[0].1.contains("unknown field `nxet`"), "{}", e[0].1);
}

#[test]
fn op_not_offered_for_declared_type() {
    let e = errors(&doc_with_program(decision(leaf("store_code", "gt", Some(i(3))))));
    assert_eq!(e[0].0, "programs[0].nodes[0].when.op");
    assert_eq!(
        e[0].1,
        "operator 'gt' is not offered for text attribute 'store_code' of 'purchase'; text offers: equals, not_equals, contains, starts_with, in, exists, not_exists"
    );
    let e = errors(&doc_with_program(decision(map(vec![("profile", s("age")), ("op", s("contains")), ("value", i(1))]))));
    assert!(e[0].1.contains("number profile field 'age'"), "{}", e[0].1);
}

#[test]
fn nested_paths_and_all_errors_collected() {
    let when = map(vec![(
        "all",
        list(vec![leaf("amount", ">", Some(i(1))), leaf("amount", "between", Some(list(vec![i(5)]))), leaf("at", "within_last", Some(s("7w")))]),
    )]);
    let e = errors(&doc_with_program(decision(when)));
    let paths: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(paths, vec!["programs[0].nodes[0].when.all[1].value", "programs[0].nodes[0].when.all[2].value"]);
}

#[test]
fn value_shapes_checked() {
    let cases = vec![
        leaf("x", "in", Some(s("MI"))),
        leaf("x", "between", Some(list(vec![i(5), i(1)]))),
        leaf("x", "before", Some(s("2026-13-01"))),
        leaf("x", "within_last", Some(i(7))),
        leaf("x", "exists", Some(i(1))),
        leaf("x", "gt", None),
        leaf("x", "lt", Some(s("a"))),
        leaf("x", "starts_with", Some(i(1))),
        leaf("x", "bogus", Some(i(1))),
        leaf("store_code", "equals", Some(i(1))),
        map(vec![("attr", s("x"))]),
        map(vec![]),
        map(vec![("attr", s("x")), ("profile", s("y")), ("op", s("exists"))]),
        map(vec![("all", list(vec![]))]),
    ];
    for c in cases {
        let dbg = format!("{c}");
        let e = errors(&doc_with_program(decision(c)));
        assert_eq!(e.len(), 1, "{dbg}: {e:?}");
        assert!(e[0].0.starts_with("programs[0].nodes[0].when"), "{dbg}: {e:?}");
    }
}

#[test]
fn undeclared_attrs_accept_any_op_and_aliases_work() {
    for (op, v) in [
        ("=", Some(i(1))),
        ("!=", Some(s("a"))),
        ("<", Some(i(1))),
        ("<=", Some(i(1))),
        (">", Some(i(1))),
        (">=", Some(i(1))),
        ("in", Some(list(vec![s("a"), i(2)]))),
        ("after", Some(s("2026-11-23T10:00:00Z"))),
        ("before", Some(i(5))),
        ("within_last", Some(s("12h"))),
        ("is_true", None),
        ("not_exists", None),
        ("contains", Some(s("x"))),
    ] {
        // `signup` is not declared: its attributes are whatever producers send.
        let doc = doc_with_program_on("signup", decision(leaf("undeclared", op, v)));
        assert!(compile(&doc, 1).is_ok(), "{op}");
    }
    // A type declared with attributes names all of them.
    let e = errors(&doc_with_program(decision(leaf("store", "equals", Some(s("MI"))))));
    assert_eq!(e[0].0, "programs[0].nodes[0].when.attr");
    assert_eq!(e[0].1, "'purchase' declares no attribute 'store'; its attributes: amount, at, store_code, vip");
}

#[test]
fn graph_checks() {
    let end = |id: &str| map(vec![("id", s(id)), ("type", s("end"))]);
    // Unknown target, missing no, unreachable node.
    let nodes = vec![
        map(vec![("id", s("d")), ("type", s("decision")), ("when", leaf("x", "exists", None)), ("yes", s("nope"))]),
        end("e"),
    ];
    let e = errors(&doc_with_program(nodes));
    let msgs: Vec<String> = e.iter().map(|(p, m)| format!("{p}: {m}")).collect();
    assert!(msgs.iter().any(|m| m.contains("nodes[0].yes: no node with id 'nope'")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("needs 'no'")), "{msgs:?}");

    let nodes = vec![end("a"), end("b")];
    let e = errors(&doc_with_program(nodes));
    assert_eq!(e[0], ("programs[0].nodes[1]".into(), "node 'b' is unreachable from the entry node 'a'".into()));

    let nodes = vec![
        map(vec![("id", s("a")), ("type", s("action")), ("send", map(vec![("channel", s("web")), ("text", s("t"))])), ("next", s("b"))]),
        map(vec![("id", s("b")), ("type", s("action")), ("send", map(vec![("channel", s("web")), ("text", s("t"))])), ("next", s("a"))]),
    ];
    let e = errors(&doc_with_program(nodes));
    assert!(e[0].1.starts_with("cycle a -> b -> a"), "{e:?}");

    let e = errors(&doc_with_program(vec![end("a"), end("a")]));
    assert!(e[0].1.contains("already used"), "{e:?}");
    let e = errors(&doc_with_program(vec![]));
    assert!(e[0].1.contains("at least one node"));
    let e = errors(&doc_with_program(vec![map(vec![("id", s("a")), ("type", s("sleep"))])]));
    assert!(e[0].1.contains("unknown node type 'sleep'; node types: decision, splitter, wait"), "{e:?}");
    let e = errors(&doc_with_program(vec![map(vec![("id", s("a")), ("type", s("end")), ("next", s("a"))])]));
    assert!(e[0].1.contains("not allowed on a end node"), "{e:?}");
}

#[test]
fn send_checks() {
    let action = |send: cairn_core::Value| {
        vec![
            map(vec![("id", s("a")), ("type", s("action")), ("send", send), ("next", s("e"))]),
            map(vec![("id", s("e")), ("type", s("end"))]),
        ]
    };
    let e = errors(&doc_with_program(action(map(vec![("channel", s("fax")), ("text", s("t"))]))));
    assert!(e[0].1.contains("unknown channel 'fax'; channels: email, sms, push"), "{e:?}");
    let e = errors(&doc_with_program(action(map(vec![("channel", s("sms"))]))));
    assert!(e[0].1.contains("needs 'text'"));
    let e = errors(&doc_with_program(action(map(vec![("channel", s("sms")), ("text", s("t")), ("subject", s("s"))]))));
    assert_eq!(e[0].0, "programs[0].nodes[0].send.subject");
    for ok in [
        map(vec![("channel", s("email")), ("text", s("t")), ("subject", s("s")), ("html", s("h"))]),
        map(vec![("channel", s("push")), ("text", s("t")), ("title", s("s"))]),
        map(vec![("channel", s("in_app")), ("text", s("t")), ("title", s("s"))]),
    ] {
        assert!(compile(&doc_with_program(action(ok)), 1).is_ok());
    }
}

#[test]
fn interaction_types_checks() {
    let it = |name: &str, source: &str| map(vec![("name", s(name)), ("channel", s("store")), ("source", s(source))]);
    let doc = bytes(&map(vec![(
        "interaction_types",
        list(vec![it("Store_Visit", "api"), it("store_visit", "api"), it("x", "carrier_pigeon"), it("$x", "api")]),
    )]));
    let e = errors(&doc);
    assert_eq!(e.len(), 3, "{e:?}");
    assert_eq!(e[0].0, "interaction_types[1].name");
    assert!(e[0].1.contains("case-insensitive"));
    assert!(e[1].1.contains("unknown source 'carrier_pigeon'; sources: api, import, web_tracker, mobile_sdk, other"));
    let doc = bytes(&map(vec![("interaction_types", list(vec![map(vec![("name", s("x")), ("source", s("api"))])]))]));
    assert!(errors(&doc)[0].1.contains("missing field `channel`"));
    let doc = bytes(&map(vec![("profile_fields", map(vec![("x", s("map"))]))]));
    assert_eq!(errors(&doc)[0].0, "profile_fields.x");
}

#[test]
fn strict_types_restricts_references() {
    let rule = map(vec![
        ("name", s("r")),
        ("event", s("Gym_Checkin")),
        ("effects", list(vec![map(vec![("credit", map(vec![("points", i(1)), ("kind", s("qualifying"))]))])])),
    ]);
    let doc = |strict: bool| {
        bytes(&map(vec![
            ("strict_types", cairn_core::Value::Bool(strict)),
            ("loyalty", list(vec![map(vec![("name", s("club")), ("rules", list(vec![rule.clone()]))])])),
        ]))
    };
    assert!(compile(&doc(false), 1).is_ok());
    let e = errors(&doc(true));
    assert_eq!(e[0].0, "loyalty[0].rules[0].event");
    assert!(e[0].1.contains("unknown event type 'Gym_Checkin'"));
}

#[test]
fn loyalty_checks() {
    let credit = |p: i64, k: &str| map(vec![("credit", map(vec![("points", i(p)), ("kind", s(k))]))]);
    let rule = |n: &str, effects| map(vec![("name", s(n)), ("event", s("purchase")), ("effects", list(effects))]);
    let doc = bytes(&map(vec![(
        "loyalty",
        list(vec![
            map(vec![("name", s("club")), ("join", s("sometimes")), ("rules", list(vec![rule("a", vec![credit(0, "gold")]), rule("A", vec![])]))]),
            map(vec![("name", s("Club")), ("rules", list(vec![rule("a", vec![credit(1, "qualifying")])]))]),
        ]),
    )]));
    let e = errors(&doc);
    let paths: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "loyalty[0].join",
            "loyalty[0].rules[0].effects[0].credit.points",
            "loyalty[0].rules[0].effects[0].credit.kind",
            "loyalty[0].rules[1].name",
            "loyalty[0].rules[1].effects",
            "loyalty[1].name"
        ],
        "{e:?}"
    );
}

#[test]
fn index_by_lowercased_event() {
    let nodes = vec![map(vec![("id", s("e")), ("type", s("end"))])];
    let doc = bytes(&map(vec![(
        "programs",
        list(vec![map(vec![("name", s("p")), ("trigger", map(vec![("event", s("PURCHASE"))])), ("nodes", list(nodes))])]),
    )]));
    let c = compile(&doc, 7).unwrap();
    assert_eq!(c.version, 7);
    assert_eq!(c.by_event.get("purchase").unwrap().programs, vec![0]);
}

#[test]
fn error_display_lists_one_per_line() {
    let e = compile(&doc_with_program(vec![]), 1).unwrap_err();
    assert_eq!(e.to_string().lines().count(), e.errors.len());
    assert!(e.to_string().starts_with("programs[0].nodes: "));
}

/// The trigger index finds, in priority order, exactly the programs whose filters
/// hold: keyed by a text equality (alone or in an `all`, on two attributes),
/// unkeyed (ranges, `any`, profile conditions, no filter).
#[test]
fn trigger_index_finds_exactly_the_programs_whose_filters_hold() {
    let leaf = |attr: &str, op: &str, v: Value| map(vec![("attr", s(attr)), ("op", s(op)), ("value", v)]);
    let filters: Vec<Option<Value>> = vec![
        Some(leaf("store", "equals", s("MI"))),
        Some(map(vec![("all", list(vec![leaf("amount", "gte", i(10)), leaf("store", "equals", s("RM"))]))])),
        Some(leaf("amount", "gte", i(50))),
        None,
        Some(leaf("channel", "equals", s("web"))),
        Some(map(vec![("any", list(vec![leaf("store", "equals", s("MI")), leaf("store", "equals", s("TO"))]))])),
        Some(map(vec![("profile", s("tier")), ("op", s("equals")), ("value", s("gold"))])),
        Some(leaf("store", "equals", s("MI"))),
        Some(leaf("amount", "equals", i(7))),
        Some(leaf("store", "not_equals", s("MI"))),
        Some(leaf("store", "in", list(vec![s("RM"), s("TO")]))),
    ];
    let programs: Vec<Value> = filters
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let mut trigger = vec![("event", s("purchase"))];
            if let Some(f) = f {
                trigger.push(("filter", f.clone()));
            }
            map(vec![
                ("name", s(&format!("p{n}"))),
                ("priority", i((n % 3) as i64)),
                ("trigger", map(trigger)),
                ("nodes", list(vec![map(vec![("id", s("end")), ("type", s("end"))])])),
            ])
        })
        .collect();
    let doc = map(vec![
        ("profile_fields", map(vec![("tier", s("text"))])),
        (
            "interaction_types",
            list(vec![map(vec![
                ("name", s("purchase")),
                ("channel", s("store")),
                ("source", s("api")),
                ("attributes", map(vec![("store", s("text")), ("amount", s("number")), ("channel", s("text"))])),
            ])]),
        ),
        ("programs", list(programs)),
    ]);
    let cat = compile(&bytes(&doc), 1).unwrap();
    let idx = cat.by_event.get("purchase").unwrap();
    let mut profile = cairn_core::vecmap::VecMap::new();
    profile.insert("tier".to_owned(), s("gold"));
    let mut merged = Vec::new();
    for store in [Some(s("MI")), Some(s("RM")), Some(s("TO")), Some(s("NA")), Some(i(3)), None] {
        for channel in [Some(s("web")), Some(s("app")), None] {
            for amount in [7, 12, 60] {
                let mut attrs: Vec<(cairn_core::value::Text, Value)> = vec![("amount".into(), i(amount))];
                attrs.extend(store.clone().map(|v| ("store".into(), v)));
                attrs.extend(channel.clone().map(|v| ("channel".into(), v)));
                let ctx = cairn_core::definitions::Ctx { attrs: &attrs, profile: &profile, ts: 0, facts: &cairn_core::definitions::condition::NO_FACTS };
                let holds = |pi: usize| cat.programs[pi].filter.as_ref().is_none_or(|f| f.eval(&ctx, None));
                let every: Vec<usize> = idx.programs.iter().copied().filter(|&pi| holds(pi)).collect();
                let candidates = idx.triggers.candidates(&attrs, &mut merged).to_vec();
                let found: Vec<usize> = candidates.iter().map(|&pos| idx.programs[pos]).filter(|&pi| holds(pi)).collect();
                assert_eq!(found, every, "store {store:?} channel {channel:?} amount {amount}");
                assert!(candidates.windows(2).all(|w| w[0] < w[1]), "priority order kept");
            }
        }
    }
    // The keyed programs are not candidates for another store: fewer filters run.
    let attrs: Vec<(cairn_core::value::Text, Value)> = vec![("store".into(), s("NA")), ("amount".into(), i(1))];
    let candidates = idx.triggers.candidates(&attrs, &mut merged);
    assert_eq!(candidates.len(), 7, "{candidates:?}");
}
