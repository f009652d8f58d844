//! Outbox effects: a message to send, with everything a template may use.
//!
//! Effects are written compactly (msgpack arrays, fields in declaration order, no
//! names): the writer structs below are borrowed from the state and the catalog on
//! the hot path. A message's or webhook's templates are not copied into the row:
//! they belong to the definitions version the row names (program, version, node),
//! which is kept for good, and the row carries `[]` in their place
//! (`Templates::Node`). `StoredEffect` reads a stored effect back, in that form or
//! in those stored before (templates inline; or the named map), and
//! `named_effect_in` turns it into the named map readers outside the core (the
//! dispatcher, templates) use, taking the templates from the catalog;
//! `named_effect` does the same without one, for rows that carry their templates.
//!
//! On the hot path effects are written by their `Pack` impls (~1.35 per event:
//! rmp-serde's per-field dispatch cost more than the rest of writing them); the
//! `Serialize` derives say the same bytes, and `EventRows::push_packed` checks that
//! the two agree in debug builds.

use std::collections::BTreeSet;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::definitions::{Action, Catalog, NodeKind, ProfileNeeds};
use xxhash_rust::xxh3::xxh3_64;

use crate::event::Event;
use crate::loyalty::member::Member;
use crate::msgpack::{write_array_len, write_map_len};
use crate::state_writer::{fields, Pack};
use crate::value::{decode_exact, encode, Value};
use crate::vecmap::VecMap;

/// Where a payload's templates are. `Node` (written `[]`, an empty array): the
/// templates of the effect's node, in the definitions version the row names; what
/// the engine writes. `Inline`: in the row itself, as every effect carried them
/// before (kept for tests and tools that write such rows).
pub enum Templates<T> {
    Inline(T),
    Node,
}

impl<T: Serialize> Serialize for Templates<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self {
            Templates::Inline(t) => t.serialize(s),
            Templates::Node => s.serialize_tuple(0)?.end(),
        }
    }
}

impl<T: Pack> Pack for Templates<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        match self {
            Templates::Inline(t) => t.pack(out),
            Templates::Node => write_array_len(out, 0),
        }
    }
}

/// Compact: `[text, subject, html, title]`, nil for what the message lacks: a
/// message's templates inline (`Templates::Inline`).
#[derive(Serialize)]
pub struct Message<'a> {
    pub text: &'a str,
    pub subject: Option<&'a str>,
    pub html: Option<&'a str>,
    pub title: Option<&'a str>,
}

/// The run's trigger event. Compact: `[id, type, ts, source, attrs]`.
#[derive(Serialize)]
pub struct EventCtx<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub ts: i64,
    pub source: &'a Option<String>,
    pub attrs: Attrs<'a>,
}

/// The trigger's attributes, and the msgpack bytes they were decoded from when
/// the trigger is the event being applied and its batch kept them
/// (`Batch::raw_attrs`): those are exactly what writing `value` gives, and are
/// copied instead (an event's attributes are most of the elements of its effects;
/// `EventRows::push_packed` checks the row against serde's in debug builds).
#[derive(Clone, Copy)]
pub struct Attrs<'a> {
    pub value: &'a Value,
    pub raw: Option<&'a [u8]>,
}

impl Serialize for Attrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl Pack for Attrs<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        match self.raw {
            Some(raw) => out.extend_from_slice(raw),
            None => self.value.pack(out),
        }
    }
}

/// A membership as templates see it. Compact: `[qualifying, non_qualifying,
/// pending_qualifying, pending_non_qualifying, tier, vip, rewards]`.
#[derive(Serialize)]
pub struct Balances<'a> {
    pub qualifying: i64,
    pub non_qualifying: i64,
    pub pending_qualifying: i64,
    pub pending_non_qualifying: i64,
    /// The ordered tier ("" below the first threshold).
    pub tier: &'a str,
    pub vip: bool,
    /// Rewards not redeemed yet.
    pub rewards: usize,
}

/// `Balances` read back: named (readers) or compact, the two-field form of
/// effects stored before tiers included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBalances {
    pub qualifying: i64,
    pub non_qualifying: i64,
    #[serde(default)]
    pub pending_qualifying: i64,
    #[serde(default)]
    pub pending_non_qualifying: i64,
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub vip: bool,
    #[serde(default)]
    pub rewards: usize,
}

