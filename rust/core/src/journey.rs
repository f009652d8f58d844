//! Journeys at run time: entering programs, walking nodes, waiting on timers and
//! events, goals. Every step records why it went where it went (explain).
//!
//! A run walks from node to node within one event until it reaches End or a node
//! that waits (Wait, Wait-and-check). A waiting run is kept in the contact's state
//! with a timer row; the timer comes back as a `$timer` event through the same batch
//! path, and an awaited event or a goal event ends the wait at once.

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64;

use crate::definitions::arbitration::Arbitration;
use crate::definitions::{Action, Catalog, Channel, Ctx, NodeKind, Program, Send};
use crate::effect::{effect_hash, hex_id, Attrs, AudienceChange, Context, Effect, EventCtx, LoyaltyView, ProfileView, Templates};
use crate::event::Event;
use crate::facts::value_key;
use crate::keys::timer_key;
use crate::rows::EventRows;
use crate::state::{Reason, Run, RunRecord, State, Step, Trigger};
use crate::value::{map_get, Text, Value};

/// The type of the events timers come back as.
pub const TIMER_EVENT: &str = "$timer";

/// Where a batch's journey rows go.
pub struct Out<'o> {
    pub outbox: EventRows<'o>,
    /// Timer key -> true (put) or false (delete); the last change of a key wins.
    pub timers: &'o mut FxHashMap<Vec<u8>, bool>,
}

impl Out<'_> {
    fn set_timer(&mut self, contact: &str, wake_ms: i64, run: u64) {
        self.timers.insert(timer_key(wake_ms, contact, run), true);
    }

    fn clear_timer(&mut self, contact: &str, run: &Run) {
        if run.wake_ms > 0 {
            self.timers.insert(timer_key(run.wake_ms, contact, run.id), false);
        }
    }
}

/// The event being applied (effect ids derive from it, so a resend finds them
/// again), when, and the limits messages obey.
pub struct Cause<'e> {
    pub contact: &'e str,
    pub id: &'e str,
    pub now_ms: i64,
    pub limits: &'e Arbitration,
    /// The msgpack bytes of the event's attrs, when its batch kept them
    /// (`Batch::raw_attrs`): the effects of the runs it triggers copy them.
    pub raw_attrs: Option<&'e [u8]>,
    /// Store decision reasons as text rather than traces (`Catalog::text_reasons`).
    pub text_reasons: bool,
}

/// Where a message on `channel` goes for this contact, or why it cannot be sent.
pub fn address<'a>(channel: Channel, contact: &'a str, state: &'a State, transactional: bool) -> Result<&'a str, String> {
    let field = |name: &str| match state.profile.get(name) {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    match channel {
        Channel::Email => {
            let to = field("email").ok_or_else(|| "no 'email' in profile".to_owned())?;
            if !valid_email(to) {
                return Err(format!("'{to}' is not a valid email address"));
            }
            if !transactional && state.profile.get("email_opt_in") != Some(&Value::Bool(true)) {
                return Err("no marketing opt-in (profile email_opt_in is not true) and the program is not transactional".into());
            }
            Ok(to)
        }
        Channel::Sms => field("phone").ok_or_else(|| "no 'phone' in profile".to_owned()),
        Channel::Push | Channel::WebPush => Ok(field("push_token").unwrap_or(contact)),
        _ => Ok(contact),
    }
}

/// One `@`, something before it, a dotted domain after it, no spaces.
fn valid_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Does the program's trigger filter pass for this event?
pub fn triggers(p: &Program, ev: &Event, state: &State) -> bool {
    match &p.filter {
        None => true,
        Some(f) => f.eval(&Ctx { attrs: ev.attrs(), profile: &state.profile, ts: ev.ts, facts: &state.facts }, None),
    }
}

fn step<'c>(node: &'c str, outcome: &'static str, reason: String) -> Step<'c> {
    Step { node, outcome, reason: Reason::Text(reason) }
}

/// The parts joined: reasons on the hot path are built without `format!`, which
/// cost more than the decisions they explain.
fn text(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// `reason` + the ISO time of `ms`.
fn with_time(mut reason: String, ms: i64) -> String {
    crate::dates::push_iso(&mut reason, ms);
    reason
}

/// A number as written: integers without a fraction.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        itoa::Buffer::new().format(x as i64).to_owned()
    } else {
        x.to_string()
    }
}

