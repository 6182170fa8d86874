//! AgentOps timestamps: ISO 8601 in UTC with microseconds and a `+00:00` offset,
//! as in `2026-11-22T01:30:22.721555+00:00`.

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

/// The current time, formatted by [`format`].
pub fn now() -> String {
    format(Utc::now())
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