/// The contact's memberships as templates see them: {program: balances},
/// serialized straight from the state; None (written `{}`, no membership) when no
/// template of the effect's node can read them (`definitions::reads_loyalty`).
pub struct LoyaltyView<'a>(pub Option<&'a VecMap<String, Member>>);

impl<'a> Balances<'a> {
    /// What templates see of membership `b`.
    fn of(b: &'a Member) -> Self {
        Balances {
            qualifying: b.qualifying,
            non_qualifying: b.non_qualifying,
            pending_qualifying: b.pending[0],
            pending_non_qualifying: b.pending[1],
            tier: &b.tier,
            vip: b.vip,
            rewards: b.rewards.iter().filter(|g| g.redeemed_ms == 0).count(),
        }
    }
}

impl Serialize for LoyaltyView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(members) = self.0 else {
            return s.serialize_map(Some(0))?.end();
        };
        let mut m = s.serialize_map(Some(members.len()))?;
        for (name, b) in members.iter() {
            m.serialize_entry(name, &Balances::of(b))?;
        }
        m.end()
    }
}

/// What an effect's templates may read. Compact: `[event, profile, loyalty]`; the
/// contact is the effect's own.
#[derive(Serialize)]
pub struct Context<'a> {
    pub event: EventCtx<'a>,
    pub profile: ProfileView<'a>,
    pub loyalty: LoyaltyView<'a>,
}

/// The profile as a message's templates need it: only the fields they read.
pub struct ProfileView<'a> {
    pub profile: &'a VecMap<String, Value>,
    pub needs: &'a ProfileNeeds,
}

impl<'a> ProfileView<'a> {
    /// The profile's entries among `fields`, in the order of `fields`.
    fn present(&self, fields: &'a BTreeSet<String>) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        let profile = self.profile;
        fields.iter().filter_map(move |f| profile.get_key_value(f.as_str()))
    }
}

impl Serialize for ProfileView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.needs {
            ProfileNeeds::All => self.profile.serialize(s),
            ProfileNeeds::Fields(fields) => {
                let mut m = s.serialize_map(Some(self.present(fields).count()))?;
                for (k, v) in self.present(fields) {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// An ads audience change: the ads channel syncs these in batches.
/// Compact: `[name, op]`.
#[derive(Serialize)]
pub struct AudienceChange<'a> {
    pub name: &'a str,
    /// "add" | "remove"
    pub op: &'static str,
}

/// Compact: `[url, body]`: a webhook's call inline (`Templates::Inline`).
#[derive(Serialize)]
pub struct WebhookCall<'a> {
    pub url: &'a str,
    /// Body template (None: the JSON of the context).
    pub body: Option<&'a str>,
}

/// One outbox row: something to deliver, with everything its templates may use.
///
/// Stored as the msgpack array `[id, contact, channel, to, program, version, run,
/// node, created_ms, message, audience, webhook, context]` (fields in this order;
/// the two payloads an effect does not carry are nil): positional, because field
/// names were about a third of an effect's bytes and most of its encoding. What the
/// row says elsewhere is not stored twice; the named form (`named_effect_in`) puts
/// it back: `kind` (which payload is there), `to` when it is the contact itself
/// (nil here), `event_id` (the trigger's id, `context.event.id`),
/// `context.contact`, and the templates of `message` and `webhook`, written `[]`
/// (`Templates::Node`): those of node `node` of `program` at `version`.
#[derive(Serialize)]
pub struct Effect<'a> {
    pub id: &'a str,
    pub contact: &'a str,
    /// A J-7 channel, or "webhook".
    pub channel: &'static str,
    /// The address; None when it is the contact id (in-app, ads, push without a
    /// token): the common case, and contact ids are often long.
    pub to: Option<&'a str>,
    pub program: &'a str,
    pub version: u64,
    pub run: u64,
    pub node: &'a str,
    pub created_ms: i64,
    /// Exactly one of the three payloads is set: it is the effect's kind.
    pub message: Option<Templates<Message<'a>>>,
    pub audience: Option<AudienceChange<'a>>,
    pub webhook: Option<Templates<WebhookCall<'a>>>,
    pub context: Context<'a>,
}

// The direct writers: each destructures its struct, so a new field fails to
// compile until it is written here too.

impl Pack for Effect<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let Effect { id, contact, channel, to, program, version, run, node, created_ms, message, audience, webhook, context } = self;
        fields!(out; id, contact, channel, to, program, version, run, node, created_ms, message, audience, webhook, context);
    }
}

