//! Compiling programs: nodes, entry and goal rules, and the checks on the graph
//! (every node reachable, every branch present, no cycle without a wait).

use std::collections::HashMap;

use super::compile::{cond, event_ref, Cx, Errs};
use super::model::{BranchDoc, NodeDoc, ProgramDoc, SendDoc};
use super::types::{channel_names, Channel};
use super::when::{compile_wait, Zone};
use super::{reads_loyalty, Action, Entry, Goal, Node, NodeKind, Program, ProfileNeeds, Send};
use crate::dates::parse_duration;

/// The keys each node type takes (besides id and type).
fn allowed_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "decision" => &["when", "yes", "no"],
        "splitter" => &["branches", "else"],
        "wait" => &["duration", "until", "next"],
        "wait_for" => &["event", "filter", "same", "timeout", "occurred", "not_occurred"],
        "random" => &["branches", "control"],
        "action" => &["send", "audience", "update_profile", "webhook", "next"],
        "end" => &[],
        _ => return None,
    })
}

const NODE_TYPES: &str = "decision, splitter, wait, wait_for, random, action, end";

fn present_keys(n: &NodeDoc) -> [(&'static str, bool); 19] {
    [
        ("when", n.when.is_some()),
        ("yes", n.yes.is_some()),
        ("no", n.no.is_some()),
        ("next", n.next.is_some()),
        ("send", n.send.is_some()),
        ("branches", n.branches.is_some()),
        ("else", n.otherwise.is_some()),
        ("duration", n.duration.is_some()),
        ("until", n.until.is_some()),
        ("event", n.event.is_some()),
        ("filter", n.filter.is_some()),
        ("same", n.same.is_some()),
        ("timeout", n.timeout.is_some()),
        ("occurred", n.occurred.is_some()),
        ("not_occurred", n.not_occurred.is_some()),
        ("control", n.control.is_some()),
        ("audience", n.audience.is_some()),
        ("update_profile", n.update_profile.is_some()),
        ("webhook", n.webhook.is_some()),
    ]
}

/// Compile program `p` (`source`: its msgpack as written) at catalog `version`.
pub(crate) fn build_program(cat: &Cx<'_>, p: &ProgramDoc, source: Vec<u8>, version: u64, path: &str, errs: &mut Errs) -> Option<Program> {
    let before = errs.len();
    let event = event_ref(cat, &p.trigger.event, format!("{path}.trigger.event"), errs);
    let filter = cond(cat, p.trigger.filter.as_ref(), Some(&event), format!("{path}.trigger.filter"), errs);
    let entry = build_entry(p, path, errs);
    let goal = p.goal.as_ref().map(|g| {
        let gev = event_ref(cat, &g.event, format!("{path}.goal.event"), errs);
        let filter = cond(cat, g.filter.as_ref(), Some(&gev), format!("{path}.goal.filter"), errs);
        Goal { event: gev, filter, same: g.same.clone() }
    });
    let time_zone = match &p.time_zone {
        None => Zone::default(),
        Some(name) => Zone::parse(name).unwrap_or_else(|| {
            errs.push((format!("{path}.time_zone"), format!("unknown time zone '{name}'; use an IANA name such as Europe/Rome or UTC")));
            Zone::default()
        }),
    };
    let drop_on_limit = match p.on_limit.as_deref() {
        None | Some("defer") => false,
        Some("drop") => true,
        Some(other) => {
            errs.push((format!("{path}.on_limit"), format!("on_limit must be 'defer' or 'drop', got '{other}'")));
            false
        }
    };
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
    Some(Program {
        name: p.name.clone(),
        version,
        event,
        filter,
        entry,
        goal,
        priority: p.priority.unwrap_or(0),
        transactional: p.transactional.unwrap_or(false),
        drop_on_limit,
        time_zone,
        nodes,
        source,
    })
}

fn build_entry(p: &ProgramDoc, path: &str, errs: &mut Errs) -> Entry {
    let mut entry = Entry::default();
    if let Some(e) = &p.entry {
        entry.reentry = e.reentry.unwrap_or(true);
        entry.concurrent = e.concurrent.unwrap_or(false);
        if let Some(c) = &e.cooloff {
            match parse_duration(c) {
                Some(ms) => entry.cooloff_ms = ms,
                None => errs.push((format!("{path}.entry.cooloff"), format!("'{c}' is not a duration; write e.g. 7d, 12h"))),
            }
        }
    }
    entry
}

struct Targets<'a> {
    ids: &'a HashMap<&'a str, usize>,
    np: &'a str,
    kind: &'a str,
}

