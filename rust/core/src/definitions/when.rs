//! Wait nodes: how long, or until when, in which time zone. Pure: `now` comes in.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use super::model::UntilDoc;
use crate::dates::parse_duration;

/// A time zone by IANA name; UTC when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(Tz::UTC)
    }
}

impl Zone {
    pub fn parse(name: &str) -> Option<Zone> {
        name.parse::<Tz>().ok().map(Zone)
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// Which time zone a moment is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneOf {
    /// The program's `time_zone`.
    Program,
    /// The contact's profile field `time_zone`, else the program's.
    Contact,
}

/// "Until" a moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Until {
    /// An absolute instant (ms since epoch).
    Instant(i64),
    /// A local date and time, read in the zone.
    Local(NaiveDateTime, ZoneOf),
    /// The next `weekday` (any day when None) at `time` (midnight when None).
    Next { weekday: Option<Weekday>, time: NaiveTime, zone: ZoneOf },
}

/// When a Wait node lets the run go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Wake {
    After(i64),
    Until(Until),
}

impl Wake {
    /// The instant (ms) the run wakes, given `now` and the zones; at or after `now`
    /// for relative forms, possibly before it for a date already past.
    pub fn at(&self, now_ms: i64, program: Zone, contact: Option<Zone>) -> i64 {
        match self {
            Wake::After(d) => now_ms.saturating_add(*d),
            Wake::Until(Until::Instant(t)) => *t,
            Wake::Until(Until::Local(dt, z)) => local_ms(pick(*z, program, contact), dt).unwrap_or(now_ms),
            Wake::Until(Until::Next { weekday, time, zone }) => next_at(now_ms, pick(*zone, program, contact), *weekday, *time),
        }
    }

    /// How explain shows it.
    pub fn describe(&self) -> String {
        match self {
            Wake::After(d) => format!("wait {}", crate::dates::format_duration(*d)),
            Wake::Until(Until::Instant(t)) => format!("wait until {}", crate::dates::format_iso(*t)),
            Wake::Until(Until::Local(dt, z)) => format!("wait until {dt} ({} time)", zone_word(*z)),
            Wake::Until(Until::Next { weekday, time, zone }) => match weekday {
                Some(w) => format!("wait until next {w:?} {} ({} time)", time.format("%H:%M"), zone_word(*zone)),
                None => format!("wait until {} ({} time)", time.format("%H:%M"), zone_word(*zone)),
            },
        }
    }
}

fn zone_word(z: ZoneOf) -> &'static str {
    match z {
        ZoneOf::Program => "program",
        ZoneOf::Contact => "contact",
    }
}

fn pick(z: ZoneOf, program: Zone, contact: Option<Zone>) -> Tz {
    match z {
        ZoneOf::Contact => contact.unwrap_or(program).0,
        ZoneOf::Program => program.0,
    }
}

/// A local date-time in `tz` as ms; in a DST gap, the first instant after it.
fn local_ms(tz: Tz, dt: &NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(dt) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp_millis()),
        LocalResult::None => local_ms(tz, &(*dt + Duration::hours(1))),
    }
}

/// The first instant at or after `now` whose local time in `tz` is `time` on
/// `weekday` (any day when None).
fn next_at(now_ms: i64, tz: Tz, weekday: Option<Weekday>, time: NaiveTime) -> i64 {
    let Some(now) = DateTime::from_timestamp_millis(now_ms) else { return now_ms };
    let today = now.with_timezone(&tz).date_naive();
    for offset in 0..=8 {
        let day = today + Duration::days(offset);
        if weekday.is_some_and(|w| day.weekday() != w) {
            continue;
        }
        if let Some(t) = local_ms(tz, &day.and_time(time)) {
            if t >= now_ms {
                return t;
            }
        }
    }
    now_ms
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// A date or date-time: with `Z` or an offset, that instant; without, local time in
/// `zone` (a date alone is its midnight).
pub fn parse_in_zone(s: &str, zone: Zone) -> Option<i64> {
    let s = s.trim();
    let has_offset = s.ends_with('Z') || s.get(10..).is_some_and(|t| t.contains('+') || t.contains('-'));
    if has_offset {
        return crate::dates::parse_iso(s);
    }
    local_ms(zone.0, &parse_local(s)?)
}

fn parse_local(s: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN)))
}

/// Compile a Wait node's `duration` or `until`; problems as (path, message).
pub fn compile_wait(duration: Option<&str>, until: Option<&UntilDoc>, np: &str, errs: &mut Vec<(String, String)>) -> Option<Wake> {
    match (duration, until) {
        (Some(_), Some(_)) | (None, None) => {
            errs.push((np.to_owned(), "a wait node needs exactly one of 'duration' (e.g. 3d) or 'until' ({date} or {weekday, time})".into()));
            None
        }
        (Some(d), None) => match parse_duration(d) {
            Some(ms) if ms > 0 => Some(Wake::After(ms)),
            _ => {
                errs.push((format!("{np}.duration"), format!("'{d}' is not a duration; write e.g. 45s, 30m, 12h or 3d")));
                None
            }
        },
        (None, Some(u)) => compile_until(u, &format!("{np}.until"), errs).map(Wake::Until),
    }
}

