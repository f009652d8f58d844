//! Compile a definitions document (msgpack bytes) into a `Catalog`, collecting every
//! problem as (path, message).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::condition::{self, Cond, Scope};
use super::model::{CondDoc, Doc, LoyaltyDoc, NodeDoc, ProgramDoc};
use super::types::{channel_names, AttrType, Channel, BUILTIN_TYPES, SOURCES};
use super::*;
use crate::error::DefinitionError;
use crate::value::Value;

type Errs = Vec<(String, String)>;

const MAX_NAME: usize = 128;

/// Compile the msgpack-encoded document `doc` as catalog `version`.
pub fn compile(doc: &[u8], version: u64) -> Result<Catalog, DefinitionError> {
    let parsed = parse(doc)?;
    let mut errs = Errs::new();
    let cat = build(parsed, version, &mut errs);
    if errs.is_empty() {
        Ok(cat)
    } else {
        Err(DefinitionError { errors: errs })
    }
}

fn parse(doc: &[u8]) -> Result<Doc, DefinitionError> {
    let one = |p: String, m: String| DefinitionError { errors: vec![(p, m)] };
    // An empty YAML document arrives as nil: no definitions.
    match crate::value::decode_exact::<Value>(doc) {
        Err(e) => return Err(one(String::new(), format!("the definitions are not one msgpack value: {e}"))),
        Ok(Value::Nil) => return Ok(Doc::default()),
        Ok(Value::Map(_)) => {}
        Ok(other) => {
            return Err(one(String::new(), format!("the definitions must be a mapping, got {}", other.type_name())))
        }
    }
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(doc));
    de.set_max_depth(crate::value::MAX_DEPTH);
    serde_path_to_error::deserialize::<_, Doc>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        one(path, e.into_inner().to_string())
    })
}

fn check_name(name: &str, path: String, what: &str, errs: &mut Errs) {
    if name.trim().is_empty() {
        errs.push((path, format!("{what} must not be empty")));
    } else if name.len() > MAX_NAME {
        errs.push((path, format!("{what} must be at most {MAX_NAME} bytes")));
    }
}