/// A share of 100 with two decimals, e.g. 37.2149 -> "37.21".
fn percent(f: f64) -> String {
    let bp = (f * 100.0).round() as u64;
    let mut s = String::from(itoa::Buffer::new().format(bp / 100));
    s.push('.');
    s.push(char::from(b'0' + (bp % 100 / 10) as u8));
    s.push(char::from(b'0' + (bp % 10) as u8));
    s
}

/// A run's trigger event, borrowed: from the event being applied when the run
/// enters (copied into the state only if the run ends up waiting), or from the
/// stored run when it resumes.
#[derive(Clone, Copy)]
pub struct TriggerRef<'t> {
    pub id: &'t str,
    pub kind: &'t str,
    pub ts: i64,
    pub seq: u64,
    pub attrs: &'t Value,
    pub source: &'t Option<String>,
    /// The bytes `attrs` was decoded from (`Batch::raw_attrs`), when the trigger is
    /// the event being applied and they were kept: its effects copy them.
    pub raw_attrs: Option<&'t [u8]>,
    /// The trigger is the event whose history row the steps go to (a run entering
    /// on it): that row holds its attributes, so decision traces need not.
    pub own_row: bool,
}

impl<'t> TriggerRef<'t> {
    fn of_event(ev: &'t Event, seq: u64, raw_attrs: Option<&'t [u8]>) -> Self {
        TriggerRef { id: &ev.id, kind: &ev.kind, ts: ev.ts, seq, attrs: &ev.attrs, source: &ev.source, raw_attrs, own_row: true }
    }

    /// A stored run's trigger: its attrs are written again (`msgpack::write_value`).
    fn of(t: &'t Trigger) -> Self {
        TriggerRef { id: &t.id, kind: &t.kind, ts: t.ts, seq: t.seq, attrs: &t.attrs, source: &t.source, raw_attrs: None, own_row: false }
    }

    fn attrs(&self) -> &'t [(Text, Value)] {
        match self.attrs {
            Value::Map(m) => m,
            _ => &[],
        }
    }

    fn to_trigger(self) -> Trigger {
        Trigger { id: self.id.to_owned(), kind: self.kind.to_owned(), ts: self.ts, seq: self.seq, attrs: self.attrs.clone(), source: self.source.clone() }
    }
}

/// Where a walk stopped to wait: the node and when it wakes.
struct Stop<'c> {
    node: &'c str,
    wake_ms: i64,
}

/// Enter `p` for the trigger `ev` (history sequence `seq`), if its entry rules
/// allow; `ev` is the event `cause` names.
pub fn enter<'c>(p: &'c Program, ev: &Event, seq: u64, state: &mut State, cause: &Cause<'_>, out: &mut Out<'_>) -> RunRecord<'c> {
    let refused = |reason: String| RunRecord {
        program: &p.name,
        version: p.version,
        run: 0,
        steps: vec![step(&p.nodes[0].id, "not_entered", reason)],
    };
    if !p.entry.concurrent {
        if let Some(r) = state.runs.iter().find(|r| r.program == p.name) {
            return refused(format!("already in the program (run {} waiting at '{}'); entry.concurrent is false", r.id, r.node));
        }
    }
    let log = state.journeys.get(&p.name).copied().unwrap_or_default();
    if !p.entry.reentry && log.entries > 0 {
        return refused(format!("entered {} time(s) before; entry.reentry is false", log.entries));
    }
    if p.entry.cooloff_ms > 0 && log.entries > 0 && cause.now_ms - log.last_entry_ms < p.entry.cooloff_ms {
        return refused(format!(
            "last entered {} ago; entry.cooloff is {}",
            crate::dates::format_duration((cause.now_ms - log.last_entry_ms).max(1000) / 1000 * 1000),
            crate::dates::format_duration(p.entry.cooloff_ms)
        ));
    }
    if p.entry.needs_log() || p.goal.is_some() {
        let j = state.journeys.entry_or_default(p.name.clone());
        j.entries += 1;
        j.last_entry_ms = cause.now_ms;
    }
    state.last_run += 1;
    let id = state.last_run;
    debug_assert_eq!((ev.contact.as_str(), ev.id.as_str()), (cause.contact, cause.id), "the trigger is the event being applied");
    let trig = TriggerRef::of_event(ev, seq, cause.raw_attrs);
    let mut steps = Vec::with_capacity(p.nodes.len());
    if let Some(stop) = walk(p, id, &trig, 0, state, cause, out, &mut steps) {
        state.runs.push(Run {
            id,
            program: p.name.clone(),
            version: p.version,
            node: stop.node.to_owned(),
            entered_ms: cause.now_ms,
            wake_ms: stop.wake_ms,
            trigger: trig.to_trigger(),
        });
    }
    RunRecord { program: &p.name, version: p.version, run: id, steps }
}