fn compile_until(u: &UntilDoc, up: &str, errs: &mut Vec<(String, String)>) -> Option<Until> {
    let zone = match u.time_zone.as_deref() {
        None | Some("program") => ZoneOf::Program,
        Some("contact") => ZoneOf::Contact,
        Some(other) => {
            errs.push((format!("{up}.time_zone"), format!("time_zone must be 'contact' or 'program', got '{other}'")));
            return None;
        }
    };
    if let Some(d) = &u.date {
        if u.weekday.is_some() || u.time.is_some() {
            errs.push((up.to_owned(), "'date' stands alone; use either {date} or {weekday, time}".into()));
            return None;
        }
        let has_offset = d.ends_with('Z') || d.ends_with('z') || d.len() > 19 && d[19..].contains(['+', '-']);
        if has_offset {
            return match crate::dates::parse_iso(d) {
                Some(t) => Some(Until::Instant(t)),
                None => {
                    errs.push((format!("{up}.date"), format!("'{d}' is not a date; write e.g. 2026-12-01T09:00:00Z")));
                    None
                }
            };
        }
        return match parse_local(d) {
            Some(dt) => Some(Until::Local(dt, zone)),
            None => {
                errs.push((format!("{up}.date"), format!("'{d}' is not a date; write e.g. 2026-12-01 or 2026-12-01T09:00")));
                None
            }
        };
    }
    let weekday = match &u.weekday {
        None => None,
        Some(w) => match parse_weekday(w) {
            Some(w) => Some(w),
            None => {
                errs.push((format!("{up}.weekday"), format!("unknown weekday '{w}'; write monday .. sunday")));
                return None;
            }
        },
    };
    let time = match &u.time {
        None if weekday.is_none() => {
            errs.push((up.to_owned(), "'until' needs 'date', 'weekday' or 'time'".into()));
            return None;
        }
        None => NaiveTime::MIN,
        Some(t) => match NaiveTime::parse_from_str(t, "%H:%M") {
            Ok(t) => t,
            Err(_) => {
                errs.push((format!("{up}.time"), format!("'{t}' is not a time of day; write HH:MM, e.g. 09:30")));
                return None;
            }
        },
    };
    Some(Until::Next { weekday, time, zone })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        crate::dates::parse_iso(s).unwrap()
    }

    #[test]
    fn next_time_of_day_in_a_zone() {
        let rome = Zone::parse("Europe/Rome").unwrap();
        let w = Wake::Until(Until::Next { weekday: None, time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(), zone: ZoneOf::Program });
        // 07:30 UTC = 08:30 in Rome (winter): 09:00 Rome is 08:00 UTC the same day.
        assert_eq!(w.at(ms("2026-11-23T07:30:00Z"), rome, None), ms("2026-11-23T08:00:00Z"));
        // Past 09:00 Rome: the next day.
        assert_eq!(w.at(ms("2026-11-23T08:30:00Z"), rome, None), ms("2026-11-24T08:00:00Z"));
    }

    #[test]
    fn next_weekday_uses_the_contact_zone_when_asked() {
        let utc = Zone::default();
        let ny = Zone::parse("America/New_York").unwrap();
        let w = Wake::Until(Until::Next {
            weekday: Some(Weekday::Mon),
            time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            zone: ZoneOf::Contact,
        });
        // Sunday 2026-11-22 12:00 UTC -> Monday 10:00 New York = 15:00 UTC.
        assert_eq!(w.at(ms("2026-11-22T12:00:00Z"), utc, Some(ny)), ms("2026-11-23T15:00:00Z"));
        // Without a contact zone: the program's.
        assert_eq!(w.at(ms("2026-11-22T12:00:00Z"), utc, None), ms("2026-11-23T10:00:00Z"));
    }

    #[test]
    fn compile_reports_bad_waits() {
        let mut errs = Vec::new();
        assert!(compile_wait(Some("soon"), None, "n", &mut errs).is_none());
        assert!(compile_wait(None, None, "n", &mut errs).is_none());
        let u = UntilDoc { date: None, weekday: Some("funday".into()), time: None, time_zone: None };
        assert!(compile_wait(None, Some(&u), "n", &mut errs).is_none());
        assert_eq!(errs.len(), 3);
        assert!(errs[2].1.contains("funday"));
        assert_eq!(compile_wait(Some("3d"), None, "n", &mut errs), Some(Wake::After(3 * 86_400_000)));
    }

    #[test]
    fn local_dates_are_read_in_the_zone() {
        let rome = Zone::parse("Europe/Rome").unwrap();
        let mut errs = Vec::new();
        let u = UntilDoc { date: Some("2026-12-01T09:00".into()), weekday: None, time: None, time_zone: None };
        let w = compile_wait(None, Some(&u), "n", &mut errs).unwrap();
        assert_eq!(w.at(0, rome, None), ms("2026-12-01T08:00:00Z"));
    }
}
