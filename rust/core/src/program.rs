//! Walking a program from its entry node to End within one event.

use crate::definitions::{Catalog, Channel, Ctx, NodeKind, Program, Send};
use crate::effect::{effect_hash, event_ctx, hex_id, Context, Effect, LoyaltyView, Message, ProfileView};
use crate::event::Event;
use crate::rows::EventRows;
use crate::state::{RunRecord, State, Step};
use crate::value::Value;

/// Where a message on `channel` goes for this contact, or why it cannot be sent.
pub fn address<'a>(channel: Channel, contact: &'a str, state: &'a State) -> Result<&'a str, String> {
    let field = |name: &str| match state.profile.get(name) {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    match channel {
        Channel::Email => field("email").ok_or_else(|| "no 'email' in profile".to_owned()),
        Channel::Sms => field("phone").ok_or_else(|| "no 'phone' in profile".to_owned()),
        Channel::Push | Channel::WebPush => Ok(field("push_token").unwrap_or(contact)),
        _ => Ok(contact),
    }
}

/// Does the program's trigger filter pass for this event?
pub fn triggers(p: &Program, ev: &Event, state: &State) -> bool {
    match &p.filter {
        None => true,
        Some(f) => f.eval(&Ctx { attrs: ev.attrs(), profile: &state.profile, ts: ev.ts }, None),
    }
}

#[allow(clippy::too_many_arguments)]
fn send_effect(cat: &Catalog, p: &Program, node: &str, send: &Send, to: &str, ev: &Event, state: &State, now_ms: i64, outbox: &mut EventRows<'_>) {
    let hash = effect_hash(&ev.contact, &ev.id, &p.name, cat.version, node);
    let hex = hex_id(hash);
    let effect = Effect {
        id: std::str::from_utf8(&hex).expect("hex digits are ascii"),
        contact: &ev.contact,
        channel: send.channel.name(),
        to,
        program: &p.name,
        version: cat.version,
        node,
        event_id: &ev.id,
        created_ms: now_ms,
        message: Message {
            text: &send.text,
            subject: send.subject.as_deref(),
            html: send.html.as_deref(),
            title: send.title.as_deref(),
        },
        context: Context {
            contact: &ev.contact,
            event: event_ctx(ev),
            profile: ProfileView { profile: &state.profile, needs: &send.profile_needs },
            loyalty: LoyaltyView(&state.loyalty),
        },
    };
    outbox.push(&effect);
}

/// Run `p` for `ev` from the entry node to End; effects are appended to `outbox`.
pub fn run<'c>(cat: &'c Catalog, p: &'c Program, ev: &Event, state: &State, now_ms: i64, outbox: &mut EventRows<'_>) -> RunRecord<'c> {
    let ctx = Ctx { attrs: ev.attrs(), profile: &state.profile, ts: ev.ts };
    let mut steps = Vec::with_capacity(p.nodes.len());
    let mut at = 0usize;
    // The graph is acyclic (checked at compile), so a walk visits each node at most once.
    for _ in 0..p.nodes.len() {
        let node = &p.nodes[at];
        match &node.kind {
            NodeKind::Decision { when, yes, no } => {
                let mut reason = String::with_capacity(128);
                let r = when.eval(&ctx, Some(&mut reason));
                let outcome = if r { "yes" } else { "no" };
                reason.push_str(" => ");
                reason.push_str(outcome);
                steps.push(Step { node: &node.id, outcome, reason });
                at = if r { *yes } else { *no };
            }
            NodeKind::Action { send, next } => {
                let (outcome, reason) = match address(send.channel, &ev.contact, state) {
                    Ok(to) => {
                        send_effect(cat, p, &node.id, send, to, ev, state, now_ms, outbox);
                        let mut why = String::with_capacity(16 + to.len());
                        why.push_str(send.channel.name());
                        why.push_str(" to '");
                        why.push_str(to);
                        why.push('\'');
                        ("sent", why)
                    }
                    Err(why) => ("skipped", why),
                };
                steps.push(Step { node: &node.id, outcome, reason });
                at = *next;
            }
            NodeKind::End => {
                steps.push(Step { node: &node.id, outcome: "end", reason: String::new() });
                break;
            }
        }
    }
    RunRecord { program: &p.name, version: cat.version, steps }
}
