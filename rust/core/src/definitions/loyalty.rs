//! Loyalty programs as compiled (L-1..L-9): tiers, rewards, and rules with their
//! settings, conditions and effects. Templates expand here into ordinary rules.

use rustc_hash::FxHashMap;

use super::compile::{check_name, cond, event_ref, Cx, Errs};
use super::condition::{compile_count, Cond, Op};
use super::model::{EffectDoc, LineFilterDoc, LoyaltyDoc, PointsDoc, PurchaseDoc, RuleDoc};
use super::when::Zone;
use crate::dates::{parse_duration, MS_PER_DAY};

/// Qualifying points count towards tiers; non-qualifying points are spendable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    Qualifying,
    NonQualifying,
}

impl PointKind {
    pub const BOTH: [PointKind; 2] = [PointKind::Qualifying, PointKind::NonQualifying];

    pub fn name(self) -> &'static str {
        match self {
            PointKind::Qualifying => "qualifying",
            PointKind::NonQualifying => "non_qualifying",
        }
    }

    pub fn parse(s: &str) -> Option<PointKind> {
        match s {
            "qualifying" => Some(PointKind::Qualifying),
            "non_qualifying" => Some(PointKind::NonQualifying),
            _ => None,
        }
    }

    /// Index in per-kind arrays.
    pub fn idx(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// The first event one of the program's rules acts on.
    Auto,
    /// A `loyalty_subscribe` event.
    Subscribe,
    /// A `$profile` event setting this profile field to true.
    Profile(String),
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub threshold: i64,
}

/// A restriction period (L-2), calendar-aligned in the program's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
    Ever,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
            Period::Ever => "ever",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub times: u32,
    pub per: Period,
}

/// What makes a rule look: an event of a type, or a moment of the member's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occasion {
    Event(String),
    /// The member joins the program.
    Join,
    /// The member's tier changes.
    TierChange,
    /// The member's birthday comes (a durable timer, once a year).
    Birthday,
    /// The member has been inactive for the rule's period (a durable timer).
    Inactive,
}

/// Line filters: a line counts when each given list holds its value (case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    pub product: Vec<String>,
    pub category: Vec<String>,
    pub brand: Vec<String>,
}

/// How many times a purchase rule applies to one receipt: once, or once per each
/// full amount / quantity / number of transactions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Every {
    /// Each full amount (cents) spent, carried across receipts.
    Spent(i64),
    SpentPerTransaction(i64),
    /// Each full quantity of items, carried across receipts.
    Quantity(i64),
    QuantityPerTransaction(i64),
    Transactions(u64),
}

#[derive(Debug, Clone, Default)]
pub struct Purchase {
    pub stores: Vec<String>,
    pub lines: Option<LineFilter>,
    /// This receipt's amount / quantity.
    pub spent: Option<Op>,
    pub quantity: Option<Op>,
    /// Since the rule started (or within `within`): amount, quantity, receipts.
    pub total_spent: Option<Op>,
    pub total_quantity: Option<Op>,
    pub transactions: Option<Op>,
    /// The member's total spent (cents, this receipt included) must reach `spent_from`;
    /// receipts after it passed `spent_up_to` no longer count.
    pub spent_from: Option<i64>,
    pub spent_up_to: Option<i64>,
    pub every: Option<Every>,
    pub within_ms: Option<i64>,
}

