//! Outbox effects: a message to send, with everything a template may use.


use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::definitions::ProfileNeeds;
use xxhash_rust::xxh3::xxh3_64;

use crate::event::Event;
use crate::loyalty::member::Member;
use crate::value::Value;
use crate::vecmap::VecMap;

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
pub struct EventCtx<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub ts: i64,
    pub source: &'a Option<String>,
    pub attrs: &'a Value,
}

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

/// The contact's loyalty balances as templates see them: {program: {qualifying,
/// non_qualifying, pending_*, tier, vip, rewards}}, serialized straight from the state.
pub struct LoyaltyView<'a>(pub &'a VecMap<String, Member>);

impl Serialize for LoyaltyView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, b) in self.0.iter() {
            let active = b.rewards.iter().filter(|g| g.redeemed_ms == 0).count();
            m.serialize_entry(
                name,
                &Balances {
                    qualifying: b.qualifying,
                    non_qualifying: b.non_qualifying,
                    pending_qualifying: b.pending[0],
                    pending_non_qualifying: b.pending[1],
                    tier: &b.tier,
                    vip: b.vip,
                    rewards: active,
                },
            )?;
        }
        m.end()
    }
}

#[derive(Serialize)]
pub struct Context<'a> {
    pub contact: &'a str,
    pub event: EventCtx<'a>,
    pub profile: ProfileView<'a>,
    pub loyalty: LoyaltyView<'a>,
}

/// The profile as a message's templates need it: only the fields they read.
pub struct ProfileView<'a> {
    pub profile: &'a VecMap<String, Value>,
    pub needs: &'a ProfileNeeds,
}

impl Serialize for ProfileView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.needs {
            ProfileNeeds::All => self.profile.serialize(s),
            ProfileNeeds::Fields(fields) => {
                let present: Vec<(&String, &Value)> =
                    fields.iter().filter_map(|f| self.profile.get_key_value(f.as_str())).collect();
                let mut m = s.serialize_map(Some(present.len()))?;
                for (k, v) in present {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// An ads audience change: the ads channel syncs these in batches.
#[derive(Serialize)]
pub struct AudienceChange<'a> {
    pub name: &'a str,
    /// "add" | "remove"
    pub op: &'static str,
}

#[derive(Serialize)]
pub struct WebhookCall<'a> {
    pub url: &'a str,
    /// Body template (None: the JSON of the context).
    pub body: Option<&'a str>,
}

/// One outbox row: something to deliver, with everything its templates may use.
#[derive(Serialize)]
pub struct Effect<'a> {
    pub id: &'a str,
    /// "message" | "audience" | "webhook"
    pub kind: &'static str,
    pub contact: &'a str,
    /// A J-7 channel, or "webhook".
    pub channel: &'static str,
    pub to: &'a str,
    pub program: &'a str,
    pub version: u64,
    pub run: u64,
    pub node: &'a str,
    /// The run's trigger event.
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
    EventCtx { id: &ev.id, kind: &ev.kind, ts: ev.ts, source: &ev.source, attrs: &ev.attrs }
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