impl Pack for Message<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let Message { text, subject, html, title } = self;
        fields!(out; text, subject, html, title);
    }
}

impl Pack for AudienceChange<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let AudienceChange { name, op } = self;
        fields!(out; name, op);
    }
}

impl Pack for WebhookCall<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let WebhookCall { url, body } = self;
        fields!(out; url, body);
    }
}

impl Pack for Context<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let Context { event, profile, loyalty } = self;
        fields!(out; event, profile, loyalty);
    }
}

impl Pack for EventCtx<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let EventCtx { id, kind, ts, source, attrs } = self;
        fields!(out; id, kind, ts, source, attrs);
    }
}

impl Pack for ProfileView<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        match self.needs {
            ProfileNeeds::All => self.profile.pack(out),
            ProfileNeeds::Fields(fields) => {
                write_map_len(out, self.present(fields).count());
                for (k, v) in self.present(fields) {
                    k.pack(out);
                    v.pack(out);
                }
            }
        }
    }
}

impl Pack for LoyaltyView<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let Some(members) = self.0 else {
            write_map_len(out, 0);
            return;
        };
        write_map_len(out, members.len());
        for (name, b) in members.iter() {
            name.pack(out);
            Balances::of(b).pack(out);
        }
    }
}

impl Pack for Balances<'_> {
    fn pack(&self, out: &mut Vec<u8>) {
        let Balances { qualifying, non_qualifying, pending_qualifying, pending_non_qualifying, tier, vip, rewards } = self;
        fields!(out; qualifying, non_qualifying, pending_qualifying, pending_non_qualifying, tier, vip, rewards);
    }
}

/// A stored effect read back, in any form: the compact array `Effect` writes
/// (templates by reference or inline), or the named map effects were stored as
/// before (its `kind`, `event_id` and `context.contact` are ignored: the payload,
/// the trigger's id and the contact say the same).
/// Fields in `Effect`'s order. Its `Serialize` (and that of its parts) writes the
/// named form only: absent payloads are skipped, which a positional encoding
/// cannot do; `named_effect` is the way to use it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredEffect {
    pub id: String,
    pub contact: String,
    pub channel: String,
    /// None: the contact.
    pub to: Option<String>,
    pub program: String,
    pub version: u64,
    pub run: u64,
    pub node: String,
    pub created_ms: i64,
    pub message: Option<Carried<StoredMessage>>,
    pub audience: Option<StoredAudience>,
    pub webhook: Option<Carried<StoredWebhook>>,
    pub context: StoredContext,
}

/// A payload's templates as stored: by reference to the effect's node (`[]`), or
/// inline (rows written before templates went by reference).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Carried<T> {
    Node(ByNode),
    Inline(T),
}

/// The `[]` that stands for the templates of the effect's node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByNode;

impl<'de> Deserialize<'de> for ByNode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Empty;
        impl<'de> serde::de::Visitor<'de> for Empty {
            type Value = ByNode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an empty array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ByNode, A::Error> {
                match seq.next_element::<serde::de::IgnoredAny>()? {
                    None => Ok(ByNode),
                    Some(_) => Err(serde::de::Error::invalid_length(1, &self)),
                }
            }
        }
        d.deserialize_seq(Empty)
    }
}

