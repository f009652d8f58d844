//! Calendar arithmetic in a program's time zone: restriction periods, birthdays,
//! subscription days and expiry months.

use chrono::{DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, TimeZone};

use crate::definitions::loyalty::{Birthday, Period};
use crate::definitions::when::Zone;

fn local_date(ms: i64, z: Zone) -> NaiveDate {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&z.0).date_naive()
}

/// The first instant of local day `d` in `z`.
fn day_start(d: NaiveDate, z: Zone) -> i64 {
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    match z.0.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        // Midnight skipped by a DST change: the day starts an hour later.
        LocalResult::None => z.0.from_local_datetime(&(midnight + Duration::hours(1))).earliest().map_or(0, |t| t.timestamp_millis()),
    }
}

/// Start of the restriction period holding `ms` (0 for `Ever`). Weeks start on Monday.
pub fn period_start(ms: i64, per: Period, z: Zone) -> i64 {
    let d = local_date(ms, z);
    let first = match per {
        Period::Ever => return 0,
        Period::Day => d,
        Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Period::Month => d.with_day(1).expect("day 1 exists"),
        Period::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).expect("jan 1 exists"),
    };
    day_start(first, z)
}

/// Is `ms` on the same local day as `other`?
pub fn same_day(ms: i64, other: i64, z: Zone) -> bool {
    local_date(ms, z) == local_date(other, z)
}

/// `ms` plus `months` calendar months (end of month when the day does not exist).
pub fn add_months(ms: i64, months: u32) -> i64 {
    let Some(t) = DateTime::from_timestamp_millis(ms) else { return ms };
    t.checked_add_months(Months::new(months)).map_or(ms, |t| t.timestamp_millis())
}

/// (month, day) of a birthday written "YYYY-MM-DD" or "MM-DD".
pub fn parse_birthday(s: &str) -> Option<(u32, u32)> {
    let parts: Vec<&str> = s.trim().split('-').collect();
    let (m, d) = match parts.as_slice() {
        [_, m, d] | [m, d] => (m.parse().ok()?, d.get(..2).unwrap_or(d).parse().ok()?),
        _ => return None,
    };
    // Validate against a leap year, so 02-29 is a birthday.
    NaiveDate::from_ymd_opt(2024, m, d).map(|_| (m, d))
}

/// The birthday in `year` (Feb 29 falls on Feb 28 in other years).
fn birthday_in(year: i32, (m, d): (u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, m, d).or_else(|| NaiveDate::from_ymd_opt(year, m, d - 1)).expect("a valid birthday")
}

/// The window of the year `year` in which a birthday rule holds: [start, end).
pub fn birthday_window(year: i32, bday: (u32, u32), b: Birthday, z: Zone) -> (i64, i64) {
    let day = birthday_in(year, bday);
    let (first, last) = match b {
        Birthday::Day => (day, day),
        Birthday::Week => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            (monday, monday + Duration::days(6))
        }
        Birthday::Month => {
            let first = day.with_day(1).expect("day 1 exists");
            let next = first.checked_add_months(Months::new(1)).expect("a next month");
            (first, next - Duration::days(1))
        }
        Birthday::WithinDays(n) => (day, day + Duration::days(i64::from(n))),
    };
    (day_start(first, z), day_start(last + Duration::days(1), z))
}

/// Does `ms` fall in the birthday window of its local year (or, for windows that
/// cross New Year, of the year before)?
pub fn in_birthday(ms: i64, bday: (u32, u32), b: Birthday, z: Zone) -> bool {
    let y = local_date(ms, z).year();
    [y, y - 1].iter().any(|&year| {
        let (s, e) = birthday_window(year, bday, b, z);
        s <= ms && ms < e
    })
}

/// Whole local days from the day of `from` to the day of `to`.
pub fn days_between(from: i64, to: i64, z: Zone) -> i64 {
    (local_date(to, z) - local_date(from, z)).num_days()
}

/// The local year of `ms`.
pub fn year_of(ms: i64, z: Zone) -> i32 {
    local_date(ms, z).year()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::parse_iso;

    fn ms(s: &str) -> i64 {
        parse_iso(s).unwrap()
    }

    #[test]
    fn periods_are_calendar_aligned_in_the_zone() {
        let rome = Zone::parse("Europe/Rome").unwrap();
        // Wednesday 2026-11-25 10:00 Rome.
        let t = ms("2026-11-25T09:00:00Z");
        assert_eq!(period_start(t, Period::Day, rome), ms("2026-11-24T23:00:00Z"));
        assert_eq!(period_start(t, Period::Week, rome), ms("2026-11-22T23:00:00Z"));
        assert_eq!(period_start(t, Period::Month, rome), ms("2026-10-31T23:00:00Z"));
        assert_eq!(period_start(t, Period::Year, rome), ms("2025-12-31T23:00:00Z"));
        assert_eq!(period_start(t, Period::Ever, rome), 0);
    }

    #[test]
    fn birthdays() {
        let utc = Zone::default();
        let b = parse_birthday("1990-03-15").unwrap();
        assert_eq!(b, (3, 15));
        assert!(in_birthday(ms("2026-03-15T23:59:00Z"), b, Birthday::Day, utc));
        assert!(!in_birthday(ms("2026-03-16T00:00:00Z"), b, Birthday::Day, utc));
        assert!(in_birthday(ms("2026-03-20T00:00:00Z"), b, Birthday::WithinDays(5), utc));
        assert!(in_birthday(ms("2026-03-01T00:00:00Z"), b, Birthday::Month, utc));
        // 2026-03-15 is a Sunday: its week starts Monday the 9th.
        assert!(in_birthday(ms("2026-03-09T00:00:00Z"), b, Birthday::Week, utc));
        assert!(!in_birthday(ms("2026-03-16T00:00:00Z"), b, Birthday::Week, utc));
        // A window across New Year.
        let dec = parse_birthday("12-30").unwrap();
        assert!(in_birthday(ms("2027-01-02T00:00:00Z"), dec, Birthday::WithinDays(5), utc));
        assert_eq!(parse_birthday("02-29"), Some((2, 29)));
        assert_eq!(parse_birthday("13-01"), None);
        assert_eq!(add_months(ms("2026-01-31T00:00:00Z"), 1), ms("2026-02-28T00:00:00Z"));
    }
}
