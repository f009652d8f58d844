//! CONDITION: compiling the user's shape into a typed tree, and evaluating it with an
//! optional readable trace (the "explain" feature).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::facts::{FactDef, FactTable, MAX_KEEP};
use super::model::CondDoc;
use super::types::AttrType;
use super::Segment;
use crate::facts::Facts;
use crate::dates::{date_ms, parse_duration};
use crate::value::{map_get, Text, Value};

/// What a leaf looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An attribute of the current event.
    Attr,
    /// A profile field of the contact.
    Profile,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Equals(Value),
    NotEquals(Value),
    Contains(Value),
    StartsWith(String),
    In(Vec<Value>),
    Lt(f64),
    Lte(f64),
    Gt(f64),
    Gte(f64),
    Between(f64, f64),
    Before(i64),
    After(i64),
    WithinLast(i64),
    IsTrue,
    IsFalse,
    Exists,
    NotExists,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub subject: Subject,
    pub name: String,
    /// Operator name as written (aliases kept), for traces.
    pub op_name: String,
    pub op: Op,
    /// Trace text rendered once at compile time: "attr total_amount" ...
    trace_subject: String,
    /// ... and " gte 100", so a traced evaluation only appends the value read.
    trace_op: String,
}

impl Leaf {
    pub fn new(subject: Subject, name: String, op_name: String, op: Op) -> Leaf {
        let kind = if subject == Subject::Attr { "attr" } else { "profile" };
        let mut trace_op = format!(" {op_name}");
        op.write_operand(&mut trace_op);
        Leaf { trace_subject: format!("{kind} {name}"), trace_op, subject, name, op_name, op }
    }
}

/// "Event occurred / did not occur": a count of the contact's past events of one
/// type (see `facts`), compared with `count`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryLeaf {
    /// Key of the counted history in the state (`FactDef::key`).
    pub fact: u64,
    pub event: String,
    /// Trigger attribute whose value selects the history (same name on both sides).
    pub same: Option<String>,
    /// Only events in the last `within_ms` count (None = all kept).
    pub within_ms: Option<i64>,
    /// The count's comparison (a number operator).
    pub count: Op,
    /// "view where ... same product_id within 7d count gt 1", for traces.
    trace: String,
    /// " gt 1": the count's comparison as traces show it.
    count_trace: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Leaf(Leaf),
    History(HistoryLeaf),
    /// In segment `name`: its condition, inlined at compile time.
    Segment(String, Box<Cond>),
}

/// What the compiler knows while compiling one condition.
pub struct Scope<'a> {
    /// Event type the `attr` leaves refer to; None where there is no event (segments).
    pub event: Option<&'a str>,
    /// Declared attributes of that event type (empty when undeclared).
    pub attrs: Option<&'a BTreeMap<String, AttrType>>,
    pub profile: &'a HashMap<String, AttrType>,
    /// Segments compiled so far (a segment may use the ones before it).
    pub segments: &'a [Segment],
    /// Where history leaves register what they count.
    pub facts: &'a FactTable,
    /// Declared interaction types, for the attributes history filters use.
    pub types: &'a [super::InteractionType],
    /// `strict_types`: event types a history condition counts must be known.
    pub strict: bool,
}

/// Canonical operator name of a written one (symbol aliases folded), if known.
pub fn canonical_op(op: &str) -> Option<&'static str> {
    Some(match op {
        "equals" | "=" | "==" => "equals",
        "not_equals" | "!=" => "not_equals",
        "contains" => "contains",
        "starts_with" => "starts_with",
        "in" => "in",
        "lt" | "<" => "lt",
        "lte" | "<=" => "lte",
        "gt" | ">" => "gt",
        "gte" | ">=" => "gte",
        "between" => "between",
        "before" => "before",
        "after" => "after",
        "within_last" => "within_last",
        "is_true" => "is_true",
        "is_false" => "is_false",
        "exists" => "exists",
        "not_exists" => "not_exists",
        _ => return None,
    })
}

const ALL_OPS: &str = "equals (=), not_equals (!=), contains, starts_with, in, lt (<), lte (<=), gt (>), gte (>=), between, before, after, within_last, is_true, is_false, exists, not_exists";

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::Str(_) | Value::Int(_) | Value::UInt(_) | Value::F64(_) | Value::Bool(_))
}