impl Purchase {
    /// Does the rule keep running totals for the member?
    pub fn cumulative(&self) -> bool {
        self.total_spent.is_some()
            || self.total_quantity.is_some()
            || self.transactions.is_some()
            || self.spent_from.is_some()
            || self.spent_up_to.is_some()
            || matches!(self.every, Some(Every::Spent(_) | Every::Quantity(_) | Every::Transactions(_)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Birthday {
    Day,
    Week,
    Month,
    WithinDays(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    OnDay,
    WithinDays(u32),
}

#[derive(Debug, Clone, Default)]
pub struct TierChange {
    /// Some(true): upgrades only; Some(false): downgrades only.
    pub upgrade: Option<bool>,
    /// Tier indexes (the VIP tier is `tiers.len()`).
    pub from: Option<usize>,
    pub to: Option<usize>,
    pub vip: bool,
}

#[derive(Debug, Clone)]
pub struct Inactive {
    pub event: String,
    pub for_ms: i64,
}

#[derive(Debug, Clone)]
pub enum Effect {
    Credit { points: i64, kind: PointKind },
    Debit { points: i64, kind: PointKind },
    Reset { kind: PointKind },
    /// Multiplies what the program's other rules (or `rules`) credit of `kind` for
    /// the same occasion; factors of several multipliers multiply.
    Multiply { factor: f64, kind: PointKind, rules: Vec<String> },
    /// Index in `LoyaltyProgram::rewards`.
    Reward(usize),
    Vip(bool),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub occasion: Occasion,
    /// Tier indexes in scope (None: untiered program, every member).
    pub tiers: Option<Vec<usize>>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: Option<Limit>,
    pub when: Option<Cond>,
    pub purchase: Option<Purchase>,
    /// Every `times`-th matching occasion (within a period).
    pub count: Option<(u32, Option<i64>)>,
    pub birthday: Option<Birthday>,
    pub subscribed: Option<Subscribed>,
    pub tier_change: Option<TierChange>,
    pub inactive: Option<Inactive>,
    /// The member's available balance of a kind, compared (checked before effects).
    pub balance: Option<(PointKind, Op)>,
    pub effects: Vec<Effect>,
}

impl Rule {
    pub fn multiplies(&self) -> bool {
        self.effects.iter().any(|e| matches!(e, Effect::Multiply { .. }))
    }

    /// Does the rule keep per-member progress (totals, counts, uses)?
    pub fn has_progress(&self) -> bool {
        self.limit.is_some() || self.count.is_some() || self.purchase.as_ref().is_some_and(Purchase::cumulative)
    }
}

#[derive(Debug, Clone)]
pub struct Reward {
    pub name: String,
    pub description: Option<String>,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct LoyaltyProgram {
    pub name: String,
    pub currency: Option<String>,
    pub join: Join,
    pub zone: Zone,
    pub tiers: Vec<Tier>,
    pub vip: Option<String>,
    pub pending_ms: Option<i64>,
    /// (months, only this kind)
    pub expiry: Option<(u32, Option<PointKind>)>,
    pub returns_ms: i64,
    pub rewards: Vec<Reward>,
    pub rules: Vec<Rule>,
    /// Lowercased event type -> rules it is the occasion of.
    pub by_event: FxHashMap<String, EventRules>,
    /// Lowercased event type -> inactivity rules it resets.
    pub activity: FxHashMap<String, Vec<usize>>,
    /// Rules per member moment, in order.
    pub on_join: Vec<usize>,
    pub on_tier: Vec<usize>,
    pub on_birthday: Vec<usize>,
    pub on_inactive: Vec<usize>,
    /// Identifies the program's member timers (keys::timer_key run field).
    pub timer_id: u64,
}

/// The rules of one event type, indexed by the store their purchase condition
/// names, so a receipt is only looked at by the rules of its store.
#[derive(Debug, Clone, Default)]
pub struct EventRules {
    /// Rules without a store filter, in order.
    pub any_store: Vec<usize>,
    /// Lowercased store -> rules naming it, in order.
    pub by_store: FxHashMap<String, Vec<usize>>,
}

impl EventRules {
    /// The rules that may apply to an event in `store`, in document order.
    pub fn candidates(&self, store: Option<&str>) -> Vec<usize> {
        let named = match store {
            Some(s) if !self.by_store.is_empty() => self.by_store.get(&s.to_lowercase()).map_or(&[][..], Vec::as_slice),
            _ => &[],
        };
        let (mut a, mut b) = (self.any_store.iter().peekable(), named.iter().peekable());
        let mut out = Vec::with_capacity(self.any_store.len() + named.len());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => out.push(if x <= y { *a.next().unwrap() } else { *b.next().unwrap() }),
                (Some(_), None) => out.extend(a.by_ref().copied()),
                (None, Some(_)) => out.extend(b.by_ref().copied()),
                (None, None) => return out,
            }
        }
    }
}

impl LoyaltyProgram {
    /// Name of tier index `i` (the VIP tier is `tiers.len()`).
    pub fn tier_name(&self, i: usize) -> &str {
        self.tiers.get(i).map_or_else(|| self.vip.as_deref().unwrap_or(""), |t| t.name.as_str())
    }

    /// Index of a tier by name (case-insensitive), the VIP tier included.
    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name.eq_ignore_ascii_case(name)).or_else(|| {
            self.vip.as_deref().filter(|v| v.eq_ignore_ascii_case(name)).map(|_| self.tiers.len())
        })
    }

    pub fn reward_index(&self, name: &str) -> Option<usize> {
        self.rewards.iter().position(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// A rule by name (case-insensitive, as names are unique).
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name.eq_ignore_ascii_case(name))
    }
}

/// Member timers carry this bit in the run field of their key; journey runs never do.
pub const LOYALTY_TIMER: u64 = 1 << 63;

/// The timer id of a loyalty program: stable across versions (its name).
pub fn timer_id(name: &str) -> u64 {
    LOYALTY_TIMER | (xxhash_rust::xxh3::xxh3_64(name.to_lowercase().as_bytes()) >> 1)
}

const TEMPLATES: &str = "buy_n_get_one, birthday_voucher, welcome_bonus, points_per_amount";

/// Compile one loyalty program; None (with errors pushed) when it is invalid.
pub(crate) fn compile(cx: &Cx<'_>, l: &LoyaltyDoc, path: &str, errs: &mut Errs) -> Option<LoyaltyProgram> {
    let before = errs.len();
    let join = match l.join.as_deref() {
        None | Some("auto") => Join::Auto,
        Some("subscribe") => Join::Subscribe,
        Some("profile") => Join::Profile(l.member_field.clone().unwrap_or_else(|| "loyalty_member".into())),
        Some(other) => {
            errs.push((format!("{path}.join"), format!("unknown join '{other}'; join: auto, subscribe, profile")));
            Join::Auto
        }
    };
    if l.member_field.is_some() && !matches!(join, Join::Profile(_)) {
        errs.push((format!("{path}.member_field"), "member_field only applies to join: profile".into()));
    }
    if let Some(c) = &l.currency {
        if c.trim().is_empty() {
            errs.push((format!("{path}.currency"), "currency must not be empty (e.g. EUR); omit it for any currency".into()));
        }
    }
    let zone = match &l.time_zone {
        None => Zone::default(),
        Some(z) => Zone::parse(z).unwrap_or_else(|| {
            errs.push((format!("{path}.time_zone"), format!("unknown time zone '{z}'; write an IANA name like Europe/Rome")));
            Zone::default()
        }),
    };
    let tiers = compile_tiers(l, path, errs);
    let pending_ms = duration(l.pending.as_deref(), &format!("{path}.pending"), errs);
    let returns_ms = duration(l.returns_within.as_deref(), &format!("{path}.returns_within"), errs).unwrap_or(90 * MS_PER_DAY);
    let expiry = l.expiry.as_ref().map(|e| {
        if e.months == 0 {
            errs.push((format!("{path}.expiry.months"), "months must be at least 1".into()));
        }
        (e.months, e.kind.as_deref().and_then(|k| kind(k, &format!("{path}.expiry.kind"), errs)))
    });
    let rewards = compile_rewards(l, path, errs);
    let mut lp = LoyaltyProgram {
        name: l.name.clone(),
        currency: l.currency.clone(),
        join,
        zone,
        tiers,
        vip: l.vip.clone(),
        pending_ms,
        expiry,
        returns_ms,
        rewards,
        rules: Vec::new(),
        by_event: FxHashMap::default(),
        activity: FxHashMap::default(),
        on_join: Vec::new(),
        on_tier: Vec::new(),
        on_birthday: Vec::new(),
        on_inactive: Vec::new(),
        timer_id: timer_id(&l.name),
    };
    if l.rules.is_empty() {
        errs.push((format!("{path}.rules"), "a loyalty program needs at least one rule".into()));
    }
    let mut names = std::collections::HashSet::new();
    for (k, r) in l.rules.iter().enumerate() {
        let rp = format!("{path}.rules[{k}]");
        check_name(&r.name, format!("{rp}.name"), "name", errs);
        if !names.insert(r.name.to_lowercase()) {
            errs.push((format!("{rp}.name"), format!("rule '{}' is already defined in this loyalty program", r.name)));
        }
        if let Some(rule) = compile_rule(cx, &lp, r, &rp, errs) {
            lp.rules.push(rule);
        }
    }
    // Rule paths below index compiled rules: only right when every rule compiled.
    if errs.len() == before {
        check_multipliers(&lp, path, errs);
    }
    if errs.len() != before {
        return None;
    }
    index(&mut lp);
    Some(lp)
}

fn index(lp: &mut LoyaltyProgram) {
    for (i, r) in lp.rules.iter().enumerate() {
        match &r.occasion {
            Occasion::Event(e) => {
                let rules = lp.by_event.entry(e.clone()).or_default();
                match r.purchase.as_ref().map(|p| p.stores.as_slice()).filter(|s| !s.is_empty()) {
                    None => rules.any_store.push(i),
                    Some(stores) => {
                        for s in stores {
                            let list = rules.by_store.entry(s.to_lowercase()).or_default();
                            if list.last() != Some(&i) {
                                list.push(i);
                            }
                        }
                    }
                }
            }
            Occasion::Join => lp.on_join.push(i),
            Occasion::TierChange => lp.on_tier.push(i),
            Occasion::Birthday => lp.on_birthday.push(i),
            Occasion::Inactive => {
                lp.on_inactive.push(i);
                let e = r.inactive.as_ref().map_or("purchase", |x| x.event.as_str());
                lp.activity.entry(e.to_owned()).or_default().push(i);
            }
        }
    }
}

fn compile_tiers(l: &LoyaltyDoc, path: &str, errs: &mut Errs) -> Vec<Tier> {
    let mut tiers: Vec<Tier> = Vec::new();
    for (i, t) in l.tiers.iter().flatten().enumerate() {
        let tp = format!("{path}.tiers[{i}]");
        check_name(&t.name, format!("{tp}.name"), "name", errs);
        if tiers.iter().any(|o| o.name.eq_ignore_ascii_case(&t.name)) {
            errs.push((format!("{tp}.name"), format!("tier '{}' is already defined", t.name)));
        }
        if t.threshold < 0 {
            errs.push((format!("{tp}.threshold"), "threshold must be 0 or more qualifying points".into()));
        }
        if let Some(prev) = tiers.last().filter(|p| p.threshold >= t.threshold) {
            errs.push((
                format!("{tp}.threshold"),
                format!("tiers are ordered by threshold: {} must be above {} ({})", t.threshold, prev.threshold, prev.name),
            ));
        }
        if i == 0 && t.threshold != 0 {
            errs.push((format!("{tp}.threshold"), "the first tier starts at 0 qualifying points: every member is in a tier".into()));
        }
        tiers.push(Tier { name: t.name.clone(), threshold: t.threshold });
    }
    if let Some(v) = &l.vip {
        if tiers.is_empty() {
            errs.push((format!("{path}.vip"), "a VIP tier needs ordered tiers beside it".into()));
        }
        if tiers.iter().any(|t| t.name.eq_ignore_ascii_case(v)) {
            errs.push((format!("{path}.vip"), format!("the VIP tier '{v}' must not also be an ordered tier")));
        }
    }
    tiers
}

fn compile_rewards(l: &LoyaltyDoc, path: &str, errs: &mut Errs) -> Vec<Reward> {
    let mut out: Vec<Reward> = Vec::new();
    for (i, r) in l.rewards.iter().flatten().enumerate() {
        let rp = format!("{path}.rewards[{i}]");
        check_name(&r.name, format!("{rp}.name"), "name", errs);
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&r.name)) {
            errs.push((format!("{rp}.name"), format!("reward '{}' is already defined", r.name)));
        }
        let expires_ms = duration(r.expires.as_deref(), &format!("{rp}.expires"), errs);
        out.push(Reward { name: r.name.clone(), description: r.description.clone(), expires_ms });
    }
    out
}

