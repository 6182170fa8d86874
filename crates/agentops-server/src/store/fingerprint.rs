//! What tells a resent OTLP log record or metric point from a new one: a hash of what it says,
//! stored in a unique column so that every engine stores each once.

use super::{LogRecord, MetricPoint};

/// What tells a resent record from a new one: a hash of everything it says.
pub(crate) fn log_record(record: &LogRecord) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [
        record.trace_id.as_deref().unwrap_or_default(),
        record.span_id.as_deref().unwrap_or_default(),
        &record.time,
        record.severity.as_deref().unwrap_or_default(),
        record.event_name.as_deref().unwrap_or_default(),
        &record.body.to_string(),
        &record.attributes.to_string(),
    ] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What tells a resent point from a new one: its series, its times and its values.
pub(crate) fn metric_point(p: &MetricPoint, attributes: &str, buckets: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    let numbers = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        p.value, p.count, p.sum, p.min, p.max
    );
    for part in [
        p.name.as_str(),
        p.kind.as_str(),
        attributes,
        p.start_time.as_deref().unwrap_or_default(),
        &p.time,
        &numbers,
        buckets.unwrap_or_default(),
    ] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