/// Compile one CONDITION; problems are pushed to `errs` as (path, message).
pub fn compile(doc: &CondDoc, path: &str, scope: &Scope<'_>, errs: &mut Vec<(String, String)>) -> Option<Cond> {
    let shapes = [
        doc.all.is_some(),
        doc.any.is_some(),
        doc.not.is_some(),
        doc.attr.is_some(),
        doc.profile.is_some(),
        doc.event.is_some(),
        doc.segment.is_some(),
    ];
    let n = shapes.iter().filter(|x| **x).count();
    if n != 1 {
        errs.push((
            path.to_owned(),
            format!(
                "a condition must have exactly one of: all, any, not, attr, profile, event, segment (found {})",
                if n == 0 { "none".to_owned() } else { n.to_string() }
            ),
        ));
        return None;
    }
    let history_keys = [("where", doc.filter.is_some()), ("same", doc.same.is_some()), ("within", doc.within.is_some()), ("count", doc.count.is_some())];
    if doc.event.is_none() {
        if let Some((k, _)) = history_keys.iter().find(|(_, set)| *set) {
            errs.push((format!("{path}.{k}"), format!("'{k}' belongs to an event (history) condition: {{event: TYPE, {k}: ...}}")));
            return None;
        }
    }
    if let Some(event) = &doc.event {
        return compile_history(doc, event, path, scope, errs);
    }
    if let Some(name) = &doc.segment {
        if doc.op.is_some() || doc.value.is_some() {
            errs.push((path.to_owned(), "a segment condition takes only the segment name: {segment: NAME}".into()));
            return None;
        }
        return match scope.segments.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
            Some(seg) => Some(Cond::Segment(seg.name.clone(), Box::new(seg.when.clone()))),
            None => {
                let known: Vec<&str> = scope.segments.iter().map(|s| s.name.as_str()).collect();
                let known = if known.is_empty() { "none declared before this point".to_owned() } else { known.join(", ") };
                errs.push((format!("{path}.segment"), format!("unknown segment '{name}'; segments: {known}")));
                None
            }
        };
    }
    let group = doc.all.is_some() || doc.any.is_some() || doc.not.is_some();
    if group && (doc.op.is_some() || doc.value.is_some()) {
        errs.push((path.to_owned(), "'op' and 'value' belong to attr/profile leaves, not to all/any/not".into()));
        return None;
    }
    if let Some(items) = doc.all.as_ref().or(doc.any.as_ref()) {
        let key = if doc.all.is_some() { "all" } else { "any" };
        if items.is_empty() {
            errs.push((format!("{path}.{key}"), format!("'{key}' needs at least one condition")));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, c) in items.iter().enumerate() {
            match compile(c, &format!("{path}.{key}[{i}]"), scope, errs) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        return Some(if key == "all" { Cond::All(out) } else { Cond::Any(out) });
    }
    if let Some(inner) = &doc.not {
        return compile(inner, &format!("{path}.not"), scope, errs).map(|c| Cond::Not(Box::new(c)));
    }
    let (subject, name) = match (&doc.attr, &doc.profile) {
        (Some(a), _) => (Subject::Attr, a),
        (_, Some(p)) => (Subject::Profile, p),
        _ => unreachable!("one shape is set"),
    };
    let key = if subject == Subject::Attr { "attr" } else { "profile" };
    if subject == Subject::Attr && scope.event.is_none() {
        errs.push((format!("{path}.attr"), "there is no event here: a segment's condition may use profile, event (history) and segment conditions".into()));
        return None;
    }
    if name.is_empty() {
        errs.push((format!("{path}.{key}"), "the attribute name must not be empty".into()));
        return None;
    }
    let Some(op_written) = &doc.op else {
        errs.push((format!("{path}.op"), format!("missing 'op'; operators: {ALL_OPS}")));
        return None;
    };
    let op_path = format!("{path}.op");
    let Some(op) = canonical_op(op_written) else {
        errs.push((op_path, format!("unknown operator '{op_written}'; operators: {ALL_OPS}")));
        return None;
    };
    let declared = match subject {
        Subject::Attr => scope.attrs.and_then(|a| a.get(name)).copied(),
        Subject::Profile => scope.profile.get(name).copied(),
    };
    // A type declared with its attributes names all of them: another is a typo.
    if let (Subject::Attr, None, Some(attrs)) = (subject, declared, scope.attrs.filter(|a| !a.is_empty())) {
        let known: Vec<&str> = attrs.keys().map(String::as_str).collect();
        errs.push((
            format!("{path}.attr"),
            format!("'{}' declares no attribute '{name}'; its attributes: {}", scope.event.unwrap_or(""), known.join(", ")),
        ));
        return None;
    }
    if let Some(t) = declared {
        if !t.ops().contains(&op) {
            let what = match subject {
                Subject::Attr => format!("{t} attribute '{name}' of '{}'", scope.event.unwrap_or("")),
                Subject::Profile => format!("{t} profile field '{name}'"),
            };
            errs.push((
                op_path,
                format!("operator '{op_written}' is not offered for {what}; {t} offers: {}", t.ops().join(", ")),
            ));
            return None;
        }
    }
    let vpath = format!("{path}.value");
    let compiled = compile_value(op, doc.value.as_ref(), declared, &vpath, errs)?;
    Some(Cond::Leaf(Leaf::new(subject, name.clone(), op_written.clone(), compiled)))
}

