//! AgentOps timestamps: ISO 8601 in UTC with microseconds and a `+00:00` offset,
//! as in `2026-11-22T01:30:22.721555+00:00`.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way the AgentOps API writes it.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2026, 11, 22, 1, 30, 22).unwrap();
/// assert_eq!(agentops_core::timestamp::format(t), "2026-11-22T01:30:22.000000+00:00");
/// ```
pub fn format(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// The current time, formatted by [`format()`].
pub fn now() -> String {
    format(Utc::now())
}

/// Formats a [`SystemTime`] like [`format()`], without going through a formatter: this runs
/// on every recorded event, twice.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_micros(1_795_311_022_721_555);
/// assert_eq!(agentops_core::timestamp::format_system_time(t), "2026-11-22T01:30:22.721555+00:00");
/// ```
pub fn format_system_time(time: SystemTime) -> String {
    let since_epoch = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since,
        Err(_) => return format(DateTime::<Utc>::from(time)),
    };
    let secs = since_epoch.as_secs();
    let micros = since_epoch.subsec_micros();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    if !(0..=9999).contains(&year) {
        return format(DateTime::<Utc>::from(time));
    }
    let second_of_day = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000+00:00";
    let fields: [(usize, u64, usize); 7] = [
        (0, year as u64, 4),
        (5, month as u64, 2),
        (8, day as u64, 2),
        (11, second_of_day / 3600, 2),
        (14, second_of_day / 60 % 60, 2),
        (17, second_of_day % 60, 2),
        (20, u64::from(micros), 6),
    ];
    for (start, mut value, width) in fields {
        for slot in out[start..start + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 / ISO 8601 timestamp with an offset (`Z` or `±hh:mm`).
///
/// ```
/// let t = agentops_core::timestamp::parse("2026-11-22T01:30:22.721555+00:00").unwrap();
/// assert_eq!(t.timestamp_subsec_micros(), 721_555);
/// assert!(agentops_core::timestamp::parse("yesterday").is_err());
/// ```
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_fast_formatter_agrees_with_chrono() {
        let mut micros: u64 = 0;
        // Every few days from 1970 to 2100, at varied times of day, leap days included.
        while micros < 4_102_444_800_000_000 {
            let time = UNIX_EPOCH + Duration::from_micros(micros);
            assert_eq!(
                format_system_time(time),
                format(DateTime::<Utc>::from(time))
            );
            micros += 3 * 86_400_000_000 + 3_723_000_017;
        }
        let leap_day = parse("2024-02-29T23:59:59.999999+00:00").unwrap();
        assert_eq!(
            format_system_time(leap_day.into()),
            "2024-02-29T23:59:59.999999+00:00"
        );
    }
}