/// Walk run `run` of `p` from node `at` until End (None) or a node that waits.
#[allow(clippy::too_many_arguments)]
fn walk<'c>(p: &'c Program, run: u64, trig: &TriggerRef<'_>, mut at: usize, state: &mut State, cause: &Cause<'_>, out: &mut Out<'_>, steps: &mut Vec<Step<'c>>) -> Option<Stop<'c>> {
    // Every cycle passes through a waiting node (checked at compile), so a walk
    // visits each node at most once.
    for _ in 0..=p.nodes.len() {
        let node = &p.nodes[at];
        let id = node.id.as_str();
        let ctx = Ctx { attrs: trig.attrs(), profile: &state.profile, ts: cause.now_ms, facts: &state.facts };
        match &node.kind {
            NodeKind::Decision { when, yes, no } => {
                let (r, reason) = crate::trace::decision_reason(when, &ctx, cause.text_reasons, !trig.own_row);
                steps.push(Step { node: id, outcome: if r { "yes" } else { "no" }, reason });
                at = if r { *yes } else { *no };
            }
            NodeKind::Splitter { branches, otherwise } => {
                let (hit, reason) = crate::trace::splitter_reason(branches, &ctx, cause.text_reasons, !trig.own_row);
                match hit {
                    Some(i) => {
                        steps.push(Step { node: id, outcome: "branch", reason });
                        at = branches[i].1;
                    }
                    None => {
                        steps.push(Step { node: id, outcome: "else", reason });
                        at = *otherwise;
                    }
                }
            }
            NodeKind::Wait { wake, said, next } => {
                let due = wake.at(cause.now_ms, p.time_zone, state.time_zone());
                if due <= cause.now_ms {
                    let mut why = with_time(text(&[said, ": "]), due);
                    why.push_str(" is not after now");
                    steps.push(step(id, "passed", why));
                    at = *next;
                } else {
                    out.set_timer(cause.contact, due, run);
                    steps.push(step(id, "wait", with_time(text(&[said, ": until "]), due)));
                    return Some(Stop { node: id, wake_ms: due });
                }
            }
            NodeKind::WaitFor { event, same, timeout_ms, .. } => {
                let due = cause.now_ms + timeout_ms;
                out.set_timer(cause.contact, due, run);
                let mut reason = text(&["waiting for ", event]);
                if let Some(a) = same {
                    reason.push_str(" with ");
                    reason.push_str(a);
                    reason.push(' ');
                    match map_get(trig.attrs(), a) {
                        Some(v) => crate::definitions::condition::write_value(&mut reason, v),
                        None => reason.push_str("(missing)"),
                    }
                }
                reason.push_str(" until ");
                steps.push(step(id, "waiting", with_time(reason, due)));
                return Some(Stop { node: id, wake_ms: due });
            }
            NodeKind::Random { branches, control } => {
                let f = sticky_fraction(cause.contact, &p.name, id) * 100.0;
                if f < *control {
                    steps.push(step(id, "control", text(&["draw ", &percent(f), " < control ", &number(*control), "%: held out"])));
                    return None;
                }
                let total: f64 = branches.iter().map(|b| b.0).sum();
                let mut x = (f - control) / (100.0 - control) * total;
                let mut pick = branches.len() - 1;
                for (i, (w, _)) in branches.iter().enumerate() {
                    if x < *w {
                        pick = i;
                        break;
                    }
                    x -= w;
                }
                let (n, weight) = (itoa::Buffer::new().format(pick + 1).to_owned(), number(branches[pick].0));
                steps.push(step(id, "branch", text(&["draw ", &percent(f), " of 100 => branch ", &n, " (weight ", &weight, ")"])));
                at = branches[pick].1;
            }
            NodeKind::Action { action, next } => match act(p, id, action, run, trig, state, cause, out) {
                Acted::Done(outcome, reason) => {
                    steps.push(step(id, outcome, reason));
                    at = *next;
                }
                Acted::Deferred(until, reason) => {
                    out.set_timer(cause.contact, until, run);
                    steps.push(step(id, "deferred", with_time(text(&[&reason, ": deferred to "]), until)));
                    return Some(Stop { node: id, wake_ms: until });
                }
            },
            NodeKind::End => {
                steps.push(step(id, "end", String::new()));
                return None;
            }
        }
    }
    unreachable!("programs are checked for cycles without a wait")
}