/// Operators a history count may use.
const COUNT_OPS: &str = "equals, not_equals, lt, lte, gt, gte, between";

fn compile_history(doc: &CondDoc, event: &str, path: &str, scope: &Scope<'_>, errs: &mut Vec<(String, String)>) -> Option<Cond> {
    if doc.op.is_some() || doc.value.is_some() {
        errs.push((path.to_owned(), "an event condition compares its count: write count: {op: gt, value: 1}, not op/value".into()));
        return None;
    }
    let event = event.to_lowercase();
    if event.is_empty() {
        errs.push((format!("{path}.event"), "event type must not be empty".into()));
        return None;
    }
    let before = errs.len();
    let declared = scope.types.iter().find(|t| t.name == event);
    if scope.strict && declared.is_none() && !super::types::is_builtin(&event) {
        errs.push((format!("{path}.event"), format!("unknown event type '{event}' (strict_types is on: declare it in interaction_types)")));
        return None;
    }
    let attrs = declared.map(|t| &t.attributes);
    let sub = Scope { event: Some(&event), attrs, ..*scope };
    let filter = doc.filter.as_ref().and_then(|f| compile(f, &format!("{path}.where"), &sub, errs));
    if let Some(same) = &doc.same {
        if scope.event.is_none() {
            errs.push((format!("{path}.same"), "'same' compares with the trigger event; a segment has none".into()));
        } else if same.is_empty() {
            errs.push((format!("{path}.same"), "'same' needs an attribute name, e.g. product_id".into()));
        }
    }
    let within_ms = match &doc.within {
        None => None,
        Some(w) => match parse_duration(w) {
            Some(ms) => Some(ms),
            None => {
                errs.push((format!("{path}.within"), format!("'{w}' is not a duration; write e.g. 7d, 12h, 30m")));
                None
            }
        },
    };
    let (count, keep) = match &doc.count {
        None => (Op::Gte(1.0), 1),
        Some(c) => {
            let cp = format!("{path}.count");
            let op = compile_count(c, "count", &cp, errs)?;
            let keep = match &op {
                Op::Gt(n) | Op::Lte(n) => n.floor() as i64 + 1,
                Op::Gte(n) | Op::Lt(n) => n.ceil() as i64,
                Op::Equals(v) | Op::NotEquals(v) => v.as_f64().unwrap_or(0.0).floor() as i64 + 1,
                Op::Between(_, hi) => hi.floor() as i64 + 1,
                _ => 1,
            };
            if keep as usize > MAX_KEEP {
                errs.push((format!("{cp}.value"), format!("counts are compared with at most {} events", MAX_KEEP - 1)));
                return None;
            }
            (op, keep.max(1) as usize)
        }
    };
    if errs.len() != before {
        return None;
    }
    // Stable key: what is counted, as written (whitespace and order of YAML keys do
    // not matter: the filter is hashed in its parsed form).
    let filter_hash = doc.filter.as_ref().map_or(0, |f| xxhash_rust::xxh3::xxh3_64(&crate::value::encode(f)));
    let same = doc.same.clone().filter(|s| !s.is_empty());
    let key = xxhash_rust::xxh3::xxh3_64(format!("{event}|{}|{filter_hash:016x}", same.as_deref().unwrap_or("")).as_bytes());
    let fact = scope.facts.register(FactDef {
        key,
        event: event.clone(),
        filter,
        same: same.clone(),
        keep,
        window_ms: within_ms.unwrap_or(0),
    });
    let mut trace = format!("event {event}");
    if doc.filter.is_some() {
        trace.push_str(" (filtered)");
    }
    if let Some(s) = &same {
        let _ = write!(trace, " same {s}");
    }
    if let Some(w) = within_ms {
        let _ = write!(trace, " within {}", crate::dates::format_duration(w));
    }
    let mut count_trace = String::new();
    count.write_operand_named(&mut count_trace);
    Some(Cond::History(HistoryLeaf { fact, event, same, within_ms, count, trace, count_trace }))
}