impl Targets<'_> {
    /// The node named by `key`, which this node type requires.
    fn get(&self, key: &str, v: &Option<String>, errs: &mut Errs) -> Option<usize> {
        match v {
            None => {
                errs.push((self.np.to_owned(), format!("a {} node needs '{key}' (the id of the next node)", self.kind)));
                None
            }
            Some(id) => self.resolve(&format!("{}.{key}", self.np), id, errs),
        }
    }

    fn resolve(&self, path: &str, id: &str, errs: &mut Errs) -> Option<usize> {
        match self.ids.get(id) {
            Some(i) => Some(*i),
            None => {
                let mut known: Vec<&str> = self.ids.keys().copied().collect();
                known.sort_unstable();
                errs.push((path.to_owned(), format!("no node with id '{id}' in this program; node ids: {}", known.join(", "))));
                None
            }
        }
    }
}

fn build_node(cat: &Cx<'_>, n: &NodeDoc, event: &str, ids: &HashMap<&str, usize>, np: &str, errs: &mut Errs) -> Option<Node> {
    let Some(allowed) = allowed_keys(&n.kind) else {
        errs.push((format!("{np}.type"), format!("unknown node type '{}'; node types: {NODE_TYPES}", n.kind)));
        return None;
    };
    let mut ok = true;
    for (k, is) in present_keys(n) {
        if is && !allowed.contains(&k) {
            let takes = if allowed.is_empty() { "nothing else".to_owned() } else { allowed.join(", ") };
            errs.push((format!("{np}.{k}"), format!("key '{k}' is not allowed on a {} node; it takes {takes}", n.kind)));
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let t = Targets { ids, np, kind: &n.kind };
    let kind = match n.kind.as_str() {
        "decision" => {
            let when = required_cond(cat, n.when.as_ref(), event, np, "a decision node needs 'when' (a condition)", errs);
            let yes = t.get("yes", &n.yes, errs);
            let no = t.get("no", &n.no, errs);
            NodeKind::Decision { when: when?, yes: yes?, no: no? }
        }
        "splitter" => build_splitter(cat, n, event, &t, errs)?,
        "wait" => {
            let wake = compile_wait(n.duration.as_deref(), n.until.as_ref(), np, errs);
            let next = t.get("next", &n.next, errs);
            let wake = wake?;
            NodeKind::Wait { said: wake.describe(), wake, next: next? }
        }
        "wait_for" => build_wait_for(cat, n, &t, errs)?,
        "random" => build_random(n, &t, errs)?,
        "action" => {
            let next = t.get("next", &n.next, errs);
            let action = build_action(n, np, errs);
            NodeKind::Action { action: action?, next: next? }
        }
        _ => NodeKind::End,
    };
    Some(Node { id: n.id.clone(), kind })
}

fn required_cond(cat: &Cx<'_>, c: Option<&super::model::CondDoc>, event: &str, np: &str, missing: &str, errs: &mut Errs) -> Option<super::Cond> {
    match c {
        None => {
            errs.push((np.to_owned(), missing.to_owned()));
            None
        }
        Some(c) => cond(cat, Some(c), Some(event), format!("{np}.when"), errs),
    }
}

fn branches<'a>(n: &'a NodeDoc, t: &Targets<'_>, errs: &mut Errs) -> Option<&'a [BranchDoc]> {
    match &n.branches {
        Some(b) if !b.is_empty() => Some(b),
        _ => {
            errs.push((t.np.to_owned(), format!("a {} node needs 'branches': a list of {{...}}", t.kind)));
            None
        }
    }
}

fn build_splitter(cat: &Cx<'_>, n: &NodeDoc, event: &str, t: &Targets<'_>, errs: &mut Errs) -> Option<NodeKind> {
    let before = errs.len();
    let list = branches(n, t, errs);
    let otherwise = t.get("else", &n.otherwise, errs);
    let mut out = Vec::new();
    for (i, b) in list.into_iter().flatten().enumerate() {
        let bp = format!("{}.branches[{i}]", t.np);
        if b.weight.is_some() {
            errs.push((format!("{bp}.weight"), "'weight' belongs to random split branches; a splitter branch takes when and next".into()));
        }
        let when = required_cond(cat, b.when.as_ref(), event, &bp, "a splitter branch needs 'when' (a condition)", errs);
        let next = t.resolve(&format!("{bp}.next"), &b.next, errs);
        if let (Some(w), Some(nx)) = (when, next) {
            out.push((w, nx));
        }
    }
    (errs.len() == before).then(|| NodeKind::Splitter { branches: out, otherwise: otherwise.expect("checked") })
}

fn build_wait_for(cat: &Cx<'_>, n: &NodeDoc, t: &Targets<'_>, errs: &mut Errs) -> Option<NodeKind> {
    let before = errs.len();
    let event = match &n.event {
        Some(e) => event_ref(cat, e, format!("{}.event", t.np), errs),
        None => {
            errs.push((t.np.to_owned(), "a wait_for node needs 'event' (the event type it waits for)".into()));
            String::new()
        }
    };
    let filter = cond(cat, n.filter.as_ref(), Some(&event), format!("{}.filter", t.np), errs);
    let timeout_ms = match n.timeout.as_deref().map(|d| (d, parse_duration(d))) {
        Some((_, Some(ms))) => ms,
        Some((d, None)) => {
            errs.push((format!("{}.timeout", t.np), format!("'{d}' is not a duration; write e.g. 2d, 12h")));
            0
        }
        None => {
            errs.push((t.np.to_owned(), "a wait_for node needs 'timeout' (how long to wait, e.g. 2d)".into()));
            0
        }
    };
    let occurred = t.get("occurred", &n.occurred, errs);
    let not_occurred = t.get("not_occurred", &n.not_occurred, errs);
    if matches!(&n.same, Some(s) if s.is_empty()) {
        errs.push((format!("{}.same", t.np), "'same' needs an attribute name, e.g. cart_id".into()));
    }
    (errs.len() == before).then(|| NodeKind::WaitFor {
        event,
        filter,
        same: n.same.clone(),
        timeout_ms,
        occurred: occurred.expect("checked"),
        not_occurred: not_occurred.expect("checked"),
    })
}

fn build_random(n: &NodeDoc, t: &Targets<'_>, errs: &mut Errs) -> Option<NodeKind> {
    let before = errs.len();
    let list = branches(n, t, errs);
    let control = n.control.unwrap_or(0.0);
    if !(0.0..100.0).contains(&control) {
        errs.push((format!("{}.control", t.np), format!("control is a percentage in [0, 100), got {control}")));
    }
    let mut out = Vec::new();
    for (i, b) in list.into_iter().flatten().enumerate() {
        let bp = format!("{}.branches[{i}]", t.np);
        if b.when.is_some() {
            errs.push((format!("{bp}.when"), "'when' belongs to splitter branches; a random branch takes weight and next".into()));
        }
        let weight = b.weight.unwrap_or(0.0);
        if weight <= 0.0 || !weight.is_finite() {
            errs.push((format!("{bp}.weight"), "a random branch needs a positive 'weight'".into()));
        }
        if let Some(nx) = t.resolve(&format!("{bp}.next"), &b.next, errs) {
            out.push((weight, nx));
        }
    }
    (errs.len() == before).then_some(NodeKind::Random { branches: out, control })
}

fn build_action(n: &NodeDoc, np: &str, errs: &mut Errs) -> Option<Action> {
    let count = [n.send.is_some(), n.audience.is_some(), n.update_profile.is_some(), n.webhook.is_some()].iter().filter(|x| **x).count();
    if count != 1 {
        errs.push((np.to_owned(), "an action node needs exactly one of: send, audience, update_profile, webhook".into()));
        return None;
    }
    if let Some(s) = &n.send {
        return build_send(s, &format!("{np}.send"), errs).map(Action::Send);
    }
    if let Some(a) = &n.audience {
        return match (&a.add, &a.remove) {
            (Some(name), None) | (None, Some(name)) if !name.trim().is_empty() => {
                Some(Action::Audience { name: name.clone(), add: a.add.is_some() })
            }
            _ => {
                errs.push((format!("{np}.audience"), "audience needs exactly one of add: NAME or remove: NAME".into()));
                None
            }
        };
    }
    if let Some(u) = &n.update_profile {
        let set: Vec<_> = u.set.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        let unset = u.unset.clone().unwrap_or_default();
        if set.is_empty() && unset.is_empty() {
            errs.push((format!("{np}.update_profile"), "update_profile needs 'set' (fields and values) or 'unset' (field names)".into()));
            return None;
        }
        return Some(Action::UpdateProfile { set, unset });
    }
    let w = n.webhook.as_ref().expect("counted");
    if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
        errs.push((format!("{np}.webhook.url"), format!("'{}' is not an http(s) URL", w.url)));
        return None;
    }
    let mut profile_needs = ProfileNeeds::none();
    match &w.body {
        Some(b) => profile_needs.scan(b),
        None => profile_needs = ProfileNeeds::All,
    }
    // Without a body the receiver gets the context as JSON, balances included.
    let reads_loyalty = w.body.as_deref().is_none_or(reads_loyalty);
    Some(Action::Webhook { url: w.url.clone(), body: w.body.clone(), profile_needs, reads_loyalty })
}

fn build_send(s: &SendDoc, sp: &str, errs: &mut Errs) -> Option<Send> {
    let Some(channel) = Channel::parse(&s.channel) else {
        errs.push((format!("{sp}.channel"), format!("unknown channel '{}'; channels: {}", s.channel, channel_names())));
        return None;
    };
    if channel == Channel::Ads {
        errs.push((format!("{sp}.channel"), "the ads channel takes audiences, not messages: use an action with audience: {add: NAME}".into()));
        return None;
    }
    let mut ok = true;
    for (k, is) in [("subject", s.subject.is_some()), ("html", s.html.is_some()), ("title", s.title.is_some())] {
        if is && !channel.extra_keys().contains(&k) {
            let allowed = std::iter::once("text").chain(channel.extra_keys().iter().copied()).collect::<Vec<_>>();
            errs.push((format!("{sp}.{k}"), format!("'{k}' is not used by channel '{}'; it takes: {}", channel.name(), allowed.join(", "))));
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
    let templates = [Some(&text), s.subject.as_ref(), s.html.as_ref(), s.title.as_ref()];
    for t in templates.into_iter().flatten() {
        profile_needs.scan(t);
    }
    let reads_loyalty = templates.into_iter().flatten().any(|t| reads_loyalty(t));
    Some(Send { channel, text, subject: s.subject.clone(), html: s.html.clone(), title: s.title.clone(), profile_needs, reads_loyalty })
}

/// Every node reachable from the entry node, and every cycle through a waiting node.
fn check_graph(nodes: &[Node], path: &str, errs: &mut Errs) {
    let mut seen = vec![false; nodes.len()];
    let mut stack = vec![0usize];
    seen[0] = true;
    while let Some(n) = stack.pop() {
        for s in nodes[n].kind.successors() {
            if !seen[s] {
                seen[s] = true;
                stack.push(s);
            }
        }
    }
    for (j, n) in nodes.iter().enumerate() {
        if !seen[j] {
            errs.push((format!("{path}.nodes[{j}]"), format!("node '{}' is unreachable from the entry node '{}'", n.id, nodes[0].id)));
        }
    }
    // Cycles among the edges that do not leave a waiting node: a run would loop
    // forever within one event.
    let succ = |i: usize| if nodes[i].kind.waits() { vec![] } else { nodes[i].kind.successors() };
    let mut color = vec![0u8; nodes.len()];
    for start in 0..nodes.len() {
        if color[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, succ(start))];
        let mut trail = vec![start];
        color[start] = 1;
        while let Some((_, next)) = stack.last_mut() {
            match next.pop() {
                Some(s) if color[s] == 0 => {
                    color[s] = 1;
                    trail.push(s);
                    stack.push((s, succ(s)));
                }
                Some(s) if color[s] == 1 => {
                    let from = trail.iter().position(|x| *x == s).unwrap_or(0);
                    let mut ids: Vec<&str> = trail[from..].iter().map(|i| nodes[*i].id.as_str()).collect();
                    ids.push(&nodes[s].id);
                    errs.push((format!("{path}.nodes"), format!("cycle {} has no wait or wait_for node: a contact would loop forever", ids.join(" -> "))));
                    return;
                }
                Some(_) => {}
                None => {
                    let (n, _) = stack.pop().expect("non-empty");
                    color[n] = 2;
                    trail.pop();
                }
            }
        }
    }
}