fn duration(s: Option<&str>, path: &str, errs: &mut Errs) -> Option<i64> {
    let s = s?;
    let d = parse_duration(s);
    if d.is_none() {
        errs.push((path.to_owned(), format!("'{s}' is not a duration; write e.g. 14d, 12h")));
    }
    d
}

fn kind(s: &str, path: &str, errs: &mut Errs) -> Option<PointKind> {
    let k = PointKind::parse(s);
    if k.is_none() {
        errs.push((path.to_owned(), format!("unknown kind '{s}'; kind: qualifying, non_qualifying")));
    }
    k
}

/// A calendar date: without an offset, local time in the program's zone.
fn date(s: Option<&str>, zone: Zone, path: &str, errs: &mut Errs) -> Option<i64> {
    let s = s?;
    let d = super::when::parse_in_zone(s, zone);
    if d.is_none() {
        errs.push((path.to_owned(), format!("'{s}' is not a date; write 2026-12-01 or 2026-12-01T09:00:00Z")));
    }
    d
}

/// A template's rule: its parameters fill the event, conditions and effects; the
/// rule's other settings (tiers, calendar, limit, when, ...) stay as written.
fn expand_template(r: &RuleDoc, rp: &str, errs: &mut Errs) -> Option<RuleDoc> {
    let t = r.template.as_deref()?;
    let need = |what: &str, ok: bool, errs: &mut Errs| {
        if !ok {
            errs.push((format!("{rp}.{what}"), format!("template {t} needs {what}")));
        }
    };
    let written = r.event.is_some() || r.purchase.is_some() || r.effects.is_some() || r.birthday.is_some();
    if written {
        errs.push((format!("{rp}.template"), format!("template {t} writes the rule's event, purchase, birthday and effects; write the rule without a template instead")));
    }
    let mut out = RuleDoc { template: None, n: None, reward: None, points: None, amount: None, kind: None, lines: None, ..r.clone() };
    let reward = |name: &Option<String>| vec![EffectDoc { reward: name.clone(), ..EffectDoc::default() }];
    match t {
        "buy_n_get_one" => {
            need("n", r.n.is_some(), errs);
            need("reward", r.reward.is_some(), errs);
            out.event = Some("purchase".into());
            out.purchase = Some(PurchaseDoc { lines: r.lines.clone(), every_quantity: r.n.map(f64::from), ..PurchaseDoc::default() });
            out.effects = Some(reward(&r.reward));
        }
        "birthday_voucher" => {
            need("reward", r.reward.is_some(), errs);
            out.birthday = Some(super::model::BirthdayDoc { on: Some("day".into()), within_days: None });
            out.effects = Some(reward(&r.reward));
        }
        "welcome_bonus" => {
            need("points", r.points.is_some(), errs);
            out.event = Some("$join".into());
            out.effects = Some(vec![EffectDoc {
                credit: Some(PointsDoc { points: r.points.unwrap_or(0), kind: r.kind.clone().unwrap_or("non_qualifying".into()) }),
                ..EffectDoc::default()
            }]);
        }
        "points_per_amount" => {
            need("amount", r.amount.is_some(), errs);
            out.event = Some("purchase".into());
            out.purchase = Some(PurchaseDoc { lines: r.lines.clone(), every_spent_per_transaction: r.amount, ..PurchaseDoc::default() });
            out.effects = Some(vec![EffectDoc {
                credit: Some(PointsDoc { points: r.points.unwrap_or(1), kind: r.kind.clone().unwrap_or("qualifying".into()) }),
                ..EffectDoc::default()
            }]);
        }
        other => {
            errs.push((format!("{rp}.template"), format!("unknown template '{other}'; templates: {TEMPLATES}")));
            return None;
        }
    }
    Some(out)
}