/// A numeric comparison written `{op: gte, value: 3}` (counts, loyalty measures).
/// `what` names the comparison in errors ("count", "amount", ...).
pub(crate) fn compile_count(c: &super::model::CountDoc, what: &str, path: &str, errs: &mut Vec<(String, String)>) -> Option<Op> {
    let Some(op) = canonical_op(&c.op).filter(|o| COUNT_OPS.split(", ").any(|k| k == *o)) else {
        errs.push((format!("{path}.op"), format!("unknown {what} operator '{}'; {what} operators: {COUNT_OPS}", c.op)));
        return None;
    };
    compile_value(op, Some(&c.value), Some(AttrType::Number), &format!("{path}.value"), errs)
}

fn compile_value(
    op: &str,
    value: Option<&Value>,
    declared: Option<AttrType>,
    path: &str,
    errs: &mut Vec<(String, String)>,
) -> Option<Op> {
    let mut fail = |m: String| {
        errs.push((path.to_owned(), m));
        None
    };
    let no_value = matches!(op, "exists" | "not_exists" | "is_true" | "is_false");
    if no_value {
        if value.is_some() {
            return fail(format!("operator '{op}' takes no value; remove 'value'"));
        }
        return Some(match op {
            "exists" => Op::Exists,
            "not_exists" => Op::NotExists,
            "is_true" => Op::IsTrue,
            _ => Op::IsFalse,
        });
    }
    let Some(v) = value else {
        return fail(format!("operator '{op}' needs a 'value'"));
    };
    let text = declared == Some(AttrType::Text);
    let number = declared == Some(AttrType::Number);
    match op {
        "equals" | "not_equals" | "contains" => {
            if !is_scalar(v) {
                return fail(format!("operator '{op}' needs a text, number or bool value, got {}", v.type_name()));
            }
            if text && !matches!(v, Value::Str(_)) {
                return fail(format!("operator '{op}' on a text attribute needs a text value, got {}", v.type_name()));
            }
            if number && !v.is_number() {
                return fail(format!("operator '{op}' on a number attribute needs a number value, got {}", v.type_name()));
            }
            Some(match op {
                "equals" => Op::Equals(v.clone()),
                "not_equals" => Op::NotEquals(v.clone()),
                _ => Op::Contains(v.clone()),
            })
        }
        "starts_with" => match v {
            Value::Str(s) => Some(Op::StartsWith(s.to_string())),
            _ => fail(format!("operator 'starts_with' needs a text value, got {}", v.type_name())),
        },
        "in" => match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(is_scalar) => {
                if text && !items.iter().all(|i| matches!(i, Value::Str(_))) {
                    return fail("operator 'in' on a text attribute needs a list of texts".into());
                }
                Some(Op::In(items.clone()))
            }
            _ => fail(format!(
                "operator 'in' needs a non-empty list of texts, numbers or bools, e.g. [MI, RM], got {}",
                v.type_name()
            )),
        },
        "lt" | "lte" | "gt" | "gte" => {
            let Some(x) = v.as_f64() else {
                return fail(format!("operator '{op}' needs a number value, got {}", v.type_name()));
            };
            Some(match op {
                "lt" => Op::Lt(x),
                "lte" => Op::Lte(x),
                "gt" => Op::Gt(x),
                _ => Op::Gte(x),
            })
        }
        "between" => match v {
            Value::Array(items) if items.len() == 2 => match (items[0].as_f64(), items[1].as_f64()) {
                (Some(lo), Some(hi)) if lo <= hi => Some(Op::Between(lo, hi)),
                (Some(_), Some(_)) => fail("operator 'between' needs [lo, hi] with lo <= hi".into()),
                _ => fail("operator 'between' needs two numbers [lo, hi]".into()),
            },
            _ => fail(format!("operator 'between' needs a list of two numbers [lo, hi] (inclusive), got {v}")),
        },
        "before" | "after" => {
            let ms = match v {
                Value::Int(i) => Some(*i),
                Value::Str(s) => crate::dates::parse_iso(s),
                _ => None,
            };
            let Some(ms) = ms else {
                return fail(format!(
                    "operator '{op}' needs a date: \"2026-11-23\", \"2026-11-23T10:00:00Z\" or ms since epoch, got {v}"
                ));
            };
            Some(if op == "before" { Op::Before(ms) } else { Op::After(ms) })
        }
        "within_last" => match v.as_str().and_then(parse_duration) {
            Some(d) => Some(Op::WithinLast(d)),
            None => fail(format!("operator 'within_last' needs a duration like \"7d\", \"12h\", \"30m\" or \"45s\", got {v}")),
        },
        _ => fail(format!("operator '{op}' is not supported here")),
    }
}

