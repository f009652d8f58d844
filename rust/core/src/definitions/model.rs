//! The definitions document as written by the user (serde, unknown keys rejected).
//! Enumerated words (types, ops, channels, ...) stay strings here and are checked in
//! `compile`, so that every problem is reported, not just the first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    pub segments: Option<Vec<SegmentDoc>>,
    #[serde(default)]
    pub programs: Option<Vec<ProgramDoc>>,
    #[serde(default)]
    pub loyalty: Option<Vec<LoyaltyDoc>>,
    #[serde(default)]
    pub arbitration: Option<super::arbitration::ArbitrationDoc>,
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
    #[serde(default)]
    pub entry: Option<EntryDoc>,
    #[serde(default)]
    pub goal: Option<GoalDoc>,
    /// Higher first when programs compete for a capped channel.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Transactional programs send email without marketing opt-in (J-9).
    #[serde(default)]
    pub transactional: Option<bool>,
    /// IANA name, e.g. Europe/Rome; waits "in program time" use it (default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// A message held by a cap or quiet hours: "defer" (default) or "drop".
    #[serde(default)]
    pub on_limit: Option<String>,
    pub nodes: Vec<NodeDoc>,
}

/// Entry rules: who may enter, how often.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDoc {
    /// May a contact enter again after a run ended? (default true)
    #[serde(default)]
    pub reentry: Option<bool>,
    /// May a contact have more than one active run at once? (default false)
    #[serde(default)]
    pub concurrent: Option<bool>,
    /// Minimum time between two entries, e.g. "7d".
    #[serde(default)]
    pub cooloff: Option<String>,
}