fn compile_rule(cx: &Cx<'_>, lp: &LoyaltyProgram, doc: &RuleDoc, rp: &str, errs: &mut Errs) -> Option<Rule> {
    let before = errs.len();
    let expanded = expand_template(doc, rp, errs);
    let r = expanded.as_ref().unwrap_or(doc);
    if r.template.is_none() && (r.n.is_some() || r.reward.is_some() || r.points.is_some() || r.amount.is_some() || r.kind.is_some() || r.lines.is_some()) {
        errs.push((rp.to_owned(), "n, reward, points, amount, kind and lines are template parameters: add a template or move them into purchase / effects".into()));
    }
    let occasion = occasion(cx, r, rp, errs);
    let event = match &occasion {
        Some(Occasion::Event(e)) => Some(e.as_str()),
        _ => None,
    };
    let tiers = match (&r.tiers, lp.tiers.is_empty()) {
        (None, true) => None,
        (None, false) => {
            let names: Vec<&str> = lp.tiers.iter().map(|t| t.name.as_str()).collect();
            errs.push((format!("{rp}.tiers"), format!("a rule of a tiered program names the tiers it applies to (at least one of {})", names.join(", "))));
            None
        }
        (Some(list), _) => Some(tier_list(lp, list, &format!("{rp}.tiers"), errs)),
    };
    let start_ms = date(r.start.as_deref(), lp.zone, &format!("{rp}.start"), errs);
    let end_ms = date(r.end.as_deref(), lp.zone, &format!("{rp}.end"), errs);
    if let (Some(s), Some(e)) = (start_ms, end_ms) {
        if e <= s {
            errs.push((format!("{rp}.end"), "end must come after start".into()));
        }
    }
    let limit = r.limit.as_ref().and_then(|l| {
        let per = match l.per.as_str() {
            "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            "year" => Period::Year,
            "ever" => Period::Ever,
            other => {
                errs.push((format!("{rp}.limit.per"), format!("unknown period '{other}'; per: day, week, month, year, ever")));
                return None;
            }
        };
        if l.times == 0 {
            errs.push((format!("{rp}.limit.times"), "times must be at least 1".into()));
        }
        Some(Limit { times: l.times, per })
    });
    let when = cond(cx, r.when.as_ref(), event, format!("{rp}.when"), errs);
    let purchase = r.purchase.as_ref().and_then(|p| compile_purchase(p, &format!("{rp}.purchase"), errs));
    let count = r.count.as_ref().map(|c| {
        if c.times == 0 {
            errs.push((format!("{rp}.count.times"), "times must be at least 1".into()));
        }
        (c.times, duration(c.within.as_deref(), &format!("{rp}.count.within"), errs))
    });
    let birthday = r.birthday.as_ref().and_then(|b| match (b.on.as_deref(), b.within_days) {
        (Some("day"), None) => Some(Birthday::Day),
        (Some("week"), None) => Some(Birthday::Week),
        (Some("month"), None) => Some(Birthday::Month),
        (None, Some(d)) => Some(Birthday::WithinDays(d)),
        _ => {
            errs.push((format!("{rp}.birthday"), "write birthday: {on: day | week | month} or birthday: {within_days: N}".into()));
            None
        }
    });
    let subscribed = r.subscribed.as_ref().and_then(|s| match (s.on_day, s.within_days) {
        (Some(true), None) => Some(Subscribed::OnDay),
        (None, Some(d)) => Some(Subscribed::WithinDays(d)),
        _ => {
            errs.push((format!("{rp}.subscribed"), "write subscribed: {on_day: true} or subscribed: {within_days: N}".into()));
            None
        }
    });
    let tier_change = r.tier_change.as_ref().map(|t| {
        let tp = format!("{rp}.tier_change");
        let upgrade = match t.direction.as_deref() {
            None | Some("any") => None,
            Some("upgrade") => Some(true),
            Some("downgrade") => Some(false),
            Some(other) => {
                errs.push((format!("{tp}.direction"), format!("unknown direction '{other}'; direction: upgrade, downgrade, any")));
                None
            }
        };
        let from = t.from.as_deref().and_then(|n| one_tier(lp, n, &format!("{tp}.from"), errs));
        let to = t.to.as_deref().and_then(|n| one_tier(lp, n, &format!("{tp}.to"), errs));
        let vip = t.vip.unwrap_or(false);
        if vip && lp.vip.is_none() {
            errs.push((format!("{tp}.vip"), "the program declares no vip tier".into()));
        }
        TierChange { upgrade, from, to, vip }
    });
    let inactive = r.inactive.as_ref().and_then(|i| {
        let for_ms = duration(Some(&i.for_), &format!("{rp}.inactive.for"), errs)?;
        let event = event_ref(cx, i.event.as_deref().unwrap_or("purchase"), format!("{rp}.inactive.event"), errs);
        Some(Inactive { event, for_ms })
    });
    let balance = r.balance.as_ref().and_then(|b| {
        let bp = format!("{rp}.balance");
        let k = kind(&b.kind, &format!("{bp}.kind"), errs)?;
        let count = super::model::CountDoc { op: b.op.clone(), value: b.value.clone() };
        compile_count(&count, "balance", &bp, errs).map(|op| (k, op))
    });
    if tier_change.is_some() && lp.tiers.is_empty() {
        errs.push((format!("{rp}.tier_change"), "tier_change needs a program with tiers".into()));
    }
    if purchase.is_some() && event != Some("purchase") {
        errs.push((format!("{rp}.purchase"), "a purchase condition reads a receipt: the rule's event must be purchase".into()));
    }
    let effects = compile_effects(lp, r.effects.as_deref().unwrap_or_default(), rp, errs);
    if errs.len() != before {
        return None;
    }
    Some(Rule {
        name: r.name.clone(),
        occasion: occasion?,
        tiers,
        start_ms,
        end_ms,
        limit,
        when,
        purchase,
        count,
        birthday,
        subscribed,
        tier_change,
        inactive,
        balance,
        effects,
    })
}