/// What a condition is evaluated against.
pub struct Ctx<'a> {
    /// The trigger event's attributes (or, in an event's own filter, that event's).
    pub attrs: &'a [(Text, Value)],
    pub profile: &'a crate::vecmap::VecMap<String, Value>,
    /// Now: for within_last and history windows.
    pub ts: i64,
    /// The contact's counted histories.
    pub facts: &'a Facts,
}

/// Facts of a contact with none (conditions that count nothing).
pub static NO_FACTS: Facts = crate::vecmap::VecMap::new();

fn num_eq(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x == y),
        _ => Some(a.as_f64()? == b.as_f64()?),
    }
}

/// Same-kind equality: numbers numerically, texts and bools exactly; other kinds never equal.
fn loose_eq(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        _ if a.is_number() && b.is_number() => num_eq(a, b),
        _ => None,
    }
}

impl Op {
    /// Evaluate on a present (non-nil) value; `None` = wrong type (the leaf is false).
    pub(crate) fn test(&self, v: &Value, ts: i64) -> Option<bool> {
        Some(match self {
            Op::Exists => true,
            Op::NotExists => false,
            Op::Equals(t) => loose_eq(v, t)?,
            Op::NotEquals(t) => !loose_eq(v, t)?,
            Op::Contains(t) => match (v, t) {
                (Value::Str(s), Value::Str(n)) => s.contains(n.as_str()),
                (Value::Array(items), _) => items.iter().any(|i| loose_eq(i, t) == Some(true)),
                _ => return None,
            },
            Op::StartsWith(p) => v.as_str()?.starts_with(p.as_str()),
            Op::In(items) => {
                if !is_scalar(v) {
                    return None;
                }
                items.iter().any(|i| loose_eq(v, i) == Some(true))
            }
            Op::Lt(x) => v.as_f64()? < *x,
            Op::Lte(x) => v.as_f64()? <= *x,
            Op::Gt(x) => v.as_f64()? > *x,
            Op::Gte(x) => v.as_f64()? >= *x,
            Op::Between(lo, hi) => {
                let n = v.as_f64()?;
                *lo <= n && n <= *hi
            }
            Op::Before(t) => date_ms(v)? < *t,
            Op::After(t) => date_ms(v)? > *t,
            Op::WithinLast(d) => {
                let t = date_ms(v)?;
                t <= ts && t >= ts.saturating_sub(*d)
            }
            Op::IsTrue => matches!(v, Value::Bool(true)),
            Op::IsFalse => matches!(v, Value::Bool(false)),
        })
    }

    fn write_operand(&self, out: &mut String) {
        let _ = match self {
            Op::Equals(v) | Op::NotEquals(v) | Op::Contains(v) => write!(out, " {v}"),
            Op::StartsWith(s) => write!(out, " '{s}'"),
            Op::In(items) => write!(out, " {}", Value::Array(items.clone())),
            Op::Lt(x) | Op::Lte(x) | Op::Gt(x) | Op::Gte(x) => write!(out, " {x}"),
            Op::Between(lo, hi) => write!(out, " [{lo}, {hi}]"),
            Op::Before(t) | Op::After(t) => write!(out, " {}", crate::dates::format_iso(*t)),
            Op::WithinLast(d) => write!(out, " {}", crate::dates::format_duration(*d)),
            _ => Ok(()),
        };
    }
}

