//! Decision reasons stored as traces, rendered as text when read (explain).
//!
//! The reason of a Decision or Splitter step used to be text built while deciding
//! ("attr total_amount = 148 gte 140: true => yes"): most of a history row's bytes
//! and a visible share of the batch. Now such a step stores, in its reason slot, only
//! what cannot be recomputed later: the msgpack array `[mode, observed...]`, where
//! `observed` lists, per condition leaf evaluated (in evaluation order, so `all` and
//! `any` stop where they stopped), in order over the splitter's branches tried:
//!
//! - `profile` leaf: the value it saw (nil when missing);
//! - `attr` leaf: the value it saw (nil when missing), only in mode 1; in mode 0 the
//!   leaf read the attributes of the history row's own event (a run entering on
//!   it), which the row stores already;
//! - `within_last` leaf (either subject): then its result, a bool (it depends on
//!   "now", which the row does not hold);
//! - history (event) leaf: the count, or nil when the trigger lacks its `same`
//!   attribute;
//! - `not`, `all`, `any`, segments: nothing (they follow from their leaves).
//!
//! Mode 1 is used by runs resumed by a `$timer` or an awaited event: their
//! decisions read the attributes of the run's trigger, an earlier event.
//!
//! The outcome (yes/no, branch/else) is the step's own field; which branch follows
//! from the replay. `render` finds the program by (name, version) in the catalog
//! (every applied version is kept), replays the node's condition on the
//! observations (`Cond::replay`) and writes exactly the text the evaluation with a
//! text trace writes (`decision_text`, `splitter_text`, kept for tests and for
//! `Catalog::text_reasons`). A trace is bound to its condition's leaf order: the
//! compiler must keep it for an unchanged program source. What cannot be rendered
//! (no catalog, an unknown program version, observations that do not fit) reads as
//! a fallback text with the raw observations, never as an error.

use crate::definitions::condition::Observed;
use crate::definitions::{Catalog, Cond, Ctx, NodeKind};
use crate::state::Reason;
use crate::value::{Text, Value};

/// Mode 0: `attr` leaves read the history row's own event (values not stored).
pub const ROW_ATTRS: u8 = 0;
/// Mode 1: `attr` leaves read another event (the run's trigger): values stored.
pub const STORED_ATTRS: u8 = 1;

/// Builds one step's trace: the array header is patched in at the end.
struct Recorder {
    buf: Vec<u8>,
    n: usize,
}

impl Recorder {
    fn new(store_attrs: bool) -> Recorder {
        let mut buf = Vec::with_capacity(16);
        // Header placeholder (patched in `finish`), then the mode.
        buf.push(0x90);
        buf.push(if store_attrs { STORED_ATTRS } else { ROW_ATTRS });
        Recorder { buf, n: 1 }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n <= 15 {
            self.buf[0] = 0x90 | self.n as u8;
        } else {
            let mut header = Vec::with_capacity(5);
            crate::msgpack::write_array_len(&mut header, self.n);
            self.buf.splice(0..1, header);
        }
        self.buf
    }
}

/// Decide a Decision node's `when`: (result, the step's trace).
pub fn decision(when: &Cond, ctx: &Ctx<'_>, store_attrs: bool) -> (bool, Vec<u8>) {
    let mut rec = Recorder::new(store_attrs);
    let r = when.record(ctx, store_attrs, &mut rec.buf, &mut rec.n);
    (r, rec.finish())
}

/// Decide a Splitter node: (the first branch whose condition holds, the step's trace).
pub fn splitter<T>(branches: &[(Cond, T)], ctx: &Ctx<'_>, store_attrs: bool) -> (Option<usize>, Vec<u8>) {
    let mut rec = Recorder::new(store_attrs);
    let hit = branches.iter().position(|(c, _)| c.record(ctx, store_attrs, &mut rec.buf, &mut rec.n));
    (hit, rec.finish())
}

/// Decide a Decision node and its step's reason: a trace (`store_attrs`: mode 1),
/// or with `as_text` (`Catalog::text_reasons`) the text builds before traces stored.
pub fn decision_reason(when: &Cond, ctx: &Ctx<'_>, as_text: bool, store_attrs: bool) -> (bool, Reason) {
    if as_text {
        let (r, text) = decision_text(when, ctx);
        (r, Reason::Text(text))
    } else {
        let (r, trace) = decision(when, ctx, store_attrs);
        (r, Reason::Trace(trace))
    }
}

/// `decision_reason` for a Splitter node: the branch taken (None: else).
pub fn splitter_reason<T>(branches: &[(Cond, T)], ctx: &Ctx<'_>, as_text: bool, store_attrs: bool) -> (Option<usize>, Reason) {
    if as_text {
        let (hit, text) = splitter_text(branches, ctx);
        (hit, Reason::Text(text))
    } else {
        let (hit, trace) = splitter(branches, ctx, store_attrs);
        (hit, Reason::Trace(trace))
    }
}

