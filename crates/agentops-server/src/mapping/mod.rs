//! Where incoming data becomes rows: [`v2`] maps AgentOps v2 events and sessions, [`span`] maps
//! OTLP spans (AgentOps 0.4, GenAI semantic conventions, OpenInference, the Rust SDK), both onto
//! [`crate::store::EventRecord`] and [`crate::store::SessionRecord`].

pub mod messages;
pub mod names;
pub mod span;
pub mod v2;

use agentops_core::pricing::{PriceTable, Usage};
use serde_json::Value;

use crate::store::EventRecord;

/// The most tokens one event may count: far above any model's context window, and small
/// enough that no session's or day's total can overflow.
pub const MAX_TOKENS: i64 = 1_000_000_000;
/// The largest cost of one event, in US dollars.
pub const MAX_COST: f64 = 1_000_000.0;
/// The earliest and latest years a timestamp may name.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=2200;

/// The most tags a session may have, and the longest tag (bytes).
pub const MAX_TAGS: usize = 100;
/// The longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 200;
/// The longest session id, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 128;

/// Tags within [`MAX_TAGS`] and [`MAX_TAG_BYTES`], or what is wrong, naming `field`.
pub fn check_tags(tags: &[String], field: &str) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "{field}: {} tags, at most {MAX_TAGS} are accepted",
            tags.len()
        ));
    }
    match tags.iter().find(|tag| tag.len() > MAX_TAG_BYTES) {
        Some(tag) => Err(format!(
            "{field}: a tag of {} bytes, at most {MAX_TAG_BYTES} are accepted",
            tag.len()
        )),
        None => Ok(()),
    }
}

/// A session id that is not empty, not the nil UUID and at most [`MAX_SESSION_ID_BYTES`].
pub fn check_session_id(id: &str, field: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_BYTES {
        return Err(format!(
            "{field}: a session id has 1 to {MAX_SESSION_ID_BYTES} bytes, this one {}",
            id.len()
        ));
    }
    if id.contains('\0') {
        return Err(format!("{field}: a session id cannot hold a NUL character"));
    }
    if id == "00000000-0000-0000-0000-000000000000" {
        return Err(format!("{field}: the nil UUID is not a session id"));
    }
    Ok(())
}

/// An end no earlier than the start (both in the stored form, which sorts as time does).
pub fn check_order(start: &str, end: Option<&str>, field: &str) -> Result<(), String> {
    match end {
        Some(end) if end < start => {
            Err(format!("{field}: ends ({end}) before it starts ({start})"))
        }
        _ => Ok(()),
    }
}

/// Parses an ISO 8601 timestamp and rewrites it in the stored form (UTC, microseconds), or says
/// which field is wrong. A timestamp without an offset (Python's naive `isoformat()`) is UTC.
/// Years outside [`YEARS`] are refused.
pub fn normalize_time(text: &str, field: &str) -> Result<String, String> {
    use chrono::Datelike as _;
    let text = text.trim();
    let time = agentops_core::timestamp::parse(text)
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|_| format!("{field}: {text:?} is not an ISO 8601 timestamp"))?;
    if !YEARS.contains(&time.year()) {
        return Err(format!(
            "{field}: {text:?} is out of range (years {} to {})",
            YEARS.start(),
            YEARS.end()
        ));
    }
    Ok(agentops_core::timestamp::format(time))
}

/// A token count: a non-negative integer, or a string holding one. `Ok(None)` for null/absent.
pub fn token_count(value: Option<&Value>, field: &str) -> Result<Option<i64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if (0..=MAX_TOKENS).contains(&n) => Ok(Some(n)),
                _ => Err(format!("{field} must be an integer from 0 to {MAX_TOKENS}")),
            }
        }
    }
}

/// A cost in dollars: a non-negative number, or a string holding one. `Ok(None)` for null,
/// absent or empty.
pub fn dollars(value: Option<&Value>, field: &str) -> Result<Option<f64>, String> {
    let n = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n.is_finite() && (0.0..=MAX_COST).contains(&n) => Ok(Some(n)),
        _ => Err(format!("{field} must be a number from 0 to {MAX_COST}")),
    }
}

/// Fills in the cost from the price table when the client sent none and the model is known.
pub fn price_event(event: &mut EventRecord, prices: &PriceTable) {
    if event.cost.is_some() {
        return;
    }
    let Some(model) = event.model.as_deref() else {
        return;
    };
    if event.input_tokens.is_none() && event.output_tokens.is_none() {
        return;
    }
    let usage = Usage {
        input_tokens: event.input_tokens.unwrap_or(0).max(0) as u64,
        output_tokens: event.output_tokens.unwrap_or(0).max(0) as u64,
        cached_tokens: event.cached_tokens.unwrap_or(0).max(0) as u64,
    };
    event.cost = prices.cost(model, &usage);
}

/// A JSON value kept as is, except that a string holding JSON (an object or array) is parsed.
pub fn maybe_json(value: &Value) -> Value {
    if let Value::String(s) = value {
        let t = s.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(parsed) = serde_json::from_str(s) {
                return parsed;
            }
        }
    }
    value.clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_normalized_to_utc_microseconds() {
        let n = |t: &str| super::normalize_time(t, "f");
        assert_eq!(
            n("2026-11-22T01:30:22.721555+00:00").unwrap(),
            "2026-11-22T01:30:22.721555+00:00"
        );
        assert_eq!(
            n("2026-11-22T03:30:22.7215551+02:00").unwrap(),
            "2026-11-22T01:30:22.721555+00:00"
        );
        assert_eq!(
            n("2026-11-22T01:30:22Z").unwrap(),
            "2026-11-22T01:30:22.000000+00:00"
        );
        assert_eq!(
            n("2026-11-22T01:30:22.5").unwrap(),
            "2026-11-22T01:30:22.500000+00:00"
        );
        assert!(n("2026-11-22").unwrap_err().starts_with("f: "));
        assert!(n("yesterday").is_err());
    }

    #[test]
    fn a_session_id_holds_no_nul_character_and_is_not_the_nil_uuid() {
        assert!(super::check_session_id("run-1", "f").is_ok());
        assert!(super::check_session_id("run\0one", "f")
            .unwrap_err()
            .contains("NUL"));
        assert!(super::check_session_id("00000000-0000-0000-0000-000000000000", "f").is_err());
        assert!(super::check_session_id("", "f").is_err());
    }
}