impl Leaf {
    /// The value the leaf reads (nil counts as missing).
    #[inline(always)]
    fn find<'v>(&self, ctx: &Ctx<'v>) -> Option<&'v Value> {
        match self.subject {
            Subject::Attr => map_get(ctx.attrs, &self.name),
            Subject::Profile => ctx.profile.get(&self.name),
        }
        .filter(|v| !matches!(v, Value::Nil))
    }

    /// (result, wrong type) of the leaf on what it found, at `ts`.
    #[inline(always)]
    fn judge(&self, found: Option<&Value>, ts: i64) -> (bool, bool) {
        match found {
            None => (matches!(self.op, Op::NotExists), false),
            Some(v) => match self.op.test(v, ts) {
                Some(r) => (r, false),
                None => (false, true),
            },
        }
    }

    #[inline]
    fn eval(&self, ctx: &Ctx<'_>, trace: Option<&mut String>) -> bool {
        let found = self.find(ctx);
        let (result, wrong_type) = self.judge(found, ctx.ts);
        if let Some(out) = trace {
            self.write_trace(out, found, result, wrong_type);
        }
        result
    }

    /// "attr total_amount = 148 gte 140: true", after "; " unless first.
    fn write_trace(&self, out: &mut String, found: Option<&Value>, result: bool, wrong_type: bool) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&self.trace_subject);
        match found {
            None => out.push_str(" missing"),
            Some(v) => {
                out.push_str(" = ");
                write_value(out, v);
            }
        }
        out.push_str(&self.trace_op);
        out.push_str(if result { ": true" } else { ": false" });
        if wrong_type {
            out.push_str(" (wrong type)");
        }
    }

    /// Does the leaf's result depend on "now" (not stored in a history row)?
    fn reads_now(&self) -> bool {
        matches!(self.op, Op::WithinLast(_))
    }
}

/// Append a value as traces show it; numbers and strings without the formatter.
pub(crate) fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => {
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

impl HistoryLeaf {
    /// How many counted events match, None when the trigger lacks the `same`
    /// attribute (nothing matches then).
    fn observe(&self, ctx: &Ctx<'_>) -> Option<usize> {
        let key = match &self.same {
            None => String::new(),
            Some(a) => map_get(ctx.attrs, a).and_then(crate::facts::value_key)?,
        };
        let since = self.within_ms.map_or(i64::MIN, |w| ctx.ts.saturating_sub(w));
        Some(crate::facts::count(ctx.facts, self.fact, &key, since))
    }

    fn judge(&self, n: usize) -> bool {
        // Count comparisons never read the time.
        self.count.test(&Value::Int(n as i64), 0).unwrap_or(false)
    }

    fn eval(&self, ctx: &Ctx<'_>, trace: Option<&mut String>) -> bool {
        let n = self.observe(ctx);
        let result = self.judge(n.unwrap_or(0));
        if let Some(out) = trace {
            self.write_trace(out, n, result);
        }
        result
    }

    /// "event view same product_id within 7d count = 2 gt 1: true", after "; "
    /// unless first.
    fn write_trace(&self, out: &mut String, n: Option<usize>, result: bool) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&self.trace);
        if let (Some(a), None) = (&self.same, n) {
            let _ = write!(out, " (trigger has no {a})");
        }
        out.push_str(" count = ");
        out.push_str(itoa::Buffer::new().format(n.unwrap_or(0)));
        out.push_str(&self.count_trace);
        out.push_str(if result { ": true" } else { ": false" });
    }
}

impl Op {
    /// " gt 1" as a count comparison reads.
    pub(crate) fn write_operand_named(&self, out: &mut String) {
        let name = match self {
            Op::Equals(_) => "equals",
            Op::NotEquals(_) => "not_equals",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Between(..) => "between",
            _ => "",
        };
        out.push(' ');
        out.push_str(name);
        self.write_operand(out);
    }
}

impl Cond {
    /// Evaluate; when `trace` is given, append a readable account of the leaves evaluated.
    pub fn eval(&self, ctx: &Ctx<'_>, mut trace: Option<&mut String>) -> bool {
        match self {
            Cond::Leaf(l) => l.eval(ctx, trace),
            Cond::History(h) => h.eval(ctx, trace),
            Cond::Segment(name, inner) => {
                let r = inner.eval(ctx, trace.as_deref_mut());
                if let Some(out) = trace {
                    let _ = write!(out, "; in segment {name} => {r}");
                }
                r
            }
            Cond::All(items) => items.iter().all(|c| c.eval(ctx, trace.as_deref_mut())),
            Cond::Any(items) => items.iter().any(|c| c.eval(ctx, trace.as_deref_mut())),
            Cond::Not(inner) => {
                let r = !inner.eval(ctx, trace.as_deref_mut());
                if let Some(out) = trace {
                    let _ = write!(out, "; not => {r}");
                }
                r
            }
        }
    }
}