/// A number in [0, 1) fixed by (contact, program, node): a contact always takes the
/// same branch of a random split, version after version.
fn sticky_fraction(contact: &str, program: &str, node: &str) -> f64 {
    let mut key = Vec::with_capacity(contact.len() + program.len() + node.len() + 2);
    for (i, part) in [contact, program, node].iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    let h = xxh3_64(&key);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// What an Action node did.
enum Acted {
    /// (outcome, reason): the run goes on.
    Done(&'static str, String),
    /// Held by a cap or quiet hours until then; the run waits at the node.
    Deferred(i64, String),
}

/// Run an Action node of run `run`.
#[allow(clippy::too_many_arguments)]
fn act(p: &Program, node: &str, action: &Action, run: u64, trig: &TriggerRef<'_>, state: &mut State, cause: &Cause<'_>, out: &mut Out<'_>) -> Acted {
    let (outcome, reason) = match action {
        Action::Send(send) => {
            let to = match address(send.channel, cause.contact, state, p.transactional) {
                Ok(to) => to.to_owned(),
                Err(why) => return Acted::Done("skipped", why),
            };
            if !p.transactional {
                if let Err(blocked) = cause.limits.check(send.channel, state, cause.now_ms) {
                    if p.drop_on_limit {
                        return Acted::Done("dropped", format!("{}; the program drops held messages (on_limit: drop)", blocked.reason));
                    }
                    return Acted::Deferred(blocked.until_ms, blocked.reason);
                }
                cause.limits.record(send.channel, state, cause.now_ms);
            }
            push_effect(p, node, run, trig, state, cause, out, send.channel.name(), &to, Payload::Message(send));
            ("sent", text(&[send.channel.name(), " to '", &to, "'"]))
        }
        Action::Audience { name, add } => {
            let op = if *add { "add" } else { "remove" };
            push_effect(p, node, run, trig, state, cause, out, Channel::Ads.name(), cause.contact, Payload::Audience(name, op));
            ("sent", format!("ads audience '{name}': {op}"))
        }
        Action::UpdateProfile { set, unset } => {
            state.update_profile(set, unset);
            let mut names: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
            names.extend(unset.iter().map(|k| k.as_str()));
            ("updated", format!("profile fields {}", names.join(", ")))
        }
        Action::Webhook { url, profile_needs, reads_loyalty, .. } => {
            push_effect(p, node, run, trig, state, cause, out, "webhook", url, Payload::Webhook(profile_needs, *reads_loyalty));
            ("sent", format!("webhook {url}"))
        }
    };
    Acted::Done(outcome, reason)
}

/// What an effect carries. A message's or webhook's templates (and url) are not
/// written: the row names its node, whose templates readers take from the catalog
/// (`effect::named_effect_in`).
enum Payload<'a> {
    Message(&'a Send),
    Audience(&'a str, &'static str),
    /// The profile fields the body reads (all without a body), and whether it
    /// reads the loyalty balances.
    Webhook(&'a crate::definitions::ProfileNeeds, bool),
}

#[allow(clippy::too_many_arguments)]
fn push_effect(p: &Program, node: &str, run: u64, trig: &TriggerRef<'_>, state: &State, cause: &Cause<'_>, out: &mut Out<'_>, channel: &'static str, to: &str, payload: Payload<'_>) {
    let hex = hex_id(effect_hash(cause.contact, cause.id, &p.name, p.version, node));
    let none = crate::definitions::ProfileNeeds::none();
    let (needs, reads_loyalty) = match &payload {
        Payload::Message(s) => (&s.profile_needs, s.reads_loyalty),
        Payload::Webhook(needs, reads_loyalty) => (*needs, *reads_loyalty),
        Payload::Audience(..) => (&none, false),
    };
    let (message, audience, webhook) = match payload {
        Payload::Message(_) => (Some(Templates::Node), None, None),
        Payload::Audience(name, op) => (None, Some(AudienceChange { name, op }), None),
        Payload::Webhook(..) => (None, None, Some(Templates::Node)),
    };
    let effect = Effect {
        id: std::str::from_utf8(&hex).expect("hex digits are ascii"),
        contact: cause.contact,
        channel,
        to: (to != cause.contact).then_some(to),
        program: &p.name,
        version: p.version,
        run,
        node,
        created_ms: cause.now_ms,
        message,
        audience,
        webhook,
        context: Context {
            event: EventCtx { id: trig.id, kind: trig.kind, ts: trig.ts, source: trig.source, attrs: Attrs { value: trig.attrs, raw: trig.raw_attrs } },
            profile: ProfileView { profile: &state.profile, needs },
            // Only when a template can read them: most do not.
            loyalty: LoyaltyView(reads_loyalty.then_some(&state.loyalty)),
        },
    };
    out.outbox.push_packed(&effect);
}

/// Does `ev` carry the same value of `attr` as the run's trigger?
fn same_as_trigger(attr: &Option<String>, ev: &Event, run: &Run) -> bool {
    match attr {
        None => true,
        Some(a) => match (map_get(ev.attrs(), a).and_then(value_key), map_get(TriggerRef::of(&run.trigger).attrs(), a).and_then(value_key)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// An event for a contact with waiting runs: goals end runs, awaited events wake them.
pub fn on_event<'c>(cat: &'c Catalog, ev: &Event, state: &mut State, cause: &Cause<'_>, out: &mut Out<'_>, records: &mut Vec<RunRecord<'c>>) {
    let runs = std::mem::take(&mut state.runs);
    let mut kept = Vec::with_capacity(runs.len());
    for mut run in runs {
        let Some(p) = cat.program(&run.program, run.version) else {
            kept.push(run);
            continue;
        };
        let ctx = Ctx { attrs: ev.attrs(), profile: &state.profile, ts: cause.now_ms, facts: &state.facts };
        let node_id = p.node_index(&run.node).map_or("", |i| p.nodes[i].id.as_str());
        if let Some(goal) = &p.goal {
            let hit = goal.event == ev.kind && goal.filter.as_ref().is_none_or(|f| f.eval(&ctx, None)) && same_as_trigger(&goal.same, ev, &run);
            if hit {
                out.clear_timer(cause.contact, &run);
                if let Some(j) = state.journeys.get_mut(&p.name) {
                    j.conversions += 1;
                }
                let mut reason = format!("goal: {} '{}' arrived", ev.kind, ev.id);
                if let Some(a) = &goal.same {
                    reason.push_str(&format!(" with the trigger's {a}"));
                }
                reason.push_str("; left the program as a conversion");
                records.push(RunRecord { program: &p.name, version: p.version, run: run.id, steps: vec![step(node_id, "goal", reason)] });
                continue;
            }
        }
        let at = p.node_index(&run.node);
        if let Some(NodeKind::WaitFor { event, filter, same, occurred, .. }) = at.map(|i| &p.nodes[i].kind) {
            let hit = *event == ev.kind && filter.as_ref().is_none_or(|f| f.eval(&ctx, None)) && same_as_trigger(same, ev, &run);
            if hit {
                out.clear_timer(cause.contact, &run);
                let mut steps = vec![step(node_id, "occurred", format!("{} '{}' arrived", ev.kind, ev.id))];
                let stop = walk(p, run.id, &TriggerRef::of(&run.trigger), *occurred, state, cause, out, &mut steps);
                records.push(RunRecord { program: &p.name, version: p.version, run: run.id, steps });
                if let Some(stop) = stop {
                    run.node = stop.node.to_owned();
                    run.wake_ms = stop.wake_ms;
                    kept.push(run);
                }
                continue;
            }
        }
        kept.push(run);
    }
    // Runs started while walking (none today) stay after the ones kept.
    kept.append(&mut state.runs);
    state.runs = kept;
}

/// (run id, due ms) a `$timer` event names.
/// (run, due ms) of a `$timer` event.
pub fn timer_of(ev: &Event) -> (u64, i64) {
    // Run ids of loyalty timers have the top bit set: read the integer's bits.
    let run = match map_get(ev.attrs(), "run") {
        Some(Value::Int(i)) => *i as u64,
        Some(Value::UInt(u)) => *u,
        _ => 0,
    };
    let at = map_get(ev.attrs(), "at").and_then(Value::as_f64).map_or(0, |x| x as i64);
    (run, at)
}

/// Delete the timer row a `$timer` event came from.
pub fn drop_timer(ev: &Event, timers: &mut FxHashMap<Vec<u8>, bool>) {
    let (run, at) = timer_of(ev);
    timers.insert(timer_key(at, &ev.contact, run), false);
}

/// A `$timer` event: wake the run it names, if it still waits for that instant.
pub fn on_timer<'c>(cat: &'c Catalog, ev: &Event, state: &mut State, cause: &Cause<'_>, out: &mut Out<'_>, records: &mut Vec<RunRecord<'c>>) {
    let (run_id, at) = timer_of(ev);
    // The timer row goes whether or not its run still waits for it.
    drop_timer(ev, out.timers);
    let Some(pos) = state.runs.iter().position(|r| r.id == run_id && r.wake_ms == at) else { return };
    let mut run = state.runs.remove(pos);
    // Every applied version is kept, so a run always finds its program.
    let Some(p) = cat.program(&run.program, run.version) else { return };
    let Some(i) = p.node_index(&run.node) else { return };
    let node = &p.nodes[i];
    let (outcome, reason, next) = match &node.kind {
        NodeKind::Wait { next, .. } => ("woke", with_time("timer due ".to_owned(), at), *next),
        // A deferred message: try the action again.
        NodeKind::Action { .. } => ("retry", with_time("deferred message due ".to_owned(), at), i),
        NodeKind::WaitFor { event, not_occurred, .. } => (
            "not_occurred",
            with_time(text(&["no matching ", event, " by "]), at),
            *not_occurred,
        ),
        _ => return,
    };
    let mut steps = vec![step(&node.id, outcome, reason)];
    let stop = walk(p, run.id, &TriggerRef::of(&run.trigger), next, state, cause, out, &mut steps);
    records.push(RunRecord { program: &p.name, version: p.version, run: run.id, steps });
    if let Some(stop) = stop {
        run.node = stop.node.to_owned();
        run.wake_ms = stop.wake_ms;
        state.runs.push(run);
    }
}

/// The `$timer` event a due timer key comes back as.
pub fn timer_event(wake_ms: i64, contact: &str, run: u64) -> Event {
    Event {
        id: text(&["$timer:", itoa::Buffer::new().format(run), ":", itoa::Buffer::new().format(wake_ms)]),
        contact: contact.to_owned(),
        kind: TIMER_EVENT.to_owned(),
        ts: wake_ms,
        attrs: Value::Map(vec![("run".into(), Value::Int(run as i64)), ("at".into(), Value::Int(wake_ms))]),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked() {
        for ok in ["a@b.co", "first.last@mail.example.com"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@.co", "a@co."] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_in_reasons() {
        assert_eq!((percent(37.2149), percent(5.0), percent(0.004)), ("37.21".into(), "5.00".into(), "0.00".into()));
        assert_eq!((number(20.0), number(2.5)), ("20".to_owned(), "2.5".to_owned()));
    }

    #[test]
    fn sticky_fraction_is_stable_and_spread() {
        assert_eq!(sticky_fraction("c1", "p", "n"), sticky_fraction("c1", "p", "n"));
        let below = (0..1000).filter(|i| sticky_fraction(&format!("c{i}"), "p", "n") < 0.5).count();
        assert!((400..600).contains(&below), "{below}");
    }
}