fn build(doc: Doc, version: u64, errs: &mut Errs) -> Catalog {
    let mut cat = Catalog { version, strict_types: doc.strict_types.unwrap_or(false), ..Catalog::default() };

    for (name, ty) in doc.profile_fields.iter().flatten() {
        let allowed = ["text", "number", "bool", "date", "list"];
        match AttrType::parse(ty).filter(|t| allowed.contains(&t.name())) {
            Some(t) => {
                cat.profile_fields.insert(name.clone(), t);
            }
            None => errs.push((
                format!("profile_fields.{name}"),
                format!("unknown profile field type '{ty}'; types: {}", allowed.join(", ")),
            )),
        }
    }

    for (i, it) in doc.interaction_types.iter().flatten().enumerate() {
        let path = format!("interaction_types[{i}]");
        check_name(&it.name, format!("{path}.name"), "name", errs);
        let lower = it.name.to_lowercase();
        if lower.starts_with('$') {
            errs.push((format!("{path}.name"), format!("'{}' is reserved; names starting with '$' are built in", it.name)));
        }
        if let Some(&prev) = cat.type_index.get(&lower) {
            errs.push((
                format!("{path}.name"),
                format!(
                    "interaction type '{}' is already declared as '{}' (interaction_types[{prev}]); names are case-insensitive",
                    it.name, cat.interaction_types[prev].name
                ),
            ));
            continue;
        }
        if it.channel.trim().is_empty() {
            errs.push((format!("{path}.channel"), "channel must not be empty (e.g. web, app, store, email, call_centre)".into()));
        }
        if !SOURCES.contains(&it.source.as_str()) {
            errs.push((
                format!("{path}.source"),
                format!("unknown source '{}'; sources: {}", it.source, SOURCES.join(", ")),
            ));
        }
        let mut attributes = BTreeMap::new();
        for (a, t) in it.attributes.iter().flatten() {
            match AttrType::parse(t) {
                Some(t) => {
                    attributes.insert(a.clone(), t);
                }
                None => errs.push((
                    format!("{path}.attributes.{a}"),
                    format!(
                        "unknown attribute type '{t}'; types: {}",
                        AttrType::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
        cat.type_index.insert(lower.clone(), cat.interaction_types.len());
        cat.interaction_types.push(InteractionType {
            name: lower,
            channel: it.channel.clone(),
            source: it.source.clone(),
            attributes,
        });
    }

    let mut names = HashMap::new();
    for (i, p) in doc.programs.iter().flatten().enumerate() {
        let path = format!("programs[{i}]");
        check_name(&p.name, format!("{path}.name"), "name", errs);
        if let Some(prev) = names.insert(p.name.to_lowercase(), i) {
            errs.push((
                format!("{path}.name"),
                format!("program '{}' is already defined (programs[{prev}]); names are case-insensitive", p.name),
            ));
        }
        if let Some(prog) = build_program(&cat, p, &path, errs) {
            cat.programs.push(prog);
        }
    }

    let mut names = HashMap::new();
    for (i, l) in doc.loyalty.iter().flatten().enumerate() {
        let path = format!("loyalty[{i}]");
        check_name(&l.name, format!("{path}.name"), "name", errs);
        if let Some(prev) = names.insert(l.name.to_lowercase(), i) {
            errs.push((
                format!("{path}.name"),
                format!("loyalty program '{}' is already defined (loyalty[{prev}]); names are case-insensitive", l.name),
            ));
        }
        if let Some(lp) = build_loyalty(&cat, l, &path, errs) {
            cat.loyalty.push(lp);
        }
    }

    if errs.is_empty() {
        index(&mut cat);
    }
    cat
}

fn index(cat: &mut Catalog) {
    for (i, p) in cat.programs.iter().enumerate() {
        cat.by_event.entry(p.event.clone()).or_default().programs.push(i);
    }
    for (li, l) in cat.loyalty.iter().enumerate() {
        for (ri, r) in l.rules.iter().enumerate() {
            cat.by_event.entry(r.event.clone()).or_default().rules.push((li, ri));
        }
    }
}

/// Check and lowercase an event type referenced by a trigger or a rule.
fn event_ref(cat: &Catalog, event: &str, path: String, errs: &mut Errs) -> String {
    let lower = event.to_lowercase();
    if lower.is_empty() {
        errs.push((path, "event type must not be empty".into()));
    } else if cat.strict_types && !cat.knows_type(&lower) {
        let mut known: Vec<&str> = BUILTIN_TYPES.to_vec();
        known.extend(cat.interaction_types.iter().map(|t| t.name.as_str()));
        errs.push((
            path,
            format!("unknown event type '{event}' (strict_types is on); known types: {}", known.join(", ")),
        ));
    }
    lower
}

fn cond(cat: &Catalog, doc: &Option<CondDoc>, event: &str, path: String, errs: &mut Errs) -> (Option<Cond>, bool) {
    let Some(doc) = doc else { return (None, true) };
    let scope = Scope {
        event,
        attrs: cat.interaction_type(event).map(|t| &t.attributes),
        profile: &cat.profile_fields,
    };
    let c = condition::compile(doc, &path, &scope, errs);
    let ok = c.is_some();
    (c, ok)
}

fn build_program(cat: &Catalog, p: &ProgramDoc, path: &str, errs: &mut Errs) -> Option<Program> {
    let before = errs.len();
    let event = event_ref(cat, &p.trigger.event, format!("{path}.trigger.event"), errs);
    let (filter, _) = cond(cat, &p.trigger.filter, &event, format!("{path}.trigger.filter"), errs);

    if p.nodes.is_empty() {
        errs.push((format!("{path}.nodes"), "a program needs at least one node; the first node is the entry node".into()));
        return None;
    }
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (j, n) in p.nodes.iter().enumerate() {
        let np = format!("{path}.nodes[{j}].id");
        if n.id.is_empty() {
            errs.push((np, "node id must not be empty".into()));
        } else if let Some(prev) = ids.insert(n.id.as_str(), j) {
            errs.push((np, format!("node id '{}' is already used by nodes[{prev}]", n.id)));
            ids.insert(n.id.as_str(), prev);
        }
    }
    let mut nodes = Vec::with_capacity(p.nodes.len());
    for (j, n) in p.nodes.iter().enumerate() {
        let np = format!("{path}.nodes[{j}]");
        if let Some(node) = build_node(cat, n, &event, &ids, &np, errs) {
            nodes.push(node);
        }
    }
    if errs.len() != before {
        return None;
    }
    check_graph(&nodes, path, errs);
    if errs.len() != before {
        return None;
    }
    Some(Program { name: p.name.clone(), event, filter, nodes })
}

fn target(ids: &HashMap<&str, usize>, key: &str, v: &Option<String>, kind: &str, np: &str, errs: &mut Errs) -> Option<usize> {
    match v {
        None => {
            errs.push((np.to_owned(), format!("a {kind} node needs '{key}' (the id of the next node)")));
            None
        }
        Some(id) => match ids.get(id.as_str()) {
            Some(i) => Some(*i),
            None => {
                let mut known: Vec<&str> = ids.keys().copied().collect();
                known.sort_unstable();
                errs.push((
                    format!("{np}.{key}"),
                    format!("no node with id '{id}' in this program; node ids: {}", known.join(", ")),
                ));
                None
            }
        },
    }
}

fn build_node(cat: &Catalog, n: &NodeDoc, event: &str, ids: &HashMap<&str, usize>, np: &str, errs: &mut Errs) -> Option<Node> {
    let allowed: &[&str] = match n.kind.as_str() {
        "decision" => &["when", "yes", "no"],
        "action" => &["send", "next"],
        "end" => &[],
        other => {
            errs.push((format!("{np}.type"), format!("unknown node type '{other}'; node types: decision, action, end")));
            return None;
        }
    };
    let present = [
        ("when", n.when.is_some()),
        ("yes", n.yes.is_some()),
        ("no", n.no.is_some()),
        ("next", n.next.is_some()),
        ("send", n.send.is_some()),
    ];
    let mut ok = true;
    for (k, is) in present {
        if is && !allowed.contains(&k) {
            let takes = if allowed.is_empty() { "nothing else".to_owned() } else { allowed.join(", ") };
            errs.push((format!("{np}.{k}"), format!("key '{k}' is not allowed on a {} node; it takes {takes}", n.kind)));
            ok = false;
        }
    }
    let kind = match n.kind.as_str() {
        "decision" => {
            let when = match &n.when {
                None => {
                    errs.push((np.to_owned(), "a decision node needs 'when' (a condition)".into()));
                    None
                }
                Some(_) => cond(cat, &n.when, event, format!("{np}.when"), errs).0,
            };
            let yes = target(ids, "yes", &n.yes, "decision", np, errs);
            let no = target(ids, "no", &n.no, "decision", np, errs);
            NodeKind::Decision { when: when?, yes: yes?, no: no? }
        }
        "action" => {
            let next = target(ids, "next", &n.next, "action", np, errs);
            let send = match &n.send {
                None => {
                    errs.push((np.to_owned(), "an action node needs 'send' ({channel, text, ...})".into()));
                    None
                }
                Some(s) => build_send(s, &format!("{np}.send"), errs),
            };
            NodeKind::Action { send: send?, next: next? }
        }
        _ => NodeKind::End,
    };
    ok.then(|| Node { id: n.id.clone(), kind })
}

fn build_send(s: &super::model::SendDoc, sp: &str, errs: &mut Errs) -> Option<Send> {
    let Some(channel) = Channel::parse(&s.channel) else {
        errs.push((format!("{sp}.channel"), format!("unknown channel '{}'; channels: {}", s.channel, channel_names())));
        return None;
    };
    let mut ok = true;
    for (k, is) in [("subject", s.subject.is_some()), ("html", s.html.is_some()), ("title", s.title.is_some())] {
        if is && !channel.extra_keys().contains(&k) {
            let allowed = std::iter::once("text").chain(channel.extra_keys().iter().copied()).collect::<Vec<_>>();
            errs.push((
                format!("{sp}.{k}"),
                format!("'{k}' is not used by channel '{}'; it takes: {}", channel.name(), allowed.join(", ")),
            ));
            ok = false;
        }
    }
    let text = match &s.text {
        Some(t) => Some(t.clone()),
        None => {
            errs.push((sp.to_owned(), "'send' needs 'text' (the message template)".into()));
            None
        }
    };
    if !ok {
        return None;
    }
    let text = text?;
    let mut profile_needs = ProfileNeeds::none();
    for t in [Some(&text), s.subject.as_ref(), s.html.as_ref(), s.title.as_ref()].into_iter().flatten() {
        profile_needs.scan(t);
    }
    Some(Send { channel, text, subject: s.subject.clone(), html: s.html.clone(), title: s.title.clone(), profile_needs })
}

/// Every node reachable from the entry node, and no cycle.
fn check_graph(nodes: &[Node], path: &str, errs: &mut Errs) {
    let succ = |n: &Node| -> Vec<usize> {
        match &n.kind {
            NodeKind::Decision { yes, no, .. } => vec![*yes, *no],
            NodeKind::Action { next, .. } => vec![*next],
            NodeKind::End => vec![],
        }
    };
    // 0 = unseen, 1 = on the stack, 2 = done.
    let mut color = vec![0u8; nodes.len()];
    let mut stack: Vec<(usize, Vec<usize>)> = vec![(0, succ(&nodes[0]))];
    let mut trail = vec![0usize];
    color[0] = 1;
    let mut cycle_reported = false;
    while let Some((_, next)) = stack.last_mut() {
        match next.pop() {
            Some(s) if color[s] == 0 => {
                color[s] = 1;
                trail.push(s);
                stack.push((s, succ(&nodes[s])));
            }
            Some(s) if color[s] == 1 && !cycle_reported => {
                let start = trail.iter().position(|x| *x == s).unwrap_or(0);
                let mut ids: Vec<&str> = trail[start..].iter().map(|i| nodes[*i].id.as_str()).collect();
                ids.push(&nodes[s].id);
                errs.push((
                    format!("{path}.nodes"),
                    format!("cycle {}; programs must not loop (there are no Wait nodes yet)", ids.join(" -> ")),
                ));
                cycle_reported = true;
            }
            Some(_) => {}
            None => {
                let (n, _) = stack.pop().expect("non-empty");
                color[n] = 2;
                trail.pop();
            }
        }
    }
    for (j, n) in nodes.iter().enumerate() {
        if color[j] == 0 {
            errs.push((
                format!("{path}.nodes[{j}]"),
                format!("node '{}' is unreachable from the entry node '{}'", n.id, nodes[0].id),
            ));
        }
    }
}

fn build_loyalty(cat: &Catalog, l: &LoyaltyDoc, path: &str, errs: &mut Errs) -> Option<LoyaltyProgram> {
    let before = errs.len();
    let join = match l.join.as_deref() {
        None | Some("auto") => Join::Auto,
        Some("subscribe") => Join::Subscribe,
        Some(other) => {
            errs.push((format!("{path}.join"), format!("unknown join '{other}'; join: auto, subscribe")));
            Join::Auto
        }
    };
    if let Some(c) = &l.currency {
        if c.trim().is_empty() {
            errs.push((format!("{path}.currency"), "currency must not be empty (e.g. EUR); omit it for any currency".into()));
        }
    }
    if l.rules.is_empty() {
        errs.push((format!("{path}.rules"), "a loyalty program needs at least one rule".into()));
    }
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    for (k, r) in l.rules.iter().enumerate() {
        let rp = format!("{path}.rules[{k}]");
        check_name(&r.name, format!("{rp}.name"), "name", errs);
        if !names.insert(r.name.to_lowercase()) {
            errs.push((format!("{rp}.name"), format!("rule '{}' is already defined in this loyalty program", r.name)));
        }
        let event = event_ref(cat, &r.event, format!("{rp}.event"), errs);
        let (when, _) = cond(cat, &r.when, &event, format!("{rp}.when"), errs);
        if r.effects.is_empty() {
            errs.push((format!("{rp}.effects"), "a rule needs at least one effect, e.g. credit: {points: 10, kind: qualifying}".into()));
        }
        let mut effects = Vec::new();
        for (e, eff) in r.effects.iter().enumerate() {
            let ep = format!("{rp}.effects[{e}].credit");
            let kind = match eff.credit.kind.as_str() {
                "qualifying" => PointKind::Qualifying,
                "non_qualifying" => PointKind::NonQualifying,
                other => {
                    errs.push((format!("{ep}.kind"), format!("unknown kind '{other}'; kind: qualifying, non_qualifying")));
                    continue;
                }
            };
            if eff.credit.points <= 0 {
                errs.push((format!("{ep}.points"), format!("points must be a positive integer, got {}", eff.credit.points)));
            }
            effects.push(Credit { points: eff.credit.points, kind });
        }
        rules.push(Rule { name: r.name.clone(), event, when, effects });
    }
    if errs.len() != before {
        return None;
    }
    Some(LoyaltyProgram { name: l.name.clone(), currency: l.currency.clone(), join, rules })
}