/// What the rule waits for: its event, or the member moment its conditions name.
fn occasion(cx: &Cx<'_>, r: &RuleDoc, rp: &str, errs: &mut Errs) -> Option<Occasion> {
    let moments = [
        (r.tier_change.is_some(), Occasion::TierChange, "tier_change"),
        (r.inactive.is_some(), Occasion::Inactive, "inactive"),
    ];
    let mut found: Vec<(Occasion, &str)> = moments.into_iter().filter(|m| m.0).map(|m| (m.1, m.2)).collect();
    match r.event.as_deref() {
        Some("$join") => found.push((Occasion::Join, "event: $join")),
        Some(e) => found.push((Occasion::Event(event_ref(cx, e, format!("{rp}.event"), errs)), "event")),
        // A birthday rule without an event fires on the day, by the member's timer.
        None if r.birthday.is_some() => found.push((Occasion::Birthday, "birthday")),
        None => {}
    }
    match found.len() {
        1 => found.pop().map(|f| f.0),
        0 => {
            errs.push((format!("{rp}.event"), "a rule needs an event (e.g. purchase, or $join), a birthday, a tier_change or an inactive condition".into()));
            None
        }
        _ => {
            let names: Vec<&str> = found.iter().map(|f| f.1).collect();
            errs.push((rp.to_owned(), format!("a rule waits for one thing; this one has {}", names.join(" and "))));
            None
        }
    }
}