/// A Decision node's reason as text, as it was stored before traces: the
/// condition's trace, " => ", the outcome.
pub fn decision_text(when: &Cond, ctx: &Ctx<'_>) -> (bool, String) {
    let mut reason = String::with_capacity(128);
    let r = when.eval(ctx, Some(&mut reason));
    reason.push_str(if r { " => yes" } else { " => no" });
    (r, reason)
}

/// A Splitter node's reason as text, as it was stored before traces: each branch
/// tried, " | " between them, then " => branch N" or " => else".
pub fn splitter_text<T>(branches: &[(Cond, T)], ctx: &Ctx<'_>) -> (Option<usize>, String) {
    let mut reason = String::with_capacity(128);
    let hit = branches.iter().position(|(c, _)| {
        let mut t = String::new();
        let r = c.eval(ctx, Some(&mut t));
        if !reason.is_empty() {
            reason.push_str(" | ");
        }
        reason.push_str(&t);
        r
    });
    end_splitter(&mut reason, hit);
    (hit, reason)
}

fn end_splitter(reason: &mut String, hit: Option<usize>) {
    match hit {
        Some(i) => {
            reason.push_str(" => branch ");
            reason.push_str(itoa::Buffer::new().format(i + 1));
        }
        None => reason.push_str(" => else"),
    }
}

/// Where a trace was recorded: the run record's program and version, the step's
/// node and outcome, and the attributes of the history row's event.
pub struct At<'a> {
    pub program: &'a str,
    pub version: u64,
    pub node: &'a str,
    pub outcome: &'a str,
    pub attrs: &'a [(Text, Value)],
}

/// The text of a stored trace: what `decision_text` or `splitter_text` wrote when
/// the step was taken, or a fallback naming why it cannot be rendered.
pub fn render(cat: Option<&Catalog>, at: &At<'_>, trace: &[Value]) -> String {
    match try_render(cat, at, trace) {
        Ok(text) => text,
        Err(why) => format!("decision trace {}: {why}", Value::Array(trace.to_vec())),
    }
}

fn try_render(cat: Option<&Catalog>, at: &At<'_>, trace: &[Value]) -> Result<String, String> {
    let cat = cat.ok_or("read without the definitions")?;
    let p = cat
        .program(at.program, at.version)
        .ok_or_else(|| format!("program '{}' version {} is not in the definitions", at.program, at.version))?;
    let node = p.node_index(at.node).map(|i| &p.nodes[i].kind);
    let unfit = || format!("does not fit node '{}' of program '{}' version {}", at.node, at.program, at.version);
    let attrs = match trace.first() {
        Some(Value::Int(m)) if *m == ROW_ATTRS as i64 => Some(at.attrs),
        Some(Value::Int(m)) if *m == STORED_ATTRS as i64 => None,
        _ => return Err(unfit()),
    };
    let mut obs = Observed { attrs, values: trace[1..].iter() };
    let mut reason = String::with_capacity(128);
    let fits = match node {
        Some(NodeKind::Decision { when, .. }) => {
            let r = when.replay(&mut obs, &mut reason).ok_or_else(unfit)?;
            reason.push_str(if r { " => yes" } else { " => no" });
            at.outcome == if r { "yes" } else { "no" }
        }
        Some(NodeKind::Splitter { branches, .. }) => {
            let mut hit = None;
            for (i, (c, _)) in branches.iter().enumerate() {
                let mut t = String::new();
                let r = c.replay(&mut obs, &mut t).ok_or_else(unfit)?;
                if !reason.is_empty() {
                    reason.push_str(" | ");
                }
                reason.push_str(&t);
                if r {
                    hit = Some(i);
                    break;
                }
            }
            end_splitter(&mut reason, hit);
            at.outcome == if hit.is_some() { "branch" } else { "else" }
        }
        _ => false,
    };
    if !fits || obs.values.next().is_some() {
        return Err(unfit());
    }
    Ok(reason)
}

/// Replace, in a history row's runs (`[[program, version, run, [[node, outcome,
/// reason], ...]], ...]`), every trace reason by its text; `attrs` are the row's
/// event's. Text reasons and anything not shaped as runs stay as they are.
pub fn render_runs(cat: Option<&Catalog>, runs: &mut Value, attrs: &Value) {
    let Value::Array(runs) = runs else { return };
    let attrs: &[(Text, Value)] = match attrs {
        Value::Map(m) => m,
        _ => &[],
    };
    for run in runs {
        let Value::Array(fields) = run else { continue };
        let [Value::Str(program), version, _, Value::Array(steps)] = &mut fields[..] else { continue };
        let version = match version {
            Value::Int(v) => *v as u64,
            Value::UInt(v) => *v,
            _ => continue,
        };
        for step in steps {
            let Value::Array(parts) = step else { continue };
            let [Value::Str(node), Value::Str(outcome), reason] = &mut parts[..] else { continue };
            if let Value::Array(trace) = reason {
                let at = At { program, version, node, outcome, attrs };
                *reason = Value::Str(render(cat, &at, trace).into());
            }
        }
    }
}