/// Exit rule: an event that takes the contact out at once, counted as a conversion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoalDoc {
    pub event: String,
    #[serde(default)]
    pub filter: Option<CondDoc>,
    /// Trigger attribute the goal event must match, e.g. cart_id.
    #[serde(default)]
    pub same: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDoc {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub when: CondDoc,
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
    /// Splitter: ordered branches; random split: weighted branches.
    #[serde(default)]
    pub branches: Option<Vec<BranchDoc>>,
    /// Splitter: where contacts matching no branch go.
    #[serde(rename = "else", default)]
    pub otherwise: Option<String>,
    /// Wait: a duration ("3d") ...
    #[serde(default)]
    pub duration: Option<String>,
    /// ... or a moment.
    #[serde(default)]
    pub until: Option<UntilDoc>,
    /// Wait-and-check: the awaited event, its filter, the trigger attribute it must
    /// share, the timeout and the two exits.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub filter: Option<CondDoc>,
    #[serde(default)]
    pub same: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub occurred: Option<String>,
    #[serde(default)]
    pub not_occurred: Option<String>,
    /// Random split: share of contacts (percent) held out as a control group.
    #[serde(default)]
    pub control: Option<f64>,
    /// Action: add to / remove from an ads audience.
    #[serde(default)]
    pub audience: Option<AudienceDoc>,
    /// Action: change profile fields.
    #[serde(default)]
    pub update_profile: Option<ProfileUpdateDoc>,
    /// Action: call a webhook.
    #[serde(default)]
    pub webhook: Option<WebhookDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchDoc {
    #[serde(default)]
    pub when: Option<CondDoc>,
    #[serde(default)]
    pub weight: Option<f64>,
    pub next: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UntilDoc {
    /// An absolute moment: "2026-12-01T09:00:00Z" (or a local one, read in `time_zone`).
    #[serde(default)]
    pub date: Option<String>,
    /// The next such weekday (monday .. sunday) ...
    #[serde(default)]
    pub weekday: Option<String>,
    /// ... at this time of day "HH:MM" (alone: the next such time).
    #[serde(default)]
    pub time: Option<String>,
    /// "contact" (profile field time_zone, else the program's) or "program" (default).
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceDoc {
    #[serde(default)]
    pub add: Option<String>,
    #[serde(default)]
    pub remove: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdateDoc {
    #[serde(default)]
    pub set: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub unset: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDoc {
    pub url: String,
    /// A template rendered as the request body (JSON of the context when absent).
    #[serde(default)]
    pub body: Option<String>,
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

/// One CONDITION: exactly one of the shapes all / any / not / attr leaf / profile
/// leaf / event (history) leaf / segment leaf.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CondDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<CondDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<CondDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<CondDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// `Some(Value::Nil)` when written as `value: null`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// History leaf: events of this type in the contact's history ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// ... matching this condition on their own attributes ...
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Box<CondDoc>>,
    /// ... sharing this attribute's value with the trigger event ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same: Option<String>,
    /// ... in the last duration ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// ... counted against {op, value} (default: at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountDoc>,
    /// Segment leaf: the contact is in this segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CountDoc {
    pub op: String,
    pub value: Value,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A loyalty program (L-1..L-9): members, tiers, rewards and rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoyaltyDoc {
    pub name: String,
    /// One currency per program: events carrying another `currency` earn nothing.
    #[serde(default)]
    pub currency: Option<String>,
    /// How contacts become members: auto (their first event a rule watches),
    /// subscribe (a `loyalty_subscribe` event), profile (a `$profile` event that sets
    /// `member_field` to true).
    #[serde(default)]
    pub join: Option<String>,
    #[serde(default)]
    pub member_field: Option<String>,
    /// IANA name for calendars, restriction periods, birthdays (default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Ordered by qualifying points.
    #[serde(default)]
    pub tiers: Option<Vec<TierDoc>>,
    /// Name of the VIP tier, outside the order (given by a rule's `vip` effect or a
    /// `loyalty_subscribe` event with `vip: true`).
    #[serde(default)]
    pub vip: Option<String>,
    /// Points earned on a purchase stay pending this long (the return window).
    #[serde(default)]
    pub pending: Option<String>,
    /// Points expire this many months after they were earned, oldest first.
    #[serde(default)]
    pub expiry: Option<ExpiryDoc>,
    /// How long a purchase can be returned against the points it earned (default 90d).
    #[serde(default)]
    pub returns_within: Option<String>,
    #[serde(default)]
    pub rewards: Option<Vec<RewardDoc>>,
    pub rules: Vec<RuleDoc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDoc {
    pub name: String,
    /// Qualifying points from which a member is in this tier.
    pub threshold: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryDoc {
    pub months: u32,
    /// Only this kind expires (default: both).
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardDoc {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A granted reward can be redeemed for this long (default: no expiry).
    #[serde(default)]
    pub expires: Option<String>,
}

/// A rule: settings, conditions (all of them must hold) and effects. A `template`
/// fills the conditions and effects of a common case from its parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub name: String,
    #[serde(default)]
    pub template: Option<String>,
    /// The event type the rule watches; `$join` for the moment a member joins.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub tiers: Option<Vec<String>>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub limit: Option<LimitDoc>,
    #[serde(default)]
    pub when: Option<CondDoc>,
    #[serde(default)]
    pub purchase: Option<PurchaseDoc>,
    #[serde(default)]
    pub count: Option<RuleCountDoc>,
    #[serde(default)]
    pub birthday: Option<BirthdayDoc>,
    #[serde(default)]
    pub subscribed: Option<SubscribedDoc>,
    #[serde(default)]
    pub tier_change: Option<TierChangeDoc>,
    #[serde(default)]
    pub inactive: Option<InactiveDoc>,
    /// The member's available balance of a kind, compared: `{kind, op, value}`.
    #[serde(default)]
    pub balance: Option<BalanceDoc>,
    #[serde(default)]
    pub effects: Option<Vec<EffectDoc>>,
    // Template parameters.
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub reward: Option<String>,
    #[serde(default)]
    pub points: Option<i64>,
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub lines: Option<LineFilterDoc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitDoc {
    pub times: u32,
    /// day | week | month | year | ever
    pub per: String,
}

/// Purchase conditions (L-3..L-5) on the receipt (`total_amount`, `store_code`) and
/// its `lines` (`total_line_amount`, `quantity`, `product`, `category`, `brand`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseDoc {
    #[serde(default)]
    pub stores: Option<Vec<String>>,
    #[serde(default)]
    pub lines: Option<LineFilterDoc>,
    #[serde(default)]
    pub spent: Option<CountDoc>,
    #[serde(default)]
    pub total_spent: Option<CountDoc>,
    #[serde(default)]
    pub every_spent: Option<f64>,
    #[serde(default)]
    pub every_spent_per_transaction: Option<f64>,
    #[serde(default)]
    pub spent_from: Option<f64>,
    #[serde(default)]
    pub spent_up_to: Option<f64>,
    #[serde(default)]
    pub quantity: Option<CountDoc>,
    #[serde(default)]
    pub total_quantity: Option<CountDoc>,
    #[serde(default)]
    pub every_quantity: Option<f64>,
    #[serde(default)]
    pub every_quantity_per_transaction: Option<f64>,
    #[serde(default)]
    pub transactions: Option<CountDoc>,
    #[serde(default)]
    pub every_transactions: Option<u32>,
    /// Cumulative measures count only the purchases of this last period.
    #[serde(default)]
    pub within: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineFilterDoc {
    #[serde(default)]
    pub product: Option<Vec<String>>,
    #[serde(default)]
    pub category: Option<Vec<String>>,
    #[serde(default)]
    pub brand: Option<Vec<String>>,
}

/// "Count N interactions" (I-6): the rule fires on every `times`-th matching event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCountDoc {
    pub times: u32,
    #[serde(default)]
    pub within: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BirthdayDoc {
    /// day | week | month: the member's birthday falls in the current one.
    #[serde(default)]
    pub on: Option<String>,
    /// From the birthday to this many days after it.
    #[serde(default)]
    pub within_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribedDoc {
    #[serde(default)]
    pub on_day: Option<bool>,
    #[serde(default)]
    pub within_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierChangeDoc {
    /// upgrade | downgrade | any (default any)
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Promoted to the VIP tier.
    #[serde(default)]
    pub vip: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceDoc {
    pub kind: String,
    pub op: String,
    pub value: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InactiveDoc {
    /// The activity whose absence counts (default purchase).
    #[serde(default)]
    pub event: Option<String>,
    #[serde(rename = "for")]
    pub for_: String,
}

/// One effect: exactly one key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectDoc {
    #[serde(default)]
    pub credit: Option<PointsDoc>,
    #[serde(default)]
    pub debit: Option<PointsDoc>,
    #[serde(default)]
    pub reset: Option<KindDoc>,
    #[serde(default)]
    pub multiply: Option<MultiplyDoc>,
    #[serde(default)]
    pub reward: Option<String>,
    #[serde(default)]
    pub vip: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsDoc {
    pub points: i64,
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindDoc {
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiplyDoc {
    pub factor: f64,
    pub kind: String,
    /// Only the points of these rules (default: every other rule of the program).
    #[serde(default)]
    pub rules: Option<Vec<String>>,
}