fn one_tier(lp: &LoyaltyProgram, name: &str, path: &str, errs: &mut Errs) -> Option<usize> {
    let i = lp.tier_index(name);
    if i.is_none() {
        let mut names: Vec<&str> = lp.tiers.iter().map(|t| t.name.as_str()).collect();
        names.extend(lp.vip.as_deref());
        errs.push((path.to_owned(), format!("unknown tier '{name}'; tiers: {}", names.join(", "))));
    }
    i
}

fn tier_list(lp: &LoyaltyProgram, list: &[String], path: &str, errs: &mut Errs) -> Vec<usize> {
    if list.is_empty() {
        errs.push((path.to_owned(), "name at least one tier".into()));
    }
    list.iter().enumerate().filter_map(|(i, n)| one_tier(lp, n, &format!("{path}[{i}]"), errs)).collect()
}

fn cents(x: f64, path: &str, errs: &mut Errs) -> i64 {
    if !(x > 0.0 && x.is_finite()) {
        errs.push((path.to_owned(), format!("must be a positive amount, got {x}")));
    }
    (x * 100.0).round() as i64
}

fn compile_purchase(p: &PurchaseDoc, pp: &str, errs: &mut Errs) -> Option<Purchase> {
    let before = errs.len();
    let op = |c: &Option<super::model::CountDoc>, what: &str, errs: &mut Errs| {
        c.as_ref().and_then(|c| compile_count(c, "numeric", &format!("{pp}.{what}"), errs))
    };
    let mut every = Vec::new();
    if let Some(x) = p.every_spent {
        every.push(Every::Spent(cents(x, &format!("{pp}.every_spent"), errs)));
    }
    if let Some(x) = p.every_spent_per_transaction {
        every.push(Every::SpentPerTransaction(cents(x, &format!("{pp}.every_spent_per_transaction"), errs)));
    }
    if let Some(x) = p.every_quantity {
        every.push(Every::Quantity(whole(x, &format!("{pp}.every_quantity"), errs)));
    }
    if let Some(x) = p.every_quantity_per_transaction {
        every.push(Every::QuantityPerTransaction(whole(x, &format!("{pp}.every_quantity_per_transaction"), errs)));
    }
    if let Some(x) = p.every_transactions {
        if x == 0 {
            errs.push((format!("{pp}.every_transactions"), "must be at least 1".into()));
        }
        every.push(Every::Transactions(u64::from(x)));
    }
    if every.len() > 1 {
        errs.push((pp.to_owned(), "at most one every_* measure per rule: it says how many times the rule applies".into()));
    }
    let out = Purchase {
        stores: p.stores.clone().unwrap_or_default(),
        lines: p.lines.as_ref().map(line_filter),
        spent: op(&p.spent, "spent", errs),
        quantity: op(&p.quantity, "quantity", errs),
        total_spent: op(&p.total_spent, "total_spent", errs),
        total_quantity: op(&p.total_quantity, "total_quantity", errs),
        transactions: op(&p.transactions, "transactions", errs),
        spent_from: p.spent_from.map(|x| cents(x, &format!("{pp}.spent_from"), errs)),
        spent_up_to: p.spent_up_to.map(|x| cents(x, &format!("{pp}.spent_up_to"), errs)),
        every: every.first().copied(),
        within_ms: duration(p.within.as_deref(), &format!("{pp}.within"), errs),
    };
    if out.within_ms.is_some() && out.total_spent.is_none() && out.total_quantity.is_none() && out.transactions.is_none() {
        errs.push((format!("{pp}.within"), "within bounds the totals total_spent, total_quantity and transactions; this rule compares none".into()));
    }
    (errs.len() == before).then_some(out)
}

