//! The definitions document as written by the user (serde, unknown keys rejected).
//! Enumerated words (types, ops, channels, ...) stay strings here and are checked in
//! `compile`, so that every problem is reported, not just the first.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::value::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Doc {
    #[serde(default)]
    pub strict_types: Option<bool>,
    #[serde(default)]
    pub profile_fields: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub interaction_types: Option<Vec<InteractionTypeDoc>>,
    #[serde(default)]
    pub programs: Option<Vec<ProgramDoc>>,
    #[serde(default)]
    pub loyalty: Option<Vec<LoyaltyDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionTypeDoc {
    pub name: String,
    pub channel: String,
    pub source: String,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramDoc {
    pub name: String,
    pub trigger: TriggerDoc,
    pub nodes: Vec<NodeDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDoc {
    pub event: String,
    #[serde(default)]
    pub filter: Option<CondDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDoc {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub when: Option<CondDoc>,
    #[serde(default)]
    pub yes: Option<String>,
    #[serde(default)]
    pub no: Option<String>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub send: Option<SendDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendDoc {
    pub channel: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

/// One CONDITION: exactly one of the shapes all / any / not / attr leaf / profile leaf.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CondDoc {
    #[serde(default)]
    pub all: Option<Vec<CondDoc>>,
    #[serde(default)]
    pub any: Option<Vec<CondDoc>>,
    #[serde(default)]
    pub not: Option<Box<CondDoc>>,
    #[serde(default)]
    pub attr: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
    /// `Some(Value::Nil)` when written as `value: null`.
    #[serde(default, deserialize_with = "present")]
    pub value: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoyaltyDoc {
    pub name: String,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub join: Option<String>,
    pub rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub name: String,
    pub event: String,
    #[serde(default)]
    pub when: Option<CondDoc>,
    pub effects: Vec<EffectDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectDoc {
    pub credit: CreditDoc,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditDoc {
    pub points: i64,
    pub kind: String,
}