/// What a condition observed, read back from a stored trace (`crate::trace`): the
/// values its leaves saw, in evaluation order.
pub struct Observed<'a> {
    /// The attributes `attr` leaves read when their values were not stored (those of
    /// the history row's own event); None: every `attr` leaf's value was stored.
    pub attrs: Option<&'a [(Text, Value)]>,
    /// The stored observations, consumed as the leaves are replayed.
    pub values: std::slice::Iter<'a, Value>,
}

impl Cond {
    /// Evaluate without text, appending to `out` (msgpack, `*n` counting the
    /// elements written) what cannot be recomputed from the history row: per leaf
    /// evaluated, in order, the value a `profile` leaf saw (nil when missing), the
    /// value an `attr` leaf saw when `store_attrs` (otherwise the row's event holds
    /// it), the count of a history leaf (nil when the trigger lacks its `same`
    /// attribute), and, after a `within_last` leaf, its result (it depends on now).
    /// `replay` renders from these exactly the text `eval` writes.
    pub fn record(&self, ctx: &Ctx<'_>, store_attrs: bool, out: &mut Vec<u8>, n: &mut usize) -> bool {
        match self {
            Cond::Leaf(l) => {
                let found = l.find(ctx);
                let (result, _) = l.judge(found, ctx.ts);
                if store_attrs || l.subject == Subject::Profile {
                    crate::msgpack::write_value(out, found.unwrap_or(&Value::Nil));
                    *n += 1;
                }
                if l.reads_now() {
                    crate::msgpack::write_bool(out, result);
                    *n += 1;
                }
                result
            }
            Cond::History(h) => {
                let count = h.observe(ctx);
                match count {
                    Some(c) => crate::msgpack::write_uint(out, c as u64),
                    None => crate::msgpack::write_nil(out),
                }
                *n += 1;
                h.judge(count.unwrap_or(0))
            }
            Cond::Segment(_, inner) => inner.record(ctx, store_attrs, out, n),
            Cond::All(items) => items.iter().all(|c| c.record(ctx, store_attrs, out, n)),
            Cond::Any(items) => items.iter().any(|c| c.record(ctx, store_attrs, out, n)),
            Cond::Not(inner) => !inner.record(ctx, store_attrs, out, n),
        }
    }

    /// Evaluate again from what `record` stored, appending the text `eval` with a
    /// trace would have written. None when the observations do not fit the
    /// condition (too few, or of the wrong kind).
    pub fn replay(&self, obs: &mut Observed<'_>, trace: &mut String) -> Option<bool> {
        match self {
            Cond::Leaf(l) => {
                let found = match (l.subject, obs.attrs) {
                    (Subject::Attr, Some(attrs)) => map_get(attrs, &l.name),
                    _ => Some(obs.values.next()?),
                }
                .filter(|v| !matches!(v, Value::Nil));
                // The time only matters to within_last, whose result was stored.
                let (mut result, wrong_type) = l.judge(found, 0);
                if l.reads_now() {
                    result = match obs.values.next()? {
                        Value::Bool(b) => *b,
                        _ => return None,
                    };
                }
                l.write_trace(trace, found, result, wrong_type);
                Some(result)
            }
            Cond::History(h) => {
                let count = match obs.values.next()? {
                    Value::Nil => None,
                    Value::Int(c) if *c >= 0 => Some(*c as usize),
                    _ => return None,
                };
                let result = h.judge(count.unwrap_or(0));
                h.write_trace(trace, count, result);
                Some(result)
            }
            Cond::Segment(name, inner) => {
                let r = inner.replay(obs, trace)?;
                let _ = write!(trace, "; in segment {name} => {r}");
                Some(r)
            }
            Cond::All(items) => {
                for c in items {
                    if !c.replay(obs, trace)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Cond::Any(items) => {
                for c in items {
                    if c.replay(obs, trace)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Cond::Not(inner) => {
                let r = !inner.replay(obs, trace)?;
                let _ = write!(trace, "; not => {r}");
                Some(r)
            }
        }
    }
}