impl<T> Carried<T> {
    /// The templates, when the row carries them.
    pub fn inline(&self) -> Option<&T> {
        match self {
            Carried::Inline(t) => Some(t),
            Carried::Node(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAudience {
    pub name: String,
    pub op: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredWebhook {
    pub url: String,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEventCtx {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: i64,
    #[serde(default)]
    pub source: Option<String>,
    pub attrs: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredContext {
    pub event: StoredEventCtx,
    pub profile: Value,
    pub loyalty: VecMap<String, StoredBalances>,
}

/// The named form of an effect, in the key order effects were always stored in.
#[derive(Serialize)]
struct NamedEffect<'a> {
    id: &'a str,
    kind: &'a str,
    contact: &'a str,
    channel: &'a str,
    to: &'a str,
    program: &'a str,
    version: u64,
    run: u64,
    node: &'a str,
    event_id: &'a str,
    created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a StoredMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<&'a StoredAudience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a StoredWebhook>,
    context: NamedContext<'a>,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    contact: &'a str,
    event: &'a StoredEventCtx,
    profile: &'a Value,
    loyalty: &'a VecMap<String, StoredBalances>,
}

impl StoredEffect {
    /// Read a stored effect (any form); an error when `raw` is not one.
    pub fn decode(raw: &[u8]) -> Result<StoredEffect, String> {
        decode_exact(raw)
    }

    /// Does the row carry its templates by reference (`[]`)?
    pub fn by_node(&self) -> bool {
        matches!(self.message, Some(Carried::Node(_))) || matches!(self.webhook, Some(Carried::Node(_)))
    }

    /// Put in the templates the row carries by reference: those of its node, in
    /// the version of its program `cat` keeps (every applied version is kept). An
    /// error when `cat` does not have that node, or it is not an action of the
    /// effect's kind.
    pub fn resolve(&mut self, cat: &Catalog) -> Result<(), String> {
        if !self.by_node() {
            return Ok(());
        }
        let (program, version, node) = (&self.program, self.version, &self.node);
        let p = cat
            .program(program, version)
            .ok_or_else(|| format!("effect {}: program '{program}' version {version} is not in the definitions", self.id))?;
        let action = match p.node_index(node).map(|i| &p.nodes[i].kind) {
            Some(NodeKind::Action { action, .. }) => action,
            _ => return Err(format!("effect {}: program '{program}' version {version} has no action node '{node}'", self.id)),
        };
        match (action, &mut self.message, &mut self.webhook) {
            (Action::Send(s), Some(m @ Carried::Node(_)), _) => {
                *m = Carried::Inline(StoredMessage { text: s.text.clone(), subject: s.subject.clone(), html: s.html.clone(), title: s.title.clone() });
            }
            (Action::Webhook { url, body, .. }, _, Some(w @ Carried::Node(_))) => {
                *w = Carried::Inline(StoredWebhook { url: url.clone(), body: body.clone() });
            }
            _ => return Err(format!("effect {}: node '{node}' of program '{program}' version {version} is not a {} action", self.id, self.kind()?)),
        }
        Ok(())
    }

    /// "message" | "audience" | "webhook": which payload the effect carries.
    pub fn kind(&self) -> Result<&'static str, String> {
        match (&self.message, &self.audience, &self.webhook) {
            (Some(_), None, None) => Ok("message"),
            (None, Some(_), None) => Ok("audience"),
            (None, None, Some(_)) => Ok("webhook"),
            _ => Err(format!("effect {} does not carry exactly one payload", self.id)),
        }
    }

    /// The effect as the msgpack named map readers use: `{"id", "kind", "contact",
    /// "channel", "to", "program", "version", "run", "node", "event_id",
    /// "created_ms", "message"?, "audience"?, "webhook"?, "context": {"contact",
    /// "event": {"id", "type", "ts", "source", "attrs"}, "profile", "loyalty":
    /// {program: {"qualifying", "non_qualifying", "pending_qualifying",
    /// "pending_non_qualifying", "tier", "vip", "rewards"}}}}`; an error when it does not
    /// carry exactly one payload, or carries its templates by reference (`resolve`
    /// first).
    pub fn encode_named(&self) -> Result<Vec<u8>, String> {
        if self.by_node() {
            return Err(format!(
                "effect {} carries the templates of node '{}' of program '{}' version {} by reference: read it with the definitions (Catalog.named_effect)",
                self.id, self.node, self.program, self.version
            ));
        }
        let named = NamedEffect {
            id: &self.id,
            kind: self.kind()?,
            contact: &self.contact,
            channel: &self.channel,
            to: self.to.as_deref().unwrap_or(&self.contact),
            program: &self.program,
            version: self.version,
            run: self.run,
            node: &self.node,
            event_id: &self.context.event.id,
            created_ms: self.created_ms,
            message: self.message.as_ref().and_then(Carried::inline),
            audience: self.audience.as_ref(),
            webhook: self.webhook.as_ref().and_then(Carried::inline),
            context: NamedContext {
                contact: &self.contact,
                event: &self.context.event,
                profile: &self.context.profile,
                loyalty: &self.context.loyalty,
            },
        };
        Ok(encode(&named))
    }
}

/// A stored effect that carries its templates (rows written before templates went
/// by reference) as the named map readers use (`StoredEffect::encode_named`); an
/// error for a row that carries them by reference: `named_effect_in` reads those.
pub fn named_effect(raw: &[u8]) -> Result<Vec<u8>, String> {
    StoredEffect::decode(raw)?.encode_named()
}

/// A stored effect (any form) as the named map readers use, the templates it
/// carries by reference taken from `cat` (`StoredEffect::resolve`): what delivery
/// reads. Rows that carry their templates read as `named_effect` reads them.
pub fn named_effect_in(cat: &Catalog, raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut e = StoredEffect::decode(raw)?;
    e.resolve(cat)?;
    e.encode_named()
}

/// Stable effect hash: xxh3_64(contact \0 event_id \0 program \0 version \0 node).
pub fn effect_hash(contact: &str, event_id: &str, program: &str, version: u64, node: &str) -> u64 {
    let mut digits = itoa::Buffer::new();
    let v = digits.format(version);
    let mut buf = Vec::with_capacity(contact.len() + event_id.len() + program.len() + v.len() + node.len() + 4);
    for (i, part) in [contact, event_id, program, v, node].iter().enumerate() {
        if i > 0 {
            buf.push(0);
        }
        buf.extend_from_slice(part.as_bytes());
    }
    xxh3_64(&buf)
}

pub fn event_ctx(ev: &Event) -> EventCtx<'_> {
    EventCtx { id: &ev.id, kind: &ev.kind, ts: ev.ts, source: &ev.source, attrs: Attrs { value: &ev.attrs, raw: None } }
}

/// The 16 lowercase hex digits of `hash`: the effect id.
pub fn hex_id(hash: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((hash >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::encode_compact;

    /// Effects as they were stored before rows were compact: named maps, with the
    /// kind, the trigger's id and the contact twice.
    mod old {
        use super::*;

        #[derive(Serialize)]
        pub struct Message<'a> {
            pub text: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub subject: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub html: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub title: Option<&'a str>,
        }

        #[derive(Serialize)]
        pub struct Event<'a> {
            pub id: &'a str,
            #[serde(rename = "type")]
            pub kind: &'a str,
            pub ts: i64,
            pub source: &'a Option<String>,
            pub attrs: &'a Value,
        }

        #[derive(Serialize)]
        pub struct Context<'a> {
            pub contact: &'a str,
            pub event: Event<'a>,
            pub profile: ProfileView<'a>,
            pub loyalty: LoyaltyView<'a>,
        }

        #[derive(Serialize)]
        pub struct Effect<'a> {
            pub id: &'a str,
            pub kind: &'static str,
            pub contact: &'a str,
            pub channel: &'static str,
            pub to: &'a str,
            pub program: &'a str,
            pub version: u64,
            pub run: u64,
            pub node: &'a str,
            pub event_id: &'a str,
            pub created_ms: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub message: Option<Message<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub audience: Option<AudienceChange<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub webhook: Option<WebhookCall<'a>>,
            pub context: Context<'a>,
        }
    }

    /// What an effect is made of, owned by the test.
    struct World {
        profile: VecMap<String, Value>,
        loyalty: VecMap<String, Member>,
        needs: ProfileNeeds,
        attrs: Value,
        source: Option<String>,
    }

    fn world() -> World {
        let mut profile = VecMap::new();
        profile.insert("email".to_owned(), Value::Str("a@b.co".into()));
        profile.insert("name".to_owned(), Value::Str("Ann".into()));
        let mut loyalty = VecMap::new();
        let gold = Member { joined_ms: 1, qualifying: 20, non_qualifying: -3, tier: "gold".into(), ..Member::default() };
        loyalty.insert("club".to_owned(), gold);
        let needs = ProfileNeeds::Fields(["name".to_owned(), "missing".to_owned()].into_iter().collect());
        let attrs = Value::Map(vec![("total".into(), Value::F64(12.5)), ("big".into(), Value::UInt(u64::MAX))]);
        World { profile, loyalty, needs, attrs, source: Some("pos".into()) }
    }

    enum Kind {
        Message,
        Audience,
        Webhook,
    }

    /// The same effect in the compact form written now and the named form written
    /// before.
    fn both(w: &World, kind: Kind, to: &str) -> (Vec<u8>, Vec<u8>) {
        let event = || EventCtx { id: "e0", kind: "purchase", ts: 5, source: &w.source, attrs: Attrs { value: &w.attrs, raw: None } };
        let (message, audience, webhook) = match kind {
            Kind::Message => (Some(Message { text: "Hi {{ profile.name }}", subject: Some("Hello"), html: None, title: None }), None, None),
            Kind::Audience => (None, Some(AudienceChange { name: "vips", op: "add" }), None),
            Kind::Webhook => (None, None, Some(WebhookCall { url: "https://x.test/h", body: None })),
        };
        let old_message = message.as_ref().map(|m| old::Message { text: m.text, subject: m.subject, html: m.html, title: m.title });
        let kind_name = ["message", "audience", "webhook"][[message.is_some(), audience.is_some(), webhook.is_some()].iter().position(|x| *x).unwrap()];
        let profile = || ProfileView { profile: &w.profile, needs: &w.needs };
        let old = encode(&old::Effect {
            id: "00000000000000ff",
            kind: kind_name,
            contact: "c1",
            channel: "email",
            to,
            program: "p",
            version: 3,
            run: 9,
            node: "mail",
            event_id: "e0",
            created_ms: 1_764_000_000_000,
            message: old_message,
            audience: audience.as_ref().map(|a| AudienceChange { name: a.name, op: a.op }),
            webhook: webhook.as_ref().map(|h| WebhookCall { url: h.url, body: h.body }),
            context: old::Context {
                contact: "c1",
                event: old::Event { id: "e0", kind: "purchase", ts: 5, source: &w.source, attrs: &w.attrs },
                profile: profile(),
                loyalty: LoyaltyView(Some(&w.loyalty)),
            },
        });
        let compact = encode_compact(&Effect {
            id: "00000000000000ff",
            contact: "c1",
            channel: "email",
            to: (to != "c1").then_some(to),
            program: "p",
            version: 3,
            run: 9,
            node: "mail",
            created_ms: 1_764_000_000_000,
            message: message.map(Templates::Inline),
            audience,
            webhook: webhook.map(Templates::Inline),
            context: Context { event: event(), profile: profile(), loyalty: LoyaltyView(Some(&w.loyalty)) },
        });
        (compact, old)
    }

    #[test]
    fn effects_are_positional_and_read_back_as_the_named_map() {
        let w = world();
        for (kind, to) in [(Kind::Message, "a@b.co"), (Kind::Message, "c1"), (Kind::Audience, "c1"), (Kind::Webhook, "https://x.test/h")] {
            let (compact, old) = both(&w, kind, to);
            let Value::Array(fields) = crate::value::decode_exact::<Value>(&compact).unwrap() else { panic!("not an array") };
            assert_eq!(fields.len(), 13);
            assert_eq!(fields[3] == Value::Nil, to == "c1", "the address is left out when it is the contact");
            // Readers see byte for byte the effect that used to be stored.
            assert_eq!(named_effect(&compact).unwrap(), old);
            assert!(compact.len() * 10 < old.len() * 7, "{} vs {}", compact.len(), old.len());
        }
    }

    #[test]
    fn old_named_effects_still_read() {
        let w = world();
        for (kind, to) in [(Kind::Message, "a@b.co"), (Kind::Audience, "c1"), (Kind::Webhook, "https://x.test/h")] {
            let (compact, old) = both(&w, kind, to);
            assert_eq!(named_effect(&old).unwrap(), old);
            let (from_old, from_compact) = (StoredEffect::decode(&old).unwrap(), StoredEffect::decode(&compact).unwrap());
            // The same effect, but for the address, spelled out in the old form.
            assert_eq!(StoredEffect { to: None, ..from_old.clone() }, StoredEffect { to: None, ..from_compact });
            assert_eq!(from_old.to.as_deref(), Some(to));
        }
        let e = StoredEffect::decode(&both(&w, Kind::Message, "a@b.co").1).unwrap();
        assert_eq!((e.kind(), e.to.as_deref()), (Ok("message"), Some("a@b.co")));
        let club = StoredBalances { qualifying: 20, non_qualifying: -3, tier: "gold".into(), ..StoredBalances::default() };
        assert_eq!(e.context.loyalty.get("club"), Some(&club));
    }

    #[test]
    fn what_is_not_an_effect_is_an_error() {
        let w = world();
        let (compact, _) = both(&w, Kind::Audience, "c1");
        let mut e = StoredEffect::decode(&compact).unwrap();
        e.audience = None;
        assert!(e.encode_named().unwrap_err().contains("exactly one payload"));
        assert!(named_effect(b"\x90").is_err());
        assert!(named_effect(&[compact.as_slice(), b"\xc0"].concat()).is_err(), "trailing bytes");
    }

    fn map_of<V>(entries: impl IntoIterator<Item = (String, V)>) -> VecMap<String, V> {
        let mut m = VecMap::new();
        for (k, v) in entries {
            m.insert(k, v);
        }
        m
    }

    /// Every part of an effect in each form it takes, written directly and by
    /// serde: message fields present and absent, each payload, templates inline or
    /// by reference, an address or not, attrs of every msgpack kind (written or
    /// copied from the bytes they were read from), the whole
    /// profile (30 fields) or some of it, no, one or 18 memberships (with rewards)
    /// or none written (not read), strings of every length form,
    /// integers at every size boundary.
    #[test]
    fn the_direct_writer_writes_what_serde_writes() {
        use crate::state_writer::tests::{attrs, member, strings, written, INTS, UINTS};
        let strings = strings();
        let s = |i: usize| strings[i % strings.len()].as_str();
        let ints = INTS.iter().enumerate().map(|(i, n)| (format!("n{i:02}"), Value::Int(*n)));
        let mut profile = map_of(strings.iter().enumerate().map(|(i, x)| (format!("f{i}"), Value::Str(x.as_str().into()))).chain(ints));
        profile.insert("attrs".into(), attrs());
        let needs = [ProfileNeeds::All, ProfileNeeds::Fields(["f3", "attrs", "missing"].map(String::from).into()), ProfileNeeds::none()];
        let mut many = map_of((0..16).map(|i| (format!("p{i:02}"), member())));
        many.insert("club".into(), member());
        many.insert("empty".into(), Member::default());
        let loyalty = [VecMap::new(), map_of([("club".to_owned(), member())]), many];
        let all_attrs = [attrs(), Value::Map(vec![]), Value::Nil];
        // The bytes a batch keeps for them (`Batch::raw_attrs`): what serde writes.
        let raw_attrs: Vec<Vec<u8>> = all_attrs.iter().map(encode_compact).collect();
        let sources = [None, Some("pos".to_owned()), Some(strings[5].clone())];
        let payload = |i: usize| match i {
            0..=7 => {
                let message = Message { text: s(i), subject: (i & 1 != 0).then(|| s(i + 1)), html: (i & 2 != 0).then(|| s(i + 3)), title: (i & 4 != 0).then(|| s(i + 5)) };
                (Some(Templates::Inline(message)), None, None)
            }
            8 => (None, Some(AudienceChange { name: s(5), op: "add" }), None),
            9 => (None, Some(AudienceChange { name: "vips", op: "remove" }), None),
            10 => (None, None, Some(Templates::Inline(WebhookCall { url: s(4), body: Some(s(6)) }))),
            11 => (None, None, Some(Templates::Inline(WebhookCall { url: "https://x.test/h", body: None }))),
            12 => (Some(Templates::Node), None, None),
            _ => (None, None, Some(Templates::Node)),
        };
        for i in 0..42 {
            let (message, audience, webhook) = payload(i % 14);
            let attrs = Attrs { value: &all_attrs[i / 14], raw: (i % 4 < 2).then(|| raw_attrs[i / 14].as_slice()) };
            let event = EventCtx { id: s(i), kind: s(i + 2), ts: INTS[i % INTS.len()], source: &sources[i % 3], attrs };
            let e = Effect {
                id: "00000000000000ff",
                contact: s(i + 1),
                channel: "email",
                to: (i % 2 == 1).then(|| s(i + 4)),
                program: s(i + 3),
                version: UINTS[i % UINTS.len()],
                run: UINTS[(i + 5) % UINTS.len()],
                node: s(i + 6),
                created_ms: INTS[(i + 7) % INTS.len()],
                message,
                audience,
                webhook,
                context: Context { event, profile: ProfileView { profile: &profile, needs: &needs[i % 3] }, loyalty: LoyaltyView((i % 5 != 4).then_some(&loyalty[i / 14])) },
            };
            assert!(written(&e) == encode_compact(&e), "effect {i}");
        }
    }

    #[test]
    fn hex_id_matches_format() {
        for h in [0u64, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(std::str::from_utf8(&hex_id(h)).unwrap(), format!("{h:016x}"));
        }
    }

    #[test]
    fn effect_hash_is_stable() {
        // Pinned: receivers drop repeats by this id, so it must never change.
        assert_eq!(effect_hash("c1", "e1", "p", 2, "n"), xxh3_64(b"c1\0e1\0p\0\x32\0n"));
    }
}
