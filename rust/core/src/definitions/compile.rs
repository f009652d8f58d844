//! Compile a definitions document (msgpack bytes) into a `Catalog`, collecting every
//! problem as (path, message).

use std::collections::{BTreeMap, HashMap};

use super::condition::{self, Cond, Scope};
use super::facts::FactTable;
use super::model::{CondDoc, Doc};
use super::programs::build_program;
use super::types::{AttrType, BUILTIN_TYPES, SOURCES};
use super::*;
use crate::error::DefinitionError;
use crate::value::Value;

pub(crate) type Errs = Vec<(String, String)>;

/// What compiling needs besides the document: the catalog built so far and the
/// histories conditions count.
pub(crate) struct Cx<'a> {
    pub cat: &'a Catalog,
    pub facts: &'a FactTable,
}

const MAX_NAME: usize = 128;

/// Compile the msgpack-encoded document `doc` as catalog `version`.
pub fn compile(doc: &[u8], version: u64) -> Result<Catalog, DefinitionError> {
    compile_next(doc, version, None)
}

/// Compile `doc` as the version that follows `previous`: a program whose definition
/// did not change keeps its version, a changed one gets `version`, and the earlier
/// versions of changed or removed programs stay (retired) for contacts inside them.
pub fn compile_next(doc: &[u8], version: u64, previous: Option<&Catalog>) -> Result<Catalog, DefinitionError> {
    let parsed = parse(doc)?;
    let sources = program_sources(doc);
    let mut errs = Errs::new();
    let mut cat = build(parsed, &sources, version, &mut errs);
    if !errs.is_empty() {
        return Err(DefinitionError { errors: errs });
    }
    if let Some(prev) = previous {
        carry_versions(&mut cat, prev);
    }
    cat.index_programs();
    Ok(cat)
}

/// What decides each program's behaviour, as written (msgpack), in document order:
/// the program, then every segment it uses (and the segments those use), then the
/// arbitration settings. A program whose source changes gets a new version.
fn program_sources(doc: &[u8]) -> Vec<Vec<u8>> {
    let Ok(v) = crate::value::decode_exact::<Value>(doc) else { return Vec::new() };
    let Some(Value::Array(programs)) = v.get("programs") else { return Vec::new() };
    let segments: Vec<(String, &Value)> = match v.get("segments") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| Some((s.get("name")?.as_str()?.to_lowercase(), s)))
            .collect(),
        _ => Vec::new(),
    };
    let arbitration = v.get("arbitration");
    programs
        .iter()
        .map(|p| {
            let mut parts = vec![p];
            let mut names = Vec::new();
            segment_refs(p, &mut names);
            let mut i = 0;
            while i < names.len() {
                if let Some((_, seg)) = segments.iter().find(|(n, _)| *n == names[i]) {
                    parts.push(seg);
                    segment_refs(seg, &mut names);
                }
                i += 1;
            }
            parts.extend(arbitration);
            crate::value::encode(&parts)
        })
        .collect()
}

/// Lowercased names of the segments `v` refers to (`segment: NAME` anywhere).
fn segment_refs(v: &Value, names: &mut Vec<String>) {
    match v {
        Value::Map(entries) => {
            for (k, item) in entries {
                match (k.as_str(), item) {
                    ("segment", Value::Str(name)) => {
                        let name = name.as_str().to_lowercase();
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                    _ => segment_refs(item, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| segment_refs(i, names)),
        _ => {}
    }
}

fn carry_versions(cat: &mut Catalog, prev: &Catalog) {
    for p in &mut cat.programs {
        if let Some(old) = prev.programs.iter().find(|o| o.name == p.name && o.source == p.source) {
            p.version = old.version;
        }
    }
    let current: Vec<(String, u64)> = cat.programs.iter().map(|p| (p.name.clone(), p.version)).collect();
    let is_current = |p: &Program| current.iter().any(|(n, v)| *n == p.name && *v == p.version);
    cat.retired = prev.programs.iter().chain(&prev.retired).filter(|p| !is_current(p)).cloned().collect();
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

pub(crate) fn check_name(name: &str, path: String, what: &str, errs: &mut Errs) {
    if name.trim().is_empty() {
        errs.push((path, format!("{what} must not be empty")));
    } else if name.len() > MAX_NAME {
        errs.push((path, format!("{what} must be at most {MAX_NAME} bytes")));
    }
}

fn build(doc: Doc, sources: &[Vec<u8>], version: u64, errs: &mut Errs) -> Catalog {
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

    let facts = FactTable::default();
    let mut names = HashMap::new();
    for (i, sd) in doc.segments.iter().flatten().enumerate() {
        let path = format!("segments[{i}]");
        check_name(&sd.name, format!("{path}.name"), "name", errs);
        if let Some(prev) = names.insert(sd.name.to_lowercase(), i) {
            errs.push((format!("{path}.name"), format!("segment '{}' is already defined (segments[{prev}]); names are case-insensitive", sd.name)));
        }
        let when = cond(&Cx { cat: &cat, facts: &facts }, Some(&sd.when), None, format!("{path}.when"), errs);
        if let Some(when) = when {
            cat.segments.push(Segment { name: sd.name.clone(), description: sd.description.clone(), when });
        }
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
        let source = sources.get(i).cloned().unwrap_or_default();
        if let Some(prog) = build_program(&Cx { cat: &cat, facts: &facts }, p, source, version, &path, errs) {
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
        if let Some(lp) = super::loyalty::compile(&Cx { cat: &cat, facts: &facts }, l, &path, errs) {
            cat.loyalty.push(lp);
        }
    }

    cat.facts = facts.into_vec();
    cat.arbitration = super::arbitration::compile(doc.arbitration.as_ref(), errs);
    if errs.is_empty() {
        index(&mut cat);
    }
    cat
}

fn index(cat: &mut Catalog) {
    // Higher priority first: they take capped channels before the others.
    let mut order: Vec<usize> = (0..cat.programs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cat.programs[i].priority));
    for i in order {
        cat.by_event.entry(cat.programs[i].event.clone()).or_default().programs.push(i);
    }
    for idx in cat.by_event.values_mut() {
        idx.triggers = super::triggers::TriggerIndex::new(&cat.programs, &idx.programs);
    }
    for (li, l) in cat.loyalty.iter().enumerate() {
        for t in l.by_event.keys().chain(l.activity.keys()) {
            let idx = cat.by_event.entry(t.clone()).or_default();
            if idx.loyalty.last() != Some(&li) {
                idx.loyalty.push(li);
            }
        }
    }
    for (fi, f) in cat.facts.iter().enumerate() {
        cat.by_event.entry(f.event.clone()).or_default().facts.push(fi);
    }
}

/// Check and lowercase an event type referenced by a trigger or a rule.
pub(crate) fn event_ref(cx: &Cx<'_>, event: &str, path: String, errs: &mut Errs) -> String {
    let cat = cx.cat;
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

/// Compile an optional condition; `event`: the type its `attr` leaves read (None in
/// segments, which have no event).
pub(crate) fn cond(cx: &Cx<'_>, doc: Option<&CondDoc>, event: Option<&str>, path: String, errs: &mut Errs) -> Option<Cond> {
    let doc = doc?;
    let cat = cx.cat;
    let scope = Scope {
        event,
        attrs: event.and_then(|e| cat.interaction_type(e)).map(|t| &t.attributes),
        profile: &cat.profile_fields,
        segments: &cat.segments,
        facts: cx.facts,
        types: &cat.interaction_types,
        strict: cat.strict_types,
    };
    condition::compile(doc, &path, &scope, errs)
}
