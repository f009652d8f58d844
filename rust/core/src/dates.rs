//! ISO-8601 dates and durations, parsed by hand (no clock involved).

use crate::value::Value;

pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, c| acc.checked_mul(10)?.checked_add((c - b'0') as u32))
}

/// Parse `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with an optional `Z` or `±HH:MM`
/// offset (no offset = UTC; a space may replace `T`) into ms since the Unix epoch.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&b[0..4])? as i64;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, d) * MS_PER_DAY;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    if rest[0] != b'T' && rest[0] != b't' && rest[0] != b' ' {
        return None;
    }
    let t = &rest[1..];
    if t.len() < 5 || t[2] != b':' {
        return None;
    }
    let h = digits(&t[0..2])?;
    let mi = digits(&t[3..5])?;
    let mut i = 5;
    let mut sec = 0;
    let mut frac_ms = 0i64;
    if t.len() > i && t[i] == b':' {
        sec = digits(t.get(i + 1..i + 3)?)?;
        i += 3;
        if t.len() > i && (t[i] == b'.' || t[i] == b',') {
            let start = i + 1;
            let mut end = start;
            while end < t.len() && t[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return None;
            }
            let mut scale = 100;
            for c in &t[start..end.min(start + 3)] {
                frac_ms += (c - b'0') as i64 * scale;
                scale /= 10;
            }
            i = end;
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += (h as i64 * 3600 + mi as i64 * 60 + sec as i64) * 1000 + frac_ms;
    let tz = &t[i..];
    match tz {
        [] | [b'Z'] | [b'z'] => Some(ms),
        [sign @ (b'+' | b'-'), hh0, hh1, b':', mm0, mm1] | [sign @ (b'+' | b'-'), hh0, hh1, mm0, mm1] => {
            let oh = digits(&[*hh0, *hh1])? as i64;
            let om = digits(&[*mm0, *mm1])? as i64;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60_000;
            Some(if *sign == b'+' { ms - off } else { ms + off })
        }
        _ => None,
    }
}

/// A date value of an attribute: ISO string or int ms. Anything else is not a date.
pub fn date_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Str(s) => parse_iso(s),
        _ => None,
    }
}

/// Parse a duration `7d`, `12h`, `30m`, `45s` (positive integer + unit) into ms.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n = digits(num.as_bytes())? as i64;
    let unit_ms = match unit {
        "d" => MS_PER_DAY,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        _ => return None,
    };
    if n == 0 {
        return None;
    }
    Some(n * unit_ms)
}

/// A duration in ms as written in definitions: the largest unit that divides it.
pub fn format_duration(ms: i64) -> String {
    for (unit, size) in [("d", MS_PER_DAY), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// ms since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (ms dropped). By hand: traces
/// write one per wait, and `format!` was a visible share of a batch.
pub fn format_iso(ms: i64) -> String {
    let mut out = String::with_capacity(20);
    push_iso(&mut out, ms);
    out
}

/// Append `format_iso(ms)` to `out`.
pub fn push_iso(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        out.push_str(&format!("{y}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60));
        return;
    }
    let two = |out: &mut String, n: i64| {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    two(out, y / 100);
    two(out, y % 100);
    out.push('-');
    two(out, i64::from(mo));
    out.push('-');
    two(out, i64::from(d));
    out.push('T');
    two(out, s / 3600);
    out.push(':');
    two(out, s / 60 % 60);
    out.push(':');
    two(out, s % 60);
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_iso("1970-01-01"), Some(0));
        assert_eq!(parse_iso("2026-11-23"), Some(1_795_392_000_000));
        assert_eq!(parse_iso("2026-11-23T10:00:00Z"), Some(1_795_392_000_000 + 36_000_000));
        assert_eq!(parse_iso("2026-11-23T10:00"), Some(1_795_392_000_000 + 36_000_000));
        assert_eq!(parse_iso("2026-11-23T12:00:00+02:00"), Some(1_795_392_000_000 + 36_000_000));
        assert_eq!(parse_iso("2026-11-23T10:00:00.250Z"), Some(1_795_392_000_000 + 36_000_250));
        assert_eq!(parse_iso("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_iso("1969-12-31"), Some(-86_400_000));
    }

    #[test]
    fn bad_dates() {
        for s in ["", "2026", "2026-13-01", "2023-02-29", "2026-11-23X", "2026-11-23T25:00", "2026-1-01", "abcd-ef-gh", "2026-11-23T10:00:00+2"] {
            assert_eq!(parse_iso(s), None, "{s}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_duration("12h"), Some(12 * 3_600_000));
        assert_eq!(parse_duration("30m"), Some(1_800_000));
        assert_eq!(parse_duration("45s"), Some(45_000));
        for s in ["", "d", "7", "7w", "-1d", "0d", "1.5h"] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(3 * MS_PER_DAY), "3d");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_iso(1_795_392_000_000 + 36_000_000), "2026-11-23T10:00:00Z");
        for ms in [0, 951_782_400_000, 1_709_164_800_000 + 86_399_999, -86_400_000] {
            let want = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            assert_eq!(format_iso(ms), want);
        }
    }

    #[test]
    fn date_values() {
        assert_eq!(date_ms(&Value::Int(5)), Some(5));
        assert_eq!(date_ms(&Value::Str("1970-01-02".into())), Some(86_400_000));
        assert_eq!(date_ms(&Value::Bool(true)), None);
    }
}