fn whole(x: f64, path: &str, errs: &mut Errs) -> i64 {
    if !(x >= 1.0 && x.fract() == 0.0) {
        errs.push((path.to_owned(), format!("must be a whole number of items, at least 1, got {x}")));
    }
    x as i64
}

fn line_filter(d: &LineFilterDoc) -> LineFilter {
    let low = |v: &Option<Vec<String>>| v.iter().flatten().map(|s| s.to_lowercase()).collect();
    LineFilter { product: low(&d.product), category: low(&d.category), brand: low(&d.brand) }
}

fn compile_effects(lp: &LoyaltyProgram, docs: &[EffectDoc], rp: &str, errs: &mut Errs) -> Vec<Effect> {
    if docs.is_empty() {
        errs.push((format!("{rp}.effects"), "a rule needs at least one effect, e.g. credit: {points: 10, kind: qualifying}".into()));
    }
    let mut out = Vec::new();
    for (i, e) in docs.iter().enumerate() {
        let ep = format!("{rp}.effects[{i}]");
        let given = [e.credit.is_some(), e.debit.is_some(), e.reset.is_some(), e.multiply.is_some(), e.reward.is_some(), e.vip.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            errs.push((ep, "an effect is exactly one of credit, debit, reset, multiply, reward, vip".into()));
            continue;
        }
        let points = |p: &PointsDoc, what: &str, errs: &mut Errs| {
            if p.points <= 0 {
                errs.push((format!("{ep}.{what}.points"), format!("points must be a positive integer, got {}", p.points)));
            }
            kind(&p.kind, &format!("{ep}.{what}.kind"), errs).map(|k| (p.points, k))
        };
        let effect = if let Some(p) = &e.credit {
            points(p, "credit", errs).map(|(points, kind)| Effect::Credit { points, kind })
        } else if let Some(p) = &e.debit {
            points(p, "debit", errs).map(|(points, kind)| Effect::Debit { points, kind })
        } else if let Some(k) = &e.reset {
            kind(&k.kind, &format!("{ep}.reset.kind"), errs).map(|kind| Effect::Reset { kind })
        } else if let Some(m) = &e.multiply {
            if !(m.factor > 0.0 && m.factor.is_finite()) {
                errs.push((format!("{ep}.multiply.factor"), format!("factor must be a positive number, got {}", m.factor)));
            }
            kind(&m.kind, &format!("{ep}.multiply.kind"), errs)
                .map(|kind| Effect::Multiply { factor: m.factor, kind, rules: m.rules.clone().unwrap_or_default() })
        } else if let Some(name) = &e.reward {
            let i = lp.reward_index(name);
            if i.is_none() {
                let names: Vec<&str> = lp.rewards.iter().map(|r| r.name.as_str()).collect();
                errs.push((format!("{ep}.reward"), format!("unknown reward '{name}'; the program's rewards: {}", if names.is_empty() { "none declared".into() } else { names.join(", ") })));
            }
            i.map(Effect::Reward)
        } else {
            if lp.vip.is_none() {
                errs.push((format!("{ep}.vip"), "the program declares no vip tier".into()));
            }
            e.vip.map(Effect::Vip)
        };
        out.extend(effect);
    }
    out
}

/// Multipliers name rules of their program, and never multiply each other.
fn check_multipliers(lp: &LoyaltyProgram, path: &str, errs: &mut Errs) {
    for (i, r) in lp.rules.iter().enumerate() {
        for e in &r.effects {
            let Effect::Multiply { rules, .. } = e else { continue };
            for name in rules {
                match lp.rule(name) {
                    None => errs.push((format!("{path}.rules[{i}]"), format!("multiply names unknown rule '{name}'"))),
                    Some(t) if t.multiplies() => errs.push((
                        format!("{path}.rules[{i}]"),
                        format!("multiply names '{name}', itself a multiplier: multipliers apply to credits, not to each other"),
                    )),
                    Some(t) if t.occasion != r.occasion => errs.push((
                        format!("{path}.rules[{i}]"),
                        format!("multiply names '{name}', which applies on another occasion: a multiplier scales the credits of its own occasion"),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
}
