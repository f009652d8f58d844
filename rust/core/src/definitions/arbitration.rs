//! Arbitration across programs: per contact and channel, at most N messages per
//! period, and quiet hours in the contact's time zone. A message that hits either is
//! deferred to the next allowed moment (or dropped, if its program says so); program
//! priority decides who goes first when programs compete for the same event.

use chrono::{DateTime, NaiveTime, Timelike};
use serde::Deserialize;

use super::compile::Errs;
use super::types::Channel;
use super::when::Zone;
use crate::dates::{format_duration, format_iso, parse_duration};
use crate::state::State;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArbitrationDoc {
    #[serde(default)]
    pub caps: Option<Vec<CapDoc>>,
    #[serde(default)]
    pub quiet_hours: Option<QuietDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapDoc {
    pub channel: String,
    pub max: i64,
    pub per: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietDoc {
    /// "21:00"
    pub from: String,
    /// "08:00" (the next day when before `from`)
    pub to: String,
    /// Channels kept quiet (default: sms, push, web_push).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Zone for contacts without a profile `time_zone` (default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cap {
    pub channel: Channel,
    pub max: usize,
    pub per_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quiet {
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub channels: Vec<Channel>,
    pub zone: Zone,
}

/// The compiled limits; empty = none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arbitration {
    pub caps: Vec<Cap>,
    pub quiet: Option<Quiet>,
}

/// Why a message may not go now, and when it may.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    pub until_ms: i64,
    pub reason: String,
}

fn channel(name: &str, path: String, errs: &mut Errs) -> Option<Channel> {
    let c = Channel::parse(name);
    if c.is_none() {
        errs.push((path, format!("unknown channel '{name}'; channels: {}", super::types::channel_names())));
    }
    c
}

fn time_of_day(s: &str, path: String, errs: &mut Errs) -> Option<NaiveTime> {
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok();
    if t.is_none() {
        errs.push((path, format!("'{s}' is not a time of day; write HH:MM, e.g. 21:00")));
    }
    t
}

pub fn compile(doc: Option<&ArbitrationDoc>, errs: &mut Errs) -> Arbitration {
    let Some(doc) = doc else { return Arbitration::default() };
    let mut out = Arbitration::default();
    for (i, c) in doc.caps.iter().flatten().enumerate() {
        let p = format!("arbitration.caps[{i}]");
        let ch = channel(&c.channel, format!("{p}.channel"), errs);
        if c.max < 1 {
            errs.push((format!("{p}.max"), format!("max must be at least 1, got {}", c.max)));
        }
        let per = parse_duration(&c.per);
        if per.is_none() {
            errs.push((format!("{p}.per"), format!("'{}' is not a duration; write e.g. 1d, 7d", c.per)));
        }
        if let (Some(channel), Some(per_ms)) = (ch, per) {
            if out.caps.iter().any(|k| k.channel == channel) {
                errs.push((format!("{p}.channel"), format!("channel '{}' is capped twice", c.channel)));
            }
            out.caps.push(Cap { channel, max: c.max.max(1) as usize, per_ms });
        }
    }
    if let Some(q) = &doc.quiet_hours {
        let p = "arbitration.quiet_hours";
        let from = time_of_day(&q.from, format!("{p}.from"), errs);
        let to = time_of_day(&q.to, format!("{p}.to"), errs);
        let names = q.channels.clone().unwrap_or_else(|| vec!["sms".into(), "push".into(), "web_push".into()]);
        let channels: Vec<Channel> =
            names.iter().enumerate().filter_map(|(i, n)| channel(n, format!("{p}.channels[{i}]"), errs)).collect();
        let zone = match &q.time_zone {
            None => Some(Zone::default()),
            Some(z) => Zone::parse(z).or_else(|| {
                errs.push((format!("{p}.time_zone"), format!("unknown time zone '{z}'; use an IANA name such as Europe/Rome")));
                None
            }),
        };
        if let (Some(from), Some(to), Some(zone)) = (from, to, zone) {
            if from == to {
                errs.push((p.to_owned(), "quiet hours need 'from' and 'to' to differ".into()));
            }
            out.quiet = Some(Quiet { from, to, channels, zone });
        }
    }
    out
}

impl Arbitration {
    /// May a message on `channel` go to this contact at `now`?
    pub fn check(&self, channel: Channel, state: &State, now_ms: i64) -> Result<(), Blocked> {
        if let Some(cap) = self.caps.iter().find(|c| c.channel == channel) {
            let since = now_ms - cap.per_ms;
            let recent: Vec<i64> = state.sends.get(channel.name()).map_or(Vec::new(), |ts| ts.iter().copied().filter(|t| *t > since).collect());
            if recent.len() >= cap.max {
                // Allowed again when the oldest of the last `max` sends leaves the window.
                let until = recent[recent.len() - cap.max] + cap.per_ms;
                return Err(Blocked {
                    until_ms: until,
                    reason: format!(
                        "{} cap {} per {} reached ({} sent since {})",
                        channel.name(),
                        cap.max,
                        format_duration(cap.per_ms),
                        recent.len(),
                        format_iso(since)
                    ),
                });
            }
        }
        if let Some(q) = self.quiet.as_ref().filter(|q| q.channels.contains(&channel)) {
            let zone = state.time_zone().unwrap_or(q.zone);
            if let Some(until) = quiet_until(q, zone, now_ms) {
                return Err(Blocked {
                    until_ms: until,
                    reason: format!("quiet hours {}-{} ({})", q.from.format("%H:%M"), q.to.format("%H:%M"), zone.name()),
                });
            }
        }
        Ok(())
    }

    /// Remember a message sent on a capped channel (only what the caps need).
    pub fn record(&self, channel: Channel, state: &mut State, now_ms: i64) {
        let Some(cap) = self.caps.iter().find(|c| c.channel == channel) else { return };
        let ts = state.sends.entry_or_default(channel.name().to_owned());
        ts.push(now_ms);
        ts.retain(|t| *t > now_ms - cap.per_ms);
        if ts.len() > cap.max {
            let extra = ts.len() - cap.max;
            ts.drain(..extra);
        }
    }
}

/// When the quiet period `now` falls in ends (None: not quiet now).
fn quiet_until(q: &Quiet, zone: Zone, now_ms: i64) -> Option<i64> {
    let now = DateTime::from_timestamp_millis(now_ms)?.with_timezone(&zone.0);
    let t = now.time().with_nanosecond(0)?;
    let inside = if q.from < q.to { q.from <= t && t < q.to } else { t >= q.from || t < q.to };
    if !inside {
        return None;
    }
    let next = super::when::Wake::Until(super::when::Until::Next { weekday: None, time: q.to, zone: super::when::ZoneOf::Program });
    Some(next.at(now_ms, zone, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        crate::dates::parse_iso(s).unwrap()
    }

    #[test]
    fn caps_count_within_the_window_and_say_when() {
        let mut errs = Errs::new();
        let doc = ArbitrationDoc { caps: Some(vec![CapDoc { channel: "sms".into(), max: 2, per: "1d".into() }]), quiet_hours: None };
        let a = compile(Some(&doc), &mut errs);
        assert!(errs.is_empty());
        let mut s = State::default();
        let t = ms("2026-11-23T10:00:00Z");
        a.record(Channel::Sms, &mut s, t);
        assert!(a.check(Channel::Sms, &s, t + 1).is_ok());
        a.record(Channel::Sms, &mut s, t + 1000);
        let b = a.check(Channel::Sms, &s, t + 2000).unwrap_err();
        assert_eq!(b.until_ms, t + 86_400_000);
        assert!(b.reason.starts_with("sms cap 2 per 1d reached"), "{}", b.reason);
        assert!(a.check(Channel::Email, &s, t + 2000).is_ok());
        assert!(a.check(Channel::Sms, &s, t + 86_400_000).is_ok());
    }

    #[test]
    fn quiet_hours_wrap_midnight_in_the_contacts_zone() {
        let mut errs = Errs::new();
        let doc = ArbitrationDoc {
            caps: None,
            quiet_hours: Some(QuietDoc { from: "21:00".into(), to: "08:00".into(), channels: None, time_zone: Some("Europe/Rome".into()) }),
        };
        let a = compile(Some(&doc), &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let s = State::default();
        // 21:30 UTC = 22:30 in Rome: quiet until 08:00 Rome = 07:00 UTC.
        let b = a.check(Channel::Sms, &s, ms("2026-11-23T21:30:00Z")).unwrap_err();
        assert_eq!(b.until_ms, ms("2026-11-24T07:00:00Z"));
        assert!(a.check(Channel::Email, &s, ms("2026-11-23T21:30:00Z")).is_ok(), "email is not in the quiet channels");
        assert!(a.check(Channel::Sms, &s, ms("2026-11-23T12:00:00Z")).is_ok());
    }
}
